"""The ``auth/token/roles`` path table (LIST, and read/write/delete of one role)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strongroom.core.token_roles import (
    ROLE_FIELDS,
    TOKEN_TYPES,
    TokenRoleStore,
    parse_role_update,
)
from strongroom.errors import InvalidRequest
from strongroom.framework import Endpoint, NoArgs
from strongroom.logical import Operation, Request, Response

__all__ = ["ROLE_TABLE"]


_LIST: dict[str, Any] = {"type": "array", "items": {"type": "string"}, "default": []}
_DURATION: dict[str, Any] = {"type": "string", "format": "duration"}


def _api(schema: dict[str, Any], *, deprecated: bool = False) -> dict[str, Any]:
    """A role field's type for OpenAPI, in the field's metadata (``core/openapi.py`` prefers
    it to the annotation). The value itself stays as the request sent it (``None``: absent):
    :func:`parse_role_update` parses it, keeping "absent" apart from "default" (a write
    changes only the fields it names)."""
    return {"openapi": {**schema, "deprecated": True} if deprecated else schema}


@dataclass(frozen=True, slots=True)
class RoleArgs:
    role_name: str
    allowed_policies: Any = field(default=None, metadata=_api(_LIST))
    disallowed_policies: Any = field(default=None, metadata=_api(_LIST))
    allowed_policies_glob: Any = field(default=None, metadata=_api(_LIST))
    disallowed_policies_glob: Any = field(default=None, metadata=_api(_LIST))
    allowed_entity_aliases: Any = field(default=None, metadata=_api(_LIST))
    orphan: Any = field(default=None, metadata=_api({"type": "boolean", "default": False}))
    renewable: Any = field(default=None, metadata=_api({"type": "boolean", "default": True}))
    path_suffix: Any = field(default=None, metadata=_api({"type": "string", "default": ""}))
    token_type: Any = field(
        default=None,
        metadata=_api({"type": "string", "enum": list(TOKEN_TYPES), "default": "default-service"}),
    )
    # period, explicit_max_ttl, bound_cidrs: Vault's deprecated names of the token_* fields
    period: Any = field(default=None, metadata=_api(_DURATION, deprecated=True))
    token_period: Any = field(default=None, metadata=_api(_DURATION))
    explicit_max_ttl: Any = field(default=None, metadata=_api(_DURATION, deprecated=True))
    token_explicit_max_ttl: Any = field(default=None, metadata=_api(_DURATION))
    bound_cidrs: Any = field(default=None, metadata=_api(_LIST, deprecated=True))
    token_bound_cidrs: Any = field(default=None, metadata=_api(_LIST))
    token_no_default_policy: Any = field(
        default=None, metadata=_api({"type": "boolean", "default": False})
    )
    token_num_uses: Any = field(default=None, metadata=_api({"type": "integer", "default": 0}))


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
