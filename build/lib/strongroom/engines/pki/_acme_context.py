"""What every ACME endpoint shares: which directory a request is for (default, per role,
per issuer), replies with ``Replay-Nonce`` and ``Link`` headers, problem documents, JWS
authentication against stored accounts, and the records (accounts, orders, authorizations,
EAB keys) under ``acme/`` in the mount's storage view.

Storage layout::

    acme/accounts/<id>          {"id", "jwk", "thumbprint", "status", "contact", "eab", …}
    acme/thumbprints/<thumb>    {"id"}: the account of a key
    acme/orders/<id>            {"id", "account", "status", "identifiers", "serial", …}
    acme/authz/<id>             {"id", "account", "identifier", "status", "expires", "challenges"}
    acme/eab/<id>               {"id", "key", "directory", "created_on"}
    acme/certs/<serial>         {"account"}: who ordered a certificate (for revoke-cert)

Every read-modify-write of these records runs under the store's per-key lock.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from strongroom.engines.pki._acme_protocol import (
    AcmeProblem,
    NonceStore,
    PublicJWK,
    RateLimiter,
    import_jwk,
    parse_jws,
    verify_jws,
)
from strongroom.engines.pki._issuing import Issuing
from strongroom.engines.pki._role import RoleArgs, glob
from strongroom.engines.pki._store import PKIStore
from strongroom.errors import InvalidRequest, StrongroomError
from strongroom.framework import get_json, put_json
from strongroom.logical import Request, Response

__all__ = [
    "ACME_DEFAULTS",
    "AcmeContext",
    "Authed",
    "Directory",
    "acme_config",
    "rfc3339",
]

log = logging.getLogger("strongroom.engines.pki")

ACME_DEFAULTS: dict[str, Any] = {
    "enabled": False,
    "allowed_issuers": ["*"],
    "allowed_roles": ["*"],
    "allow_role_ext_key_usage": False,
    "default_directory_policy": "sign-verbatim",
    "dns_resolver": "",
    "eab_policy": "not-required",
    "max_ttl": 7776000,
    # Strongroom's own: token-bucket limits (requests per second) on the unauthenticated
    # ACME endpoints, per client IP and per account; 0 turns a limit off
    "rate_limit_per_ip": 50,
    "rate_limit_per_account": 20,
}

PROBLEM_JSON = "application/problem+json"


async def acme_config(store: PKIStore) -> dict[str, Any]:
    config = dict(ACME_DEFAULTS)
    config.update(await store.config("acme"))
    return config


def rfc3339(ts: float) -> str:
    return datetime.datetime.fromtimestamp(int(ts), datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Directory:
    """The directory a request is for: its URL prefix, issuer and role (``None``: the
    default directory's sign-verbatim policy)."""

    prefix: str  # "", "roles/web/", "issuer/x/", "issuer/x/roles/web/"
    base: str  # absolute URL of ".../acme/"
    issuer_ref: str
    role: RoleArgs | None
    config: dict[str, Any]

    def url(self, rel: str) -> str:
        return self.base + rel


@dataclass(frozen=True, slots=True)
class Authed:
    header: dict[str, Any]
    key: PublicJWK
    account: dict[str, Any] | None
    payload: dict[str, Any] | None  # None: POST-as-GET


AcmeHandler = Callable[[Request, Any, Directory], Awaitable[Response]]


class AcmeContext:
    def __init__(self, store: PKIStore, issuing: Issuing) -> None:
        self.store = store
        self.issuing = issuing
        self.nonces = NonceStore()
        self.limiter = RateLimiter()

    # -- directories ---------------------------------------------------------------------

    async def directory(self, issuer_ref: str, role_name: str) -> Directory:
        config = await acme_config(self.store)
        if not config["enabled"]:
            raise AcmeProblem("unauthorized", "ACME is disabled in configuration", 403)
        cluster = await self.store.config("cluster")
        path = str(cluster.get("path", "")).rstrip("/")
        if not path:
            raise AcmeProblem(
                "serverInternal",
                "ACME feature requires local cluster 'path' field configuration to be set",
                500,
            )
        prefix = ""
        if issuer_ref:
            try:
                issuer = await self.store.resolve_issuer(issuer_ref)
            except InvalidRequest:
                raise AcmeProblem("malformed", f"unknown issuer: {issuer_ref}", 404) from None
            allowed = config["allowed_issuers"]
            if not any(p == "*" or p in (issuer.id, issuer.name) for p in allowed):
                raise AcmeProblem("unauthorized", "this issuer is not allowed for ACME", 403)
            prefix += f"issuer/{issuer_ref}/"
        role: RoleArgs | None = None
        if role_name:
            raw = await self.store.role(role_name)
            if raw is None:
                raise AcmeProblem("malformed", f"unknown role: {role_name}", 404)
            if not any(glob(p, role_name) for p in config["allowed_roles"]):
                raise AcmeProblem("unauthorized", "this role is not allowed for ACME", 403)
            role = RoleArgs.from_json(raw)
            prefix += f"roles/{role_name}/"
        else:
            policy = str(config["default_directory_policy"])
            if policy == "forbid":
                raise AcmeProblem(
                    "unauthorized", "the default ACME directory is forbidden by policy", 403
                )
            if policy.startswith("role:"):
                raw = await self.store.role(policy[5:])
                if raw is None:
                    raise AcmeProblem(
                        "serverInternal", "the default directory's role is missing", 500
                    )
                role = RoleArgs.from_json(raw)
        return Directory(prefix, f"{path}/{prefix}acme/", issuer_ref, role, config)

    async def link_base(self) -> str:
        cluster = await self.store.config("cluster")
        return str(cluster.get("path", "")).rstrip("/")

    # -- replies ---------------------------------------------------------------------------

    def reply(
        self,
        directory: Directory | None,
        status: int,
        body: Any = None,
        *,
        location: str = "",
        links: tuple[str, ...] = (),
        content_type: str = "application/json",
        raw: bytes | None = None,
    ) -> Response:
        headers = {"Replay-Nonce": self.nonces.issue()}
        link_values = list(links)
        if directory is not None:
            link_values.append(f'<{directory.url("directory")}>;rel="index"')
        if link_values:
            headers["Link"] = ", ".join(link_values)
        if location:
            headers["Location"] = location
        if raw is None:
            raw = b"" if body is None else orjson.dumps(body)
        return Response(raw_body=raw, content_type=content_type, status=status, headers=headers)

    def problem(self, directory: Directory | None, problem: AcmeProblem) -> Response:
        response = self.reply(
            directory, problem.status, problem.document(), content_type=PROBLEM_JSON
        )
        if problem.kind == "rateLimited":
            response.headers["Retry-After"] = "1"  # the buckets refill within a second
        return response

    async def run(
        self, handler: AcmeHandler, request: Request, args: Any, issuer_ref: str, role: str
    ) -> Response:
        """Resolve the directory, rate-limit, run, and turn refusals into problem documents."""
        directory: Directory | None = None
        try:
            directory = await self.directory(issuer_ref, role)
            address = request.connection.remote_addr or "unknown"
            if not self.limiter.allow(
                f"ip:{address}", float(directory.config["rate_limit_per_ip"])
            ):
                raise AcmeProblem("rateLimited", "too many requests from this address", 429)
            return await handler(request, args, directory)
        except AcmeProblem as problem:
            return self.problem(directory, problem)
        except InvalidRequest as exc:
            detail = "; ".join(exc.messages) or "invalid request"
            return self.problem(directory, AcmeProblem("malformed", detail))
        except StrongroomError as exc:
            log.warning("pki: ACME request failed: %s", type(exc).__name__)
            return self.problem(directory, AcmeProblem("serverInternal", "internal error", 500))

    # -- JWS -----------------------------------------------------------------------------

    async def authenticate(
        self,
        request: Request,
        directory: Directory,
        *,
        jwk_ok: bool = False,
        kid_ok: bool = True,
    ) -> Authed:
        message = parse_jws(dict(request.data))
        header = message.header
        if not self.nonces.consume(str(header.get("nonce", ""))):
            raise AcmeProblem("badNonce", "the JWS nonce is missing, expired or already used")
        expected = f"{await self.link_base()}/{request.path}"
        if header["url"] != expected:
            raise AcmeProblem(
                "unauthorized", "the JWS url header does not match the request URL", 403
            )
        account: dict[str, Any] | None = None
        if "jwk" in header:
            if not jwk_ok:
                raise AcmeProblem("malformed", "this request must be signed with the account's kid")
            key = import_jwk(header["jwk"])
        else:
            if not kid_ok:
                raise AcmeProblem("malformed", "this request must carry a jwk, not a kid")
            kid = str(header["kid"])
            prefix = directory.url("account/")
            account_id = kid[len(prefix) :] if kid.startswith(prefix) else ""
            account = (
                await self.account(account_id) if account_id and "/" not in account_id else None
            )
            if account is None:
                raise AcmeProblem("accountDoesNotExist", "no account with this key ID")
            key = import_jwk(account["jwk"])
        raw_payload = verify_jws(message, key)
        if account is not None:
            if account["status"] != "valid":
                raise AcmeProblem("unauthorized", "the account is deactivated", 403)
            if account.get("directory", "") != directory.prefix:
                raise AcmeProblem("unauthorized", "the account belongs to another directory", 403)
            if directory.config["eab_policy"] == "always-required" and not account.get("eab"):
                raise AcmeProblem(
                    "externalAccountRequired", "this account has no external account binding", 403
                )
            rate = float(directory.config["rate_limit_per_account"])
            if not self.limiter.allow(f"account:{account['id']}", rate):
                raise AcmeProblem("rateLimited", "too many requests for this account", 429)
        payload: dict[str, Any] | None = None
        if raw_payload:
            try:
                parsed = orjson.loads(raw_payload)
            except orjson.JSONDecodeError:
                raise AcmeProblem("malformed", "the JWS payload is not JSON") from None
            if not isinstance(parsed, dict):
                raise AcmeProblem("malformed", "the JWS payload must be a JSON object")
            payload = parsed
        return Authed(header, key, account, payload)

    # -- records -------------------------------------------------------------------------

    async def get(self, kind: str, record_id: str) -> dict[str, Any] | None:
        if not record_id or "/" in record_id:
            return None
        raw = await get_json(self.store.storage, f"acme/{kind}/{record_id}")
        return raw if isinstance(raw, dict) else None

    async def put(self, kind: str, record: dict[str, Any], record_id: str = "") -> None:
        await put_json(self.store.storage, f"acme/{kind}/{record_id or record['id']}", record)

    async def delete(self, kind: str, record_id: str) -> None:
        await self.store.storage.delete(f"acme/{kind}/{record_id}")

    def lock(self, kind: str, record_id: str) -> Any:
        return self.store.locks.hold(f"acme/{kind}/{record_id}")

    async def account(self, account_id: str) -> dict[str, Any] | None:
        return await self.get("accounts", account_id)

    def owned(self, record: dict[str, Any] | None, authed: Authed, what: str) -> dict[str, Any]:
        if record is None:
            raise AcmeProblem("malformed", f"no such {what}", 404)
        if authed.account is None or record.get("account") != authed.account["id"]:
            raise AcmeProblem("unauthorized", f"the {what} belongs to another account", 403)
        return record
