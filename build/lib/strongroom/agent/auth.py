"""Auto-auth: log in with a configured method, keep the token alive, log in again when it
cannot be, and hand every new token to the sinks and the rest of the agent.

Methods (Vault Agent's names and ``config`` keys):

- ``token_file``: ``token_file_path``: a token someone else minted; checked with lookup-self.
- ``approle``: ``role_id_file_path``, ``secret_id_file_path``,
  ``remove_secret_id_file_after_reading`` (default true: the secret ID is kept in memory for
  later logins), ``secret_id_response_wrapping_path`` (the file holds a wrapping token whose
  creation path must be this one; it is unwrapped, once).
- ``kubernetes``: ``role``, ``token_path`` (the service-account token, re-read per login).
- ``jwt``: ``path``, ``role``, ``remove_jwt_after_reading`` (default true); the file is watched
  and a new JWT is used for the next login, or at once with
  ``enable_reauth_on_new_credentials``.
- ``cert``: ``name``, ``client_cert``/``client_key``/``ca_cert`` (default: the vault block's).

Renewal follows Vault's lifetime watcher: renew at about two thirds of the TTL; a token that
can no longer be extended, a failed renewal or a revoked token (the server answers 403) leads
to a new login, retried with exponential backoff (``min_backoff`` … ``max_backoff``, jittered).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ._client import ServerError, ServerUnavailable, VaultClient
from .config import AutoAuthConfig, MethodConfig, VaultConfig
from .sink import FileSink, SinkError

__all__ = ["AuthError", "AuthHandler", "LoginResult", "login_request"]

log = logging.getLogger("strongroom.agent.auth")

DEFAULT_K8S_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"  # noqa: S105


class AuthError(Exception):
    """A login could not even be attempted (a missing file, a bad wrapping token). The
    message names files and paths, never credentials."""


@dataclass(frozen=True, slots=True)
class LoginResult:
    token: str
    accessor: str
    ttl: int
    renewable: bool

    def __repr__(self) -> str:
        return f"LoginResult(accessor={self.accessor!r}, ttl={self.ttl})"


def _read(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            value = handle.read().strip()
    except OSError as exc:
        raise AuthError(f"cannot read {what} from {path}: {exc.strerror}") from None
    if not value:
        raise AuthError(f"{what} file {path} is empty")
    return value


class Method:
    """Builds one login request: ``(path, body)``; ``None`` path means "no login, use the
    token as is" (token_file)."""

    def __init__(self, config: MethodConfig) -> None:
        self.config = config
        self.options: Mapping[str, Any] = config.config

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config.mount_path!r})"

    async def login_body(self, client: VaultClient) -> dict[str, Any]:
        raise NotImplementedError

    def credentials_changed(self) -> bool:
        return False

    def _flag(self, key: str, default: bool) -> bool:
        value = self.options.get(key, default)
        if isinstance(value, str):
            return value.strip().lower() in ("1", "t", "true", "yes")
        return bool(value)


class TokenFileMethod(Method):
    async def login_body(self, client: VaultClient) -> dict[str, Any]:
        return {"token": _read(str(self.options["token_file_path"]), "token")}


class AppRoleMethod(Method):
    def __init__(self, config: MethodConfig) -> None:
        super().__init__(config)
        self.cached_secret_id = ""

    async def login_body(self, client: VaultClient) -> dict[str, Any]:
        body: dict[str, Any] = {"role_id": _read(str(self.options["role_id_file_path"]), "role ID")}
        path = str(self.options.get("secret_id_file_path", ""))
        if not path:
            return body
        if os.path.exists(path):
            secret_id = _read(path, "secret ID")
            wrap_path = str(self.options.get("secret_id_response_wrapping_path", ""))
            if wrap_path:
                secret_id = await self._unwrap(client, secret_id, wrap_path.strip("/"))
            if self._flag("remove_secret_id_file_after_reading", True):
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
            self.cached_secret_id = secret_id
        elif not self.cached_secret_id:
            raise AuthError(f"cannot read secret ID from {path}: no such file")
        body["secret_id"] = self.cached_secret_id
        return body

    async def _unwrap(self, client: VaultClient, wrapping_token: str, expected: str) -> str:
        # check where the wrapping token was made before using it: a token wrapped by
        # someone else's path could hand us a secret ID of an attacker's choosing
        try:
            info = await client.request(
                "POST", "sys/wrapping/lookup", body={"token": wrapping_token}
            )
        except ServerError:
            raise AuthError("the wrapped secret ID's token is not valid") from None
        creation_path = str((info.get("data") or {}).get("creation_path", "")).strip("/")
        if creation_path != expected:
            raise AuthError(
                f"the wrapped secret ID was created at {creation_path!r}, expected {expected!r}"
            )
        try:
            unwrapped = await client.request("POST", "sys/wrapping/unwrap", token=wrapping_token)
        except ServerError:
            raise AuthError("the wrapped secret ID could not be unwrapped") from None
        secret_id = (unwrapped.get("data") or {}).get("secret_id")
        if not isinstance(secret_id, str) or not secret_id:
            raise AuthError("the wrapped response holds no secret_id")
        return secret_id


class KubernetesMethod(Method):
    async def login_body(self, client: VaultClient) -> dict[str, Any]:
        path = str(self.options.get("token_path") or DEFAULT_K8S_TOKEN)
        return {"role": str(self.options["role"]), "jwt": _read(path, "service account token")}


class JwtMethod(Method):
    def __init__(self, config: MethodConfig) -> None:
        super().__init__(config)
        self.cached = ""
        self.seen: tuple[float, int] | None = None

    def _stat(self) -> tuple[float, int] | None:
        try:
            stat = os.stat(str(self.options["path"]))
        except OSError:
            return None
        return (stat.st_mtime, stat.st_size)

    def credentials_changed(self) -> bool:
        stat = self._stat()
        return stat is not None and stat != self.seen

    async def login_body(self, client: VaultClient) -> dict[str, Any]:
        path = str(self.options["path"])
        stat = self._stat()
        if stat is not None:
            self.cached = _read(path, "JWT")
            self.seen = stat
            if self._flag("remove_jwt_after_reading", True):
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
                self.seen = None
        elif not self.cached:
            raise AuthError(f"cannot read JWT from {path}: no such file")
        return {"role": str(self.options["role"]), "jwt": self.cached}


class CertMethod(Method):
    async def login_body(self, client: VaultClient) -> dict[str, Any]:
        name = self.options.get("name")
        return {"name": str(name)} if name else {}


_METHODS: dict[str, type[Method]] = {
    "token_file": TokenFileMethod,
    "approle": AppRoleMethod,
    "kubernetes": KubernetesMethod,
    "jwt": JwtMethod,
    "cert": CertMethod,
}


async def login_request(method: Method, client: VaultClient) -> LoginResult:
    """Log in once (token_file: look the token up). Raises AuthError, ServerError,
    ServerUnavailable."""
    body = await method.login_body(client)
    if isinstance(method, TokenFileMethod):
        token = str(body["token"])
        answer = await client.request("GET", "auth/token/lookup-self", token=token)
        data = answer.get("data") or {}
        return LoginResult(
            token,
            str(data.get("accessor", "")),
            int(data.get("ttl") or 0),
            bool(data.get("renewable")),
        )
    answer = await client.request("POST", f"{method.config.mount_path}/login", body=body)
    auth = answer.get("auth") or {}
    minted = auth.get("client_token")
    if not isinstance(minted, str) or not minted:
        raise AuthError(f"{method.config.mount_path}/login returned no token")
    return LoginResult(
        minted,
        str(auth.get("accessor", "")),
        int(auth.get("lease_duration") or 0),
        bool(auth.get("renewable")),
    )


TokenListener = Callable[[str], Awaitable[None]]


class AuthHandler:
    """Runs auto-auth until cancelled; ``token`` is the current token ("" before the first
    login). ``invalidate()`` asks for a check after a 403 elsewhere."""

    def __init__(
        self,
        config: AutoAuthConfig,
        vault: VaultConfig,
        env: Mapping[str, str],
        client: VaultClient,
    ) -> None:
        self.config = config
        self.method = _METHODS[config.method.type](config.method)
        self.sinks = [FileSink(sink, env) for sink in config.sinks]
        self.client = client
        self.login_client = client
        if config.method.type == "cert":
            options = config.method.config
            cert = str(options.get("client_cert") or vault.client_cert)
            key = str(options.get("client_key") or vault.client_key)
            ca = str(options.get("ca_cert") or vault.ca_cert)
            self.login_client = VaultClient(replace(vault, ca_cert=ca), 2, cert, key)
        self.token = ""
        self.accessor = ""
        self.listeners: list[TokenListener] = []
        self.authenticated = asyncio.Event()
        self.logins = 0
        self._wake = asyncio.Event()
        self._check = False

    def __repr__(self) -> str:
        return f"AuthHandler({self.config.method.type!r}, accessor={self.accessor!r})"

    def invalidate(self) -> None:
        """Someone saw a 403 with our token: check it now, and log in again if it is gone."""
        self._check = True
        self._wake.set()

    async def run(self) -> None:
        backoff = self.config.method.min_backoff
        failures = 0
        while True:
            try:
                result = await login_request(self.method, self.login_client)
            except (AuthError, ServerError, ServerUnavailable) as exc:
                if self.config.method.exit_on_err and self.logins == 0:
                    raise
                failures += 1
                limit = self.config.method.max_retries
                if limit and failures > limit:
                    raise AuthError(f"auth failed {failures} times in a row: giving up") from None
                delay = backoff * random.uniform(0.75, 1.0)  # noqa: S311 - jitter, not crypto
                log.warning("auth failed: %s; retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                backoff = min(backoff * 2, self.config.method.max_backoff)
                continue
            backoff = self.config.method.min_backoff
            failures = 0
            await self._accept(result)
            await self._watch(result)

    async def _accept(self, result: LoginResult) -> None:
        self.token, self.accessor = result.token, result.accessor
        self.logins += 1
        log.info("authenticated (accessor %s, ttl %ss)", result.accessor, result.ttl)
        for sink in self.sinks:
            try:
                payload = result.token
                if sink.config.wrap_ttl:
                    payload = await self._wrapped(result.token, sink.config.wrap_ttl)
                sink.write(payload)
            except (SinkError, ServerError, ServerUnavailable) as exc:
                log.error("%s", exc)
        self.authenticated.set()
        for listener in list(self.listeners):
            await listener(result.token)

    async def _wrapped(self, token: str, ttl: int) -> str:
        answer = await self.client.request(
            "POST", "sys/wrapping/wrap", token=token, body={"token": token}, wrap_ttl=ttl
        )
        return json.dumps(answer.get("wrap_info") or {})

    async def _sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True if woken early by invalidate() or new credentials."""
        deadline = time.monotonic() + max(seconds, 0.0)
        while (left := deadline - time.monotonic()) > 0:
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=min(left, 0.5))
                return True
            except TimeoutError:
                pass
            if self.config.enable_reauth_on_new_credentials and self.method.credentials_changed():
                log.info("new credentials found: authenticating again")
                return True
        return False

    async def _token_alive(self) -> bool:
        try:
            await self.client.request("GET", "auth/token/lookup-self", token=self.token)
        except ServerError as exc:
            return exc.status not in (400, 401, 403)
        except ServerUnavailable:
            return True  # can't tell: keep it and let renewal decide
        return True

    async def _watch(self, result: LoginResult) -> None:
        """Keep the token alive; return when a new login is needed."""
        base = ttl = result.ttl
        renewable = result.renewable
        started = time.monotonic()
        while True:
            if ttl <= 0:  # a token that does not expire: only a revocation ends it
                woke = await self._sleep(3600.0)
            else:
                woke = await self._sleep(ttl * 2 / 3 - (time.monotonic() - started))
            if woke:
                if self._check:
                    self._check = False
                    if await self._token_alive():
                        continue
                    log.warning("the token is no longer valid: authenticating again")
                return
            if not renewable:
                log.info("the token cannot be renewed: authenticating again")
                return
            try:
                answer = await self.client.request(
                    "POST",
                    "auth/token/renew-self",
                    token=self.token,
                    body={"increment": base},
                )
            except (ServerError, ServerUnavailable) as exc:
                log.warning("token renewal failed: %s; authenticating again", exc)
                return
            auth = answer.get("auth") or {}
            new_ttl = int(auth.get("lease_duration") or 0)
            if new_ttl <= 0 or new_ttl < base / 3:
                # the token is close to its max TTL: get a fresh one while this one lives
                log.info("the token is near its maximum TTL: authenticating again")
                return
            ttl, renewable, started = new_ttl, bool(auth.get("renewable", True)), time.monotonic()
