"""ACME directories, nonces and accounts (RFC 8555 §7.1-7.3): ``acme/directory``,
``acme/new-nonce``, ``acme/new-account``, ``acme/account/:id`` (update, deactivate,
orders), ``acme/key-change``; and the authenticated management paths ``acme/new-eab``,
``eab/`` LIST, ``eab/:id`` DELETE and ``config/acme``."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from strongroom.engines.pki._acme_challenges import parse_resolver
from strongroom.engines.pki._acme_context import (
    ACME_DEFAULTS,
    AcmeContext,
    AcmeHandler,
    Authed,
    Directory,
    acme_config,
    rfc3339,
)
from strongroom.engines.pki._acme_protocol import (
    AcmeProblem,
    b64url,
    b64url_decode,
    import_jwk,
    parse_jws,
    thumbprint,
    verify_eab,
    verify_jws,
)
from strongroom.errors import InvalidRequest
from strongroom.framework import NoArgs, Path, parse_bool, parse_duration, parse_str_list
from strongroom.logical import Operation, Request, Response

__all__ = ["ACME_PREFIX", "AcmeAccountPaths", "AcmeArgs", "acme_path"]

ACME_PREFIX = r"(?:issuer/(?P<issuer_ref>[^/]+)/)?(?:roles/(?P<role>[^/]+)/)?acme/"
_POLICIES = ("not-required", "new-account-required", "always-required")


@dataclass(frozen=True, slots=True)
class AcmeArgs:
    issuer_ref: str = ""
    role: str = ""
    id: str = ""
    challenge_type: str = ""


def acme_path(
    ctx: AcmeContext,
    rest: str,
    operations: dict[Operation, AcmeHandler],
    synopsis: str,
) -> Path:
    """A path under every ACME directory prefix, its handlers run through ``ctx.run``."""

    def wrap(handler: AcmeHandler) -> Callable[[Request, AcmeArgs], Any]:
        async def run(request: Request, args: AcmeArgs) -> Response:
            return await ctx.run(handler, request, args, args.issuer_ref, args.role)

        return run

    return Path(
        pattern=ACME_PREFIX + rest,
        args=AcmeArgs,
        operations={op: wrap(h) for op, h in operations.items()},
        synopsis=synopsis,
    )


@dataclass(frozen=True, slots=True)
class EABArgs:
    issuer_ref: str = ""
    role: str = ""


@dataclass(frozen=True, slots=True)
class EABIdArgs:
    key_id: str


def account_body(directory: Directory, account: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "status": account["status"],
        "contact": account.get("contact") or [],
        "orders": directory.url(f"account/{account['id']}/orders"),
    }
    if account.get("eab"):
        body["externalAccountBinding"] = {"kid": account["eab"]}
    return body


def _contacts(payload: dict[str, Any]) -> list[str]:
    contact = payload.get("contact", [])
    if not isinstance(contact, list) or not all(isinstance(c, str) for c in contact):
        raise AcmeProblem("malformed", "contact must be a list of strings")
    for item in contact:
        if not item.startswith("mailto:"):
            raise AcmeProblem("unsupportedContact", "only mailto: contacts are supported")
    return contact


class AcmeAccountPaths:
    def __init__(self, ctx: AcmeContext) -> None:
        self.ctx = ctx

    def paths(self) -> list[Path]:
        ctx = self.ctx
        return [
            acme_path(ctx, "directory", {Operation.READ: self.directory}, "The ACME directory"),
            acme_path(
                ctx,
                "new-nonce",
                {Operation.READ: self.new_nonce, Operation.UPDATE: self.new_nonce},
                "A fresh Replay-Nonce",
            ),
            acme_path(
                ctx, "new-account", {Operation.UPDATE: self.new_account}, "Create an ACME account"
            ),
            acme_path(
                ctx,
                r"account/(?P<id>[^/]+)",
                {Operation.UPDATE: self.update_account},
                "Read, update or deactivate an ACME account",
            ),
            acme_path(
                ctx,
                r"account/(?P<id>[^/]+)/orders",
                {Operation.UPDATE: self.orders},
                "The orders of an ACME account",
            ),
            acme_path(
                ctx, "key-change", {Operation.UPDATE: self.key_change}, "Roll an account's key"
            ),
            Path(
                pattern=r"(?:issuer/(?P<issuer_ref>[^/]+)/)?(?:roles/(?P<role>[^/]+)/)?acme/new-eab",
                args=EABArgs,
                operations={Operation.UPDATE: self.new_eab},
                synopsis="Create an external account binding key",
            ),
            Path(
                pattern=r"eab/?",
                args=NoArgs,
                operations={Operation.LIST: self.list_eab},
                synopsis="List unused external account binding keys",
            ),
            Path(
                pattern=r"eab/(?P<key_id>[^/]+)",
                args=EABIdArgs,
                operations={Operation.DELETE: self.delete_eab},
                synopsis="Delete an external account binding key",
            ),
            Path(
                pattern=r"config/acme",
                args=NoArgs,
                operations={Operation.READ: self.read_config, Operation.UPDATE: self.write_config},
                synopsis="ACME settings",
            ),
        ]

    # -- directory and nonces --------------------------------------------------------------

    async def directory(self, request: Request, args: AcmeArgs, d: Directory) -> Response:
        body = {
            "newNonce": d.url("new-nonce"),
            "newAccount": d.url("new-account"),
            "newOrder": d.url("new-order"),
            "revokeCert": d.url("revoke-cert"),
            "keyChange": d.url("key-change"),
            "meta": {"externalAccountRequired": d.config["eab_policy"] != "not-required"},
        }
        return self.ctx.reply(d, 200, body)

    async def new_nonce(self, request: Request, args: AcmeArgs, d: Directory) -> Response:
        return self.ctx.reply(d, 200 if request.operation is Operation.READ else 204)

    # -- accounts --------------------------------------------------------------------------

    async def new_account(self, request: Request, args: AcmeArgs, d: Directory) -> Response:
        ctx = self.ctx
        authed = await ctx.authenticate(request, d, jwk_ok=True, kid_ok=False)
        payload = authed.payload or {}
        thumb = thumbprint(authed.key)
        async with ctx.lock("thumbprints", thumb):
            index = await ctx.get("thumbprints", thumb)
            existing = await ctx.account(index["id"]) if index else None
            if existing is not None:
                return ctx.reply(
                    d, 200, account_body(d, existing), location=d.url(f"account/{existing['id']}")
                )
            if payload.get("onlyReturnExisting"):
                raise AcmeProblem("accountDoesNotExist", "no account exists for this key")
            contact = _contacts(payload)
            eab_id = ""
            binding = payload.get("externalAccountBinding")
            if (
                d.config["eab_policy"] in ("new-account-required", "always-required")
                and not binding
            ):
                raise AcmeProblem(
                    "externalAccountRequired", "an external account binding is required"
                )
            if binding:
                eab_id = await self._bind(d, binding, authed, request)
            account = {
                "id": str(uuid.uuid4()),
                "jwk": authed.header["jwk"],
                "thumbprint": thumb,
                "status": "valid",
                "contact": contact,
                "directory": d.prefix,
                "eab": eab_id,
                "created": rfc3339(ctx.store.system.now()),
                "orders": [],
            }
            await ctx.put("accounts", account)
            await ctx.put("thumbprints", {"id": account["id"]}, thumb)
        return ctx.reply(
            d, 201, account_body(d, account), location=d.url(f"account/{account['id']}")
        )

    async def _bind(self, d: Directory, binding: Any, authed: Authed, request: Request) -> str:
        """Check and spend an EAB key (single use)."""
        try:
            header = orjson.loads(b64url_decode(str(binding.get("protected", ""))))
        except (orjson.JSONDecodeError, AttributeError):
            raise AcmeProblem("malformed", "externalAccountBinding is malformed") from None
        kid = str(header.get("kid", "")) if isinstance(header, dict) else ""
        async with self.ctx.lock("eab", kid or "-"):
            record = await self.ctx.get("eab", kid)
            if record is not None and record.get("directory", "") not in ("", d.prefix):
                record = None
            secret = b64url_decode(record["key"]) if record else None
            url = f"{await self.ctx.link_base()}/{request.path}"
            verified = verify_eab(binding, authed.header["jwk"], url, lambda _k: secret)
            await self.ctx.delete("eab", verified)
        return verified

    async def update_account(self, request: Request, args: AcmeArgs, d: Directory) -> Response:
        ctx = self.ctx
        authed = await ctx.authenticate(request, d)
        assert authed.account is not None
        if authed.account["id"] != args.id:
            raise AcmeProblem("unauthorized", "the kid does not name this account", 403)
        async with ctx.lock("accounts", args.id):
            account = await ctx.account(args.id)
            assert account is not None
            payload = authed.payload or {}
            if "contact" in payload:
                account["contact"] = _contacts(payload)
            status = payload.get("status")
            if status is not None:
                if status != "deactivated":
                    raise AcmeProblem(
                        "malformed", "an account's status can only become deactivated"
                    )
                account["status"] = "deactivated"
            if payload:
                await ctx.put("accounts", account)
        return ctx.reply(d, 200, account_body(d, account), location=d.url(f"account/{args.id}"))

    async def orders(self, request: Request, args: AcmeArgs, d: Directory) -> Response:
        authed = await self.ctx.authenticate(request, d)
        assert authed.account is not None
        if authed.account["id"] != args.id:
            raise AcmeProblem("unauthorized", "the kid does not name this account", 403)
        urls = [d.url(f"order/{o}") for o in authed.account.get("orders", [])]
        return self.ctx.reply(d, 200, {"orders": urls})

    async def key_change(self, request: Request, args: AcmeArgs, d: Directory) -> Response:
        ctx = self.ctx
        authed = await ctx.authenticate(request, d)
        account = authed.account
        assert account is not None
        inner = parse_jws(authed.payload)
        if "jwk" not in inner.header:
            raise AcmeProblem("malformed", "the inner JWS must carry the new key as jwk")
        if "nonce" in inner.header:
            raise AcmeProblem("malformed", "the inner JWS must not carry a nonce")
        if inner.header["url"] != authed.header["url"]:
            raise AcmeProblem("malformed", "the inner and outer JWS urls differ")
        new_key = import_jwk(inner.header["jwk"])
        try:
            inner_payload = orjson.loads(verify_jws(inner, new_key))
        except orjson.JSONDecodeError:
            raise AcmeProblem("malformed", "the inner JWS payload is not JSON") from None
        if not isinstance(inner_payload, dict):
            raise AcmeProblem("malformed", "the inner JWS payload must be an object")
        if inner_payload.get("account") != authed.header["kid"]:
            raise AcmeProblem("unauthorized", "the inner JWS names another account", 403)
        old_thumb = account["thumbprint"]
        if thumbprint(import_jwk(inner_payload.get("oldKey"))) != old_thumb:
            raise AcmeProblem("unauthorized", "oldKey is not the account's current key", 403)
        new_thumb = thumbprint(new_key)
        async with ctx.lock("thumbprints", new_thumb):
            taken = await ctx.get("thumbprints", new_thumb)
            if taken is not None:
                problem = AcmeProblem(
                    "malformed", "the new key is already in use by an account", 409
                )
                response = ctx.problem(d, problem)
                response.headers["Location"] = d.url(f"account/{taken['id']}")
                return response
            async with ctx.lock("accounts", account["id"]):
                current = await ctx.account(account["id"])
                if current is None or current["thumbprint"] != old_thumb:
                    raise AcmeProblem("unauthorized", "the account key changed meanwhile", 403)
                current["jwk"] = inner.header["jwk"]
                current["thumbprint"] = new_thumb
                await ctx.put("accounts", current)
                await ctx.put("thumbprints", {"id": current["id"]}, new_thumb)
                await ctx.delete("thumbprints", old_thumb)
        return ctx.reply(
            d, 200, account_body(d, current), location=d.url(f"account/{current['id']}")
        )

    # -- management (authenticated) ------------------------------------------------------

    async def new_eab(self, request: Request, args: EABArgs) -> Response:
        prefix = ""
        if args.issuer_ref:
            await self.ctx.store.resolve_issuer(args.issuer_ref)
            prefix += f"issuer/{args.issuer_ref}/"
        if args.role:
            if await self.ctx.store.role(args.role) is None:
                raise InvalidRequest(f"unknown role: {args.role}")
            prefix += f"roles/{args.role}/"
        record = {
            "id": str(uuid.uuid4()),
            "key": b64url(secrets.token_bytes(32)),
            "key_type": "hs",
            "directory": prefix,
            "created_on": rfc3339(self.ctx.store.system.now()),
        }
        await self.ctx.put("eab", record)
        return Response(
            data={
                "id": record["id"],
                "key_type": "hs",
                "key": record["key"],
                "acme_directory": f"{prefix}acme/directory",
                "created_on": record["created_on"],
            }
        )

    async def list_eab(self, request: Request, args: NoArgs) -> Response:
        ids = await self.ctx.store.storage.list("acme/eab/")
        info = {}
        for key_id in ids:
            record = await self.ctx.get("eab", key_id)
            if record is not None:
                info[key_id] = {
                    "key_type": "hs",
                    "acme_directory": f"{record['directory']}acme/directory",
                    "created_on": record["created_on"],
                }
        return Response(data={"keys": list(info), "key_info": info})

    async def delete_eab(self, request: Request, args: EABIdArgs) -> None:
        await self.ctx.delete("eab", args.key_id)

    async def read_config(self, request: Request, args: NoArgs) -> Response:
        return Response(data=await acme_config(self.ctx.store))

    async def write_config(self, request: Request, args: NoArgs) -> Response:
        store = self.ctx.store
        async with store.locks.hold("config/acme"):
            config = await acme_config(store)
            for name, value in request.data.items():
                if name not in ACME_DEFAULTS:
                    raise InvalidRequest(f"unknown field: {name}")
                default = ACME_DEFAULTS[name]
                if isinstance(default, bool):
                    config[name] = parse_bool(value, name)
                elif isinstance(default, list):
                    config[name] = parse_str_list(value, name)
                elif name == "max_ttl":
                    config[name] = int(parse_duration(value, name))
                elif isinstance(default, int):
                    try:
                        config[name] = int(value)
                    except (TypeError, ValueError):
                        raise InvalidRequest(f"{name}: expected an integer") from None
                else:
                    config[name] = str(value)
            if config["dns_resolver"]:
                try:
                    parse_resolver(str(config["dns_resolver"]))
                except ValueError:
                    raise InvalidRequest(
                        "dns_resolver: expected an IP address, optionally with :port"
                    ) from None
            if config["eab_policy"] not in _POLICIES:
                raise InvalidRequest(f"eab_policy: expected one of {', '.join(_POLICIES)}")
            policy = str(config["default_directory_policy"])
            if policy not in ("sign-verbatim", "forbid") and not policy.startswith("role:"):
                raise InvalidRequest(
                    "default_directory_policy: expected sign-verbatim, forbid or role:<name>"
                )
            if policy.startswith("role:") and await store.role(policy[5:]) is None:
                raise InvalidRequest(
                    f"default_directory_policy names an unknown role: {policy[5:]}"
                )
            await store.put_config("acme", config)
        return Response(data=config)
