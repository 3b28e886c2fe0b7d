"""sys/policy (legacy), sys/policies/acl and the sys/capabilities family."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from strongroom.errors import InvalidRequest, PermissionDenied
from strongroom.framework import NoArgs, Path
from strongroom.logical import Operation, Request, Response

if TYPE_CHECKING:
    from strongroom.core.core import Core
    from strongroom.core.tokens import TokenEntry

__all__ = ["policy_paths"]


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


def policy_paths(core: Core) -> list[Path]:
    async def list_legacy(request: Request, args: NoArgs) -> Response:
        names = await core.policies.names()
        return Response(data={"keys": names, "policies": names})

    async def list_acl(request: Request, args: NoArgs) -> Response:
        return Response(data={"keys": await core.policies.names()}, data_only=True)

    async def read_legacy(request: Request, args: NameArgs) -> Response | None:
        text = await core.policies.text(args.name)
        if text is None:
            return None
        name = args.name.strip().lower()
        return Response(data={"name": name, "rules": text})

    async def read_acl(request: Request, args: NameArgs) -> Response | None:
        text = await core.policies.text(args.name)
        if text is None:
            return None
        return Response(data={"name": args.name.strip().lower(), "policy": text}, data_only=True)

    async def write(request: Request, args: NameArgs) -> None:
        await core.policies.put(args.name, _policy_text(args))

    async def delete(request: Request, args: NameArgs) -> None:
        await core.policies.delete(args.name)

    async def capabilities_of(entry: TokenEntry | None, paths: list[str]) -> Response:
        if not paths:
            raise InvalidRequest("missing paths")
        data: dict[str, Any]
        if entry is None:
            data = {p: ["deny"] for p in paths}
        else:
            acl = await core.acl_for(entry)
            data = {path: acl.capabilities(path.lstrip("/")) for path in paths}
        if len(paths) == 1:
            # Vault adds "capabilities" for one path only (the answer of the old ``path``);
            # with several, each path is its own key
            data["capabilities"] = data[paths[0]]
        return Response(data=data)

    async def capabilities(request: Request, args: CapabilitiesArgs) -> Response:
        if not args.token:
            raise InvalidRequest("missing token")
        entry = await core.tokens.lookup(args.token)
        if entry is None:
            raise InvalidRequest("invalid token")
        return await capabilities_of(entry, args.paths or args.path)

    async def capabilities_self(request: Request, args: CapabilitiesArgs) -> Response:
        token = args.token or request.client_token
        mine = token == request.client_token
        entry = await core.tokens.lookup(token, in_last_use=mine) if token else None
        if entry is None:
            raise PermissionDenied()
        return await capabilities_of(entry, args.paths or args.path)

    async def capabilities_accessor(request: Request, args: CapabilitiesAccessorArgs) -> Response:
        if not args.accessor:
            raise InvalidRequest("missing accessor")
        entry = await core.tokens.lookup_accessor(args.accessor)
        if entry is None:
            raise InvalidRequest("invalid accessor")
        return await capabilities_of(entry, args.paths or args.path)

    read, update, remove, lst = Operation.READ, Operation.UPDATE, Operation.DELETE, Operation.LIST
    name = r"(?P<name>[^/]+)"
    return [
        Path(r"policy/?", {read: list_legacy, lst: list_legacy}, synopsis="List policies"),
        Path(
            r"policy/" + name,
            {read: read_legacy, update: write, remove: delete},
            NameArgs,
            synopsis="Read, write or delete a policy",
        ),
        Path(r"policies/acl/?", {lst: list_acl, read: list_acl}, synopsis="List ACL policies"),
        Path(
            r"policies/acl/" + name,
            {read: read_acl, update: write, remove: delete},
            NameArgs,
            synopsis="Read, write or delete an ACL policy",
        ),
        Path(r"capabilities", {update: capabilities}, CapabilitiesArgs, synopsis="A token's caps"),
        Path(
            r"capabilities-self",
            {update: capabilities_self},
            CapabilitiesArgs,
            synopsis="The calling token's capabilities on paths",
        ),
        Path(
            r"capabilities-accessor",
            {update: capabilities_accessor},
            CapabilitiesAccessorArgs,
            synopsis="Capabilities of the token with this accessor",
        ),
    ]
