"""The HTTP side of the CLI: where the server is, which token to send, the request itself.

Everything here talks to the server through its public HTTP API (``/v1/…``), exactly as Vault's
``api`` package does; nothing imports the server's own modules.

Settings come from flags first, then ``STRONGROOM_*``, then ``VAULT_*`` environment variables.
The token comes from ``STRONGROOM_TOKEN``, ``VAULT_TOKEN``, then the token helper files
``~/.vault-token`` and ``~/.strongroom-token`` (``HOME`` taken from the injected environment).
"""

from __future__ import annotations

import contextlib
import os
import re
import ssl
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

__all__ = [
    "DEFAULT_ADDRESS",
    "TOKEN_HELPER_FILE",
    "APIError",
    "Client",
    "CommandError",
    "Settings",
    "env_value",
    "read_token_helper",
    "remote",
    "write_token_helper",
]

DEFAULT_ADDRESS = "https://127.0.0.1:8200"
# File names, not secrets.
# Vault's token helper file, shared with the vault and bao CLIs; the second is where older
# Strongroom releases stored the token (still read)
TOKEN_HELPER_FILE = ".vault-token"  # noqa: S105
_LEGACY_TOKEN_HELPER_FILE = ".strongroom-token"  # noqa: S105
_TRUE = frozenset({"1", "t", "true", "yes"})
Params = Mapping[str, str | list[str]]


class CommandError(Exception):
    """A message for stderr and the exit code to return (1 local, 2 remote)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class APIError(Exception):
    """The server answered with an error status. Holds the status and its ``errors`` list."""

    def __init__(
        self, method: str, url: str, status: int, errors: list[str], body: object = None
    ) -> None:
        self.method = method
        self.url = url
        self.status = status
        self.errors = errors
        self.body = body
        super().__init__(self.describe())

    def describe(self) -> str:
        # One line: the server's messages keep their text but lose their line breaks.
        joined = "; ".join(" ".join(e.split()) for e in self.errors) or "(no error text)"
        return f"Code: {self.status} ({self.method} {self.url}). Errors: {joined}"


@contextlib.contextmanager
def remote(action: str, code: int = 2) -> Iterator[None]:
    """Turn API and transport failures into ``Error <action>: …`` with exit code 2."""
    try:
        yield
    except APIError as exc:
        raise CommandError(f"Error {action}: {exc.describe()}", code) from None
    except httpx.HTTPError as exc:
        raise CommandError(f"Error {action}: {type(exc).__name__}: {exc}", code) from None


def env_value(env: Mapping[str, str], name: str) -> str:
    """``STRONGROOM_<name>``, else ``VAULT_<name>``, else ``""``."""
    return env.get(f"STRONGROOM_{name}") or env.get(f"VAULT_{name}") or ""


def _home(env: Mapping[str, str]) -> Path | None:
    home = env.get("HOME", "")
    return Path(home) if home else None


def read_token_helper(env: Mapping[str, str]) -> str:
    """The token stored by ``login``: ``~/.vault-token``, then ``~/.strongroom-token``."""
    home = _home(env)
    if home is None:
        return ""
    for name in (TOKEN_HELPER_FILE, _LEGACY_TOKEN_HELPER_FILE):
        try:
            token = (home / name).read_text().strip()
        except OSError:
            continue
        if token:
            return token
    return ""


def write_token_helper(env: Mapping[str, str], token: str) -> Path:
    """Store ``token`` in ``~/.vault-token`` (Vault's token helper), mode 0600, replaced atomically.

    The temporary file is created 0600 before the token is written, so the token is never
    readable by others, not even for an instant; ``os.replace`` makes the switch atomic.

    Raises:
        CommandError: no ``HOME``, or the file cannot be written.
    """
    home = _home(env)
    if home is None:
        raise CommandError("Error storing token: HOME is not set")
    target = home / TOKEN_HELPER_FILE
    try:
        fd, tmp = tempfile.mkstemp(prefix=f"{TOKEN_HELPER_FILE}.", dir=home)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(token)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        raise CommandError(f"Error storing token in {target}: {exc.strerror}") from None
    return target


@dataclass(frozen=True, slots=True)
class Settings:
    """Connection settings after flags and environment are merged."""

    address: str
    token: str
    ca_cert: str = ""
    ca_path: str = ""
    client_cert: str = ""
    client_key: str = ""
    skip_verify: bool = False
    namespace: str = ""
    wrap_ttl: str = ""
    timeout: float = 60.0

    def __repr__(self) -> str:
        # The token never appears in a repr.
        return f"Settings(address={self.address!r}, token={'<set>' if self.token else '<none>'})"

    def ssl_context(self) -> ssl.SSLContext:
        """Raises ``CommandError`` if a CA or client certificate file cannot be loaded."""
        try:
            if self.ca_cert or self.ca_path:
                ctx = ssl.create_default_context(
                    cafile=self.ca_cert or None, capath=self.ca_path or None
                )
            else:
                import certifi

                ctx = ssl.create_default_context(cafile=certifi.where())
            if self.client_cert:
                ctx.load_cert_chain(self.client_cert, self.client_key or None)
        except (OSError, ssl.SSLError) as exc:
            raise CommandError(f"Error loading TLS configuration: {exc}") from None
        if self.skip_verify:
            # Explicitly requested by the user (-tls-skip-verify / *_SKIP_VERIFY), as in Vault.
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx


def _timeout(raw: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", raw.strip())
    if not match:
        return 60.0
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[match.group(2) or "s"]
    return float(match.group(1)) * scale


def resolve_settings(
    env: Mapping[str, str],
    *,
    address: str = "",
    ca_cert: str = "",
    ca_path: str = "",
    client_cert: str = "",
    client_key: str = "",
    skip_verify: bool | None = None,
    namespace: str = "",
    wrap_ttl: str = "",
) -> Settings:
    """Merge flag values (non-empty wins) with the environment."""
    if skip_verify is None:
        skip_verify = env_value(env, "SKIP_VERIFY").strip().lower() in _TRUE
    token = env_value(env, "TOKEN") or read_token_helper(env)
    return Settings(
        address=(address or env_value(env, "ADDR") or DEFAULT_ADDRESS).rstrip("/"),
        token=token.strip(),
        ca_cert=ca_cert or env_value(env, "CACERT"),
        ca_path=ca_path or env_value(env, "CAPATH"),
        client_cert=client_cert or env_value(env, "CLIENT_CERT"),
        client_key=client_key or env_value(env, "CLIENT_KEY"),
        skip_verify=skip_verify,
        namespace=namespace or env_value(env, "NAMESPACE"),
        wrap_ttl=wrap_ttl or env_value(env, "WRAP_TTL"),
        timeout=_timeout(env_value(env, "CLIENT_TIMEOUT") or "60"),
    )


def _errors_of(body: object) -> list[str]:
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list):
            return [str(e) for e in errors]
    return []


class Client:
    """A thin synchronous client of ``/v1/``. Error statuses raise ``APIError``."""

    def __init__(self, settings: Settings, transport: httpx.BaseTransport | None = None) -> None:
        self.settings = settings
        self.token = settings.token
        # a standby answers Vault's 307 to the active node: follow it, as Vault's client does
        kwargs: dict[str, Any] = {"timeout": settings.timeout, "follow_redirects": True}
        if transport is not None:
            kwargs["transport"] = transport
        elif settings.address.startswith("https://"):
            kwargs["verify"] = settings.ssl_context()
        self._http = httpx.Client(base_url=settings.address, **kwargs)

    def close(self) -> None:
        self._http.close()

    def _headers(self, content_type: str) -> dict[str, str]:
        headers = {"X-Vault-Request": "true"}
        if self.token:
            headers["X-Vault-Token"] = self.token
        if self.settings.namespace:
            headers["X-Vault-Namespace"] = self.settings.namespace
        if self.settings.wrap_ttl:
            headers["X-Vault-Wrap-TTL"] = self.settings.wrap_ttl
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    def raw(
        self,
        method: str,
        path: str,
        body: object = None,
        params: Params | None = None,
        content_type: str = "",
        content: bytes | None = None,
    ) -> httpx.Response:
        """Send one request to ``/v1/<path>`` and return the response, whatever its status.

        ``content`` sends raw bytes (a snapshot) instead of ``body`` as JSON."""
        if body is not None:
            content = orjson.dumps(body)
            content_type = content_type or "application/json"
        return self._http.request(
            method,
            "/v1/" + path.lstrip("/"),
            content=content,
            params=dict(params) if params else None,
            headers=self._headers(content_type),
        )

    def request(
        self,
        method: str,
        path: str,
        body: object = None,
        params: Params | None = None,
        content_type: str = "",
    ) -> dict[str, Any] | None:
        """The decoded JSON body (``None`` for an empty one).

        Raises:
            APIError: any status of 400 and above.
        """
        response = self.raw(method, path, body, params, content_type)
        parsed: object = None
        if response.content.strip():
            try:
                parsed = orjson.loads(response.content)
            except orjson.JSONDecodeError:
                parsed = None
        if response.status_code >= 400:
            errors = _errors_of(parsed)
            if not errors and parsed is None and response.content:
                errors = [response.text.strip()[:500]]
            url = str(response.request.url)
            raise APIError(method, url, response.status_code, errors, parsed)
        return parsed if isinstance(parsed, dict) else None

    def read(self, path: str, params: Params | None = None) -> dict[str, Any] | None:
        """GET ``path``; a 404 is ``None`` unless it carries data (Vault's Logical().Read)."""
        try:
            return self.request("GET", path, params=params)
        except APIError as exc:
            if exc.status != 404:
                raise
            body = exc.body if isinstance(exc.body, dict) else {}
            return body if body.get("data") or body.get("warnings") else None

    def list(self, path: str) -> dict[str, Any] | None:
        """GET ``path?list=true`` as Vault's Logical().List does; 404 is ``None``."""
        return self.read(path, params={"list": "true"})

    def write(self, path: str, body: object = None) -> dict[str, Any] | None:
        return self.request("PUT", path, body=body if body is not None else {})

    def delete(self, path: str, params: Params | None = None) -> dict[str, Any] | None:
        return self.request("DELETE", path, params=params)
