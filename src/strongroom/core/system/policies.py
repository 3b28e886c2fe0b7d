"""sys/policy (legacy), sys/policies/acl and the sys/capabilities family."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from strongroom.core.system._context import SysContext
from strongroom.errors import InvalidRequest, PermissionDenied
from strongroom.framework import Endpoint, NoArgs
from strongroom.logical import Operation, Request, Response

if TYPE_CHECKING:
    from strongroom.core.tokens import TokenEntry

__all__ = ["TABLE"]


@dataclass(frozen=True, slots=True)
class NameArgs:
    name: str
    policy: Any = None
    rules: Any = None


@dataclass(frozen=True, slots=True)
class CapabilitiesArgs:
    token: str = ""
    path: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class CapabilitiesAccessorArgs:
    accessor: str = ""
    path: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)


def _policy_text(args: NameArgs) -> str:
    raw = args.policy if args.policy is not None else args.rules
    if raw is None or raw == "":
        raise InvalidRequest("'policy' parameter not supplied or empty")
    if isinstance(raw, dict):
        return orjson.dumps(raw).decode()
    if not isinstance(raw, str):
        raise InvalidRequest("'policy' must be a string")
    return raw


async def _list_legacy(ctx: SysContext, request: Request, args: NoArgs) -> Response:
    names = await ctx.core.policies.names()
    return Response(data={"keys": names, "policies": names})


async def _list_acl(ctx: SysContext, request: Request, args: NoArgs) -> Response:
    return Response(data={"keys": await ctx.core.policies.names()}, data_only=True)


async def _read_legacy(ctx: SysContext, request: Request, args: NameArgs) -> Response | None:
    text = await ctx.core.policies.text(args.name)
    if text is None:
        return None
    name = args.name.strip().lower()
    return Response(data={"name": name, "rules": text})


async def _read_acl(ctx: SysContext, request: Request, args: NameArgs) -> Response | None:
    text = await ctx.core.policies.text(args.name)
    if text is None:
        return None
    return Response(data={"name": args.name.strip().lower(), "policy": text}, data_only=True)


async def _write(ctx: SysContext, request: Request, args: NameArgs) -> None:
    await ctx.core.policies.put(args.name, _policy_text(args))


async def _delete(ctx: SysContext, request: Request, args: NameArgs) -> None:
    await ctx.core.policies.delete(args.name)


async def _capabilities_of(ctx: SysContext, entry: TokenEntry | None, paths: list[str]) -> Response:
    if not paths:
        raise InvalidRequest("missing paths")
    data: dict[str, Any]
    if entry is None:
        data = {p: ["deny"] for p in paths}
    else:
        acl = await ctx.core.acl_for(entry)
        data = {path: acl.capabilities(path.lstrip("/")) for path in paths}
    if len(paths) == 1:
        # Vault adds "capabilities" for one path only (the answer of the old ``path``);
        # with several, each path is its own key
        data["capabilities"] = data[paths[0]]
    return Response(data=data)


async def _capabilities(ctx: SysContext, request: Request, args: CapabilitiesArgs) -> Response:
    if not args.token:
        raise InvalidRequest("missing token")
    entry = await ctx.core.tokens.lookup(args.token)
    if entry is None:
        raise InvalidRequest("invalid token")
    return await _capabilities_of(ctx, entry, args.paths or args.path)


async def _capabilities_self(ctx: SysContext, request: Request, args: CapabilitiesArgs) -> Response:
    token = args.token or request.client_token
    mine = token == request.client_token
    entry = await ctx.core.tokens.lookup(token, in_last_use=mine) if token else None
    if entry is None:
        raise PermissionDenied()
    return await _capabilities_of(ctx, entry, args.paths or args.path)


async def _capabilities_accessor(
    ctx: SysContext, request: Request, args: CapabilitiesAccessorArgs
) -> Response:
    if not args.accessor:
        raise InvalidRequest("missing accessor")
    entry = await ctx.core.tokens.lookup_accessor(args.accessor)
    if entry is None:
        raise InvalidRequest("invalid accessor")
    return await _capabilities_of(ctx, entry, args.paths or args.path)


_read, _update, _remove, _lst = Operation.READ, Operation.UPDATE, Operation.DELETE, Operation.LIST


_NAME = r"(?P<name>[^/]+)"


TABLE: list[Endpoint[SysContext]] = [
    Endpoint(r"policy/?", {_read: _list_legacy, _lst: _list_legacy}, synopsis="List policies"),
    Endpoint(
        r"policy/" + _NAME,
        {_read: _read_legacy, _update: _write, _remove: _delete},
        NameArgs,
        synopsis="Read, write or delete a policy",
    ),
    Endpoint(r"policies/acl/?", {_lst: _list_acl, _read: _list_acl}, synopsis="List ACL policies"),
    Endpoint(
        r"policies/acl/" + _NAME,
        {_read: _read_acl, _update: _write, _remove: _delete},
        NameArgs,
        synopsis="Read, write or delete an ACL policy",
    ),
    Endpoint(
        r"capabilities", {_update: _capabilities}, CapabilitiesArgs, synopsis="A token's caps"
    ),
    Endpoint(
        r"capabilities-self",
        {_update: _capabilities_self},
        CapabilitiesArgs,
        synopsis="The calling token's capabilities on paths",
    ),
    Endpoint(
        r"capabilities-accessor",
        {_update: _capabilities_accessor},
        CapabilitiesAccessorArgs,
        synopsis="Capabilities of the token with this accessor",
    ),
]
