"""The agent's HTTP client for the server: one httpx.AsyncClient per TLS identity, Vault's
environment overrides, and errors that carry the status and the server's messages."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import httpx

from .config import VaultConfig

__all__ = ["ServerError", "ServerUnavailable", "VaultClient", "vault_settings"]


class ServerError(Exception):
    """The server answered with an error status. ``errors`` are its messages (Vault's
    ``{"errors": [...]}``), which never hold secret values."""

    def __init__(self, status: int, errors: list[str], path: str) -> None:
        detail = "; ".join(errors) if errors else f"HTTP {status}"
        super().__init__(f"{path}: {detail} (HTTP {status})")
        self.status = status
        self.errors = errors
        self.path = path


class ServerUnavailable(Exception):
    """The server could not be reached (connection refused, timeout, TLS failure)."""


def vault_settings(config: VaultConfig, env: Mapping[str, str]) -> VaultConfig:
    """Apply Vault's environment overrides (``VAULT_ADDR`` … win over the file)."""
    changes: dict[str, Any] = {}
    for name, field_name in (
        ("VAULT_ADDR", "address"),
        ("VAULT_CACERT", "ca_cert"),
        ("VAULT_CAPATH", "ca_path"),
        ("VAULT_CLIENT_CERT", "client_cert"),
        ("VAULT_CLIENT_KEY", "client_key"),
        ("VAULT_TLS_SERVER_NAME", "tls_server_name"),
        ("VAULT_NAMESPACE", "namespace"),
    ):
        if env.get(name):
            changes[field_name] = env[name]
    if env.get("VAULT_SKIP_VERIFY"):
        changes["tls_skip_verify"] = env["VAULT_SKIP_VERIFY"].lower() in ("1", "true", "t")
    if env.get("VAULT_MAX_RETRIES", "").lstrip("-").isdigit():
        changes["num_retries"] = int(env["VAULT_MAX_RETRIES"])
    return replace(config, **changes) if changes else config


def _ssl_context(config: VaultConfig, cert: str = "", key: str = "") -> ssl.SSLContext:
    context = ssl.create_default_context(
        cafile=config.ca_cert or None, capath=config.ca_path or None
    )
    if config.tls_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    cert = cert or config.client_cert
    key = key or config.client_key
    if cert:
        context.load_cert_chain(cert, key or None)
    return context


@dataclass
class VaultClient:
    """Requests to the server. Paths are API paths without ``/v1/``."""

    config: VaultConfig
    max_connections: int = 10
    client_cert: str = ""
    client_key: str = ""

    def __post_init__(self) -> None:
        verify: ssl.SSLContext | bool = False
        if self.config.address.startswith("https"):
            verify = _ssl_context(self.config, self.client_cert, self.client_key)
        limits = httpx.Limits(max_connections=self.max_connections)
        headers = {"X-Vault-Request": "true"}
        if self.config.namespace:
            headers["X-Vault-Namespace"] = self.config.namespace
        self.http = httpx.AsyncClient(
            base_url=self.config.address.rstrip("/"),
            verify=verify,
            limits=limits,
            headers=headers,
            timeout=httpx.Timeout(30.0, connect=5.0),
            trust_env=False,
        )
        # tls_server_name: the name the certificate is checked against (and sent as SNI)
        self.extensions: dict[str, Any] = {}
        if self.config.tls_server_name and self.config.address.startswith("https"):
            self.extensions["sni_hostname"] = self.config.tls_server_name

    async def close(self) -> None:
        await self.http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        token: str = "",
        body: Mapping[str, Any] | None = None,
        wrap_ttl: int = 0,
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Send one request and return the decoded JSON body (``{}`` for 204).

        Raises:
            ServerError: an error status. ServerUnavailable: no answer.
        """
        headers: dict[str, str] = {}
        if token:
            headers["X-Vault-Token"] = token
        if wrap_ttl:
            headers["X-Vault-Wrap-TTL"] = str(wrap_ttl)
        url = "/v1/" + path.lstrip("/")
        try:
            response = await self.http.request(
                method,
                url,
                json=dict(body) if body is not None else None,
                headers=headers,
                params=params,
                extensions=self.extensions,
            )
        except (httpx.TransportError, ssl.SSLError, OSError) as exc:
            raise ServerUnavailable(f"{path}: {type(exc).__name__}") from None
        if response.status_code == 204:
            return {}
        try:
            decoded = response.json() if response.content else {}
        except ValueError:
            decoded = {}
        if response.status_code >= 400:
            errors = decoded.get("errors") if isinstance(decoded, dict) else None
            raise ServerError(response.status_code, [str(e) for e in errors or []], path)
        return decoded if isinstance(decoded, dict) else {}
