"""The ``auth/token/roles`` path table (LIST, and read/write/delete of one role)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strongroom.core.token_roles import ROLE_FIELDS, TokenRoleStore, parse_role_update
from strongroom.errors import InvalidRequest
from strongroom.framework import NoArgs, Path
from strongroom.logical import Operation, Request, Response

__all__ = ["role_paths"]


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


def role_paths(roles: TokenRoleStore) -> list[Path]:
    async def list_roles(request: Request, args: NoArgs) -> Response:
        return Response(data={"keys": await roles.names()})

    async def read_role(request: Request, args: RoleArgs) -> Response | None:
        role = await roles.get(_name(args))
        return Response(data=role.to_json()) if role is not None else None

    async def write_role(request: Request, args: RoleArgs) -> None:
        name = _name(args)
        data = {key: getattr(args, key) for key in ROLE_FIELDS}
        async with roles.locks.hold(name):
            role = parse_role_update(name, await roles.get(name), data)
            await roles.put(role)

    async def delete_role(request: Request, args: RoleArgs) -> None:
        name = _name(args)
        async with roles.locks.hold(name):
            await roles.delete(name)

    async def exists(request: Request, args: RoleArgs) -> bool:
        return await roles.get(_name(args)) is not None

    op = Operation
    return [
        Path(r"roles/?", {op.LIST: list_roles}, synopsis="List token roles"),
        Path(
            r"roles/(?P<role_name>[^/]+)",
            {
                op.READ: read_role,
                op.CREATE: write_role,
                op.UPDATE: write_role,
                op.DELETE: delete_role,
            },
            RoleArgs,
            existence_check=exists,
            synopsis="Read, write or delete a token role",
            description=(
                "A token role lets a caller create tokens with the role's allowed policies "
                "(not bounded by its own), as orphans, with a path suffix, period, explicit "
                "max TTL, bound CIDRs and token type."
            ),
        ),
    ]
