"""The ``auth/token/roles`` path table (LIST, and read/write/delete of one role)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strongroom.core.token_roles import ROLE_FIELDS, TokenRoleStore, parse_role_update
from strongroom.errors import InvalidRequest
from strongroom.framework import Endpoint, NoArgs
from strongroom.logical import Operation, Request, Response

__all__ = ["ROLE_TABLE"]


@dataclass(frozen=True, slots=True)
class RoleArgs:
    role_name: str
    # the role's fields are parsed by parse_role_update from request.data, which keeps
    # "absent" apart from "default" (a write changes only the fields it names)
    allowed_policies: Any = None
    disallowed_policies: Any = None
    allowed_policies_glob: Any = None
    disallowed_policies_glob: Any = None
    allowed_entity_aliases: Any = None
    orphan: Any = None
    renewable: Any = None
    path_suffix: Any = None
    token_type: Any = None
    period: Any = None
    token_period: Any = None
    explicit_max_ttl: Any = None
    token_explicit_max_ttl: Any = None
    bound_cidrs: Any = None
    token_bound_cidrs: Any = None
    token_no_default_policy: Any = None
    token_num_uses: Any = None


def _name(args: RoleArgs) -> str:
    name = args.role_name.strip()
    if not name:
        raise InvalidRequest("role name cannot be empty")
    return name


async def _list_roles(roles: TokenRoleStore, request: Request, args: NoArgs) -> Response:
    return Response(data={"keys": await roles.names()})


async def _read_role(roles: TokenRoleStore, request: Request, args: RoleArgs) -> Response | None:
    role = await roles.get(_name(args))
    return Response(data=role.to_json()) if role is not None else None


async def _write_role(roles: TokenRoleStore, request: Request, args: RoleArgs) -> None:
    name = _name(args)
    data = {key: getattr(args, key) for key in ROLE_FIELDS}
    async with roles.locks.hold(name):
        role = parse_role_update(name, await roles.get(name), data)
        await roles.put(role)


async def _delete_role(roles: TokenRoleStore, request: Request, args: RoleArgs) -> None:
    name = _name(args)
    async with roles.locks.hold(name):
        await roles.delete(name)


async def _exists(roles: TokenRoleStore, request: Request, args: RoleArgs) -> bool:
    return await roles.get(_name(args)) is not None


ROLE_TABLE: list[Endpoint[TokenRoleStore]] = [
    Endpoint(r"roles/?", {Operation.LIST: _list_roles}, synopsis="List token roles"),
    Endpoint(
        r"roles/(?P<role_name>[^/]+)",
        {
            Operation.READ: _read_role,
            Operation.CREATE: _write_role,
            Operation.UPDATE: _write_role,
            Operation.DELETE: _delete_role,
        },
        RoleArgs,
        existence_check=_exists,
        synopsis="Read, write or delete a token role",
        description=(
            "A token role lets a caller create tokens with the role's allowed policies "
            "(not bounded by its own), as orphans, with a path suffix, period, explicit "
            "max TTL, bound CIDRs and token type."
        ),
    ),
]
