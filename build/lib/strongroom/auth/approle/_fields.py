"""AppRole's per-field endpoints: ``role/<role_name>/<field>`` (read, update, delete).

Each reads, sets or resets one setting of an existing role (Vault's ``policies``,
``secret-id-ttl``, ``token-ttl``, ``period``, ``bind-secret-id`` …). An update takes the
same body field as a full role write, and goes through the same validation and lock; a
delete puts the field back to its default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strongroom.auth._common import storage_of
from strongroom.auth.approle._records import Role, role_name_of
from strongroom.errors import InvalidRequest
from strongroom.framework import Path
from strongroom.logical import Operation, Request, Response

if TYPE_CHECKING:
    from strongroom.auth.approle._roles import RolePaths

__all__ = ["FIELD_ENDPOINTS", "field_paths"]


@dataclass(frozen=True, slots=True)
class FieldEndpoint:
    suffix: str
    read: Callable[[Role], dict[str, Any]]
    # the body fields an update takes (the first is the one named in errors)
    fields: tuple[str, ...] = ()
    # what a delete writes back (None: the endpoint cannot be deleted)
    reset: dict[str, Any] | None = None
    synopsis: str = ""


FIELD_ENDPOINTS = (
    FieldEndpoint(
        "policies",
        lambda r: {"policies": list(r.token.policies), "token_policies": list(r.token.policies)},
        ("token_policies", "policies"),
        {"token_policies": []},
        "The role's token policies",
    ),
    FieldEndpoint(
        "local-secret-ids",
        lambda r: {"local_secret_ids": r.local_secret_ids},
        synopsis="Whether the role's secret IDs are local to this cluster (read only)",
    ),
    FieldEndpoint(
        "bound-cidr-list",
        lambda r: {"bound_cidr_list": list(r.secret_id_bound_cidrs)},
        ("bound_cidr_list",),
        {"secret_id_bound_cidrs": []},
        "Deprecated name of secret-id-bound-cidrs",
    ),
    FieldEndpoint(
        "secret-id-bound-cidrs",
        lambda r: {"secret_id_bound_cidrs": list(r.secret_id_bound_cidrs)},
        ("secret_id_bound_cidrs",),
        {"secret_id_bound_cidrs": []},
        "The CIDR blocks a secret ID may be used from",
    ),
    FieldEndpoint(
        "token-bound-cidrs",
        lambda r: {"token_bound_cidrs": list(r.token.bound_cidrs)},
        ("token_bound_cidrs",),
        {"token_bound_cidrs": []},
        "The CIDR blocks the role's tokens may be used from",
    ),
    FieldEndpoint(
        "bind-secret-id",
        lambda r: {"bind_secret_id": r.bind_secret_id},
        ("bind_secret_id",),
        {"bind_secret_id": True},
        "Whether login needs a secret ID",
    ),
    FieldEndpoint(
        "secret-id-num-uses",
        lambda r: {"secret_id_num_uses": r.secret_id_num_uses},
        ("secret_id_num_uses",),
        {"secret_id_num_uses": 0},
        "How many logins a new secret ID allows",
    ),
    FieldEndpoint(
        "secret-id-ttl",
        lambda r: {"secret_id_ttl": r.secret_id_ttl},
        ("secret_id_ttl",),
        {"secret_id_ttl": 0},
        "How long a new secret ID lives",
    ),
    FieldEndpoint(
        "period",
        lambda r: {"period": r.token.period, "token_period": r.token.period},
        ("token_period", "period"),
        {"token_period": 0},
        "The period of the role's tokens",
    ),
    FieldEndpoint(
        "token-num-uses",
        lambda r: {"token_num_uses": r.token.num_uses},
        ("token_num_uses",),
        {"token_num_uses": 0},
        "How many uses the role's tokens allow",
    ),
    FieldEndpoint(
        "token-ttl",
        lambda r: {"token_ttl": r.token.ttl},
        ("token_ttl",),
        {"token_ttl": 0},
        "The TTL of the role's tokens",
    ),
    FieldEndpoint(
        "token-max-ttl",
        lambda r: {"token_max_ttl": r.token.max_ttl},
        ("token_max_ttl",),
        {"token_max_ttl": 0},
        "The maximum TTL of the role's tokens",
    ),
)


def field_paths(roles: RolePaths) -> list[Path]:
    from strongroom.auth.approle._roles import RoleArgs

    role_fields = [f.name for f in dataclasses.fields(RoleArgs) if f.name != "role_name"]

    def only(args: RoleArgs, keep: dict[str, Any]) -> RoleArgs:
        cleared = {name: None for name in role_fields}
        return dataclasses.replace(args, **(cleared | keep))

    def handlers(endpoint: FieldEndpoint) -> dict[Operation, Any]:
        async def read(request: Request, args: RoleArgs) -> Response | None:
            name = role_name_of(args.role_name)
            role = await roles.state.load_role(storage_of(request), name)
            return None if role is None else Response(data=endpoint.read(role))

        async def update(request: Request, args: RoleArgs) -> None:
            given = {f: getattr(args, f) for f in endpoint.fields if getattr(args, f) is not None}
            if not given:
                raise InvalidRequest(f"missing {endpoint.fields[0]}")
            await roles.write_role(request, only(args, given), must_exist=True)

        async def delete(request: Request, args: RoleArgs) -> None:
            assert endpoint.reset is not None
            await roles.write_role(request, only(args, endpoint.reset), must_exist=True)

        ops: dict[Operation, Any] = {Operation.READ: read}
        if endpoint.fields:
            ops[Operation.UPDATE] = update
        if endpoint.reset is not None:
            ops[Operation.DELETE] = delete
        return ops

    return [
        Path(
            pattern=r"role/(?P<role_name>[^/]+)/" + endpoint.suffix,
            args=RoleArgs,
            operations=handlers(endpoint),
            synopsis=endpoint.synopsis,
            description=f"Read, set or reset the role's {endpoint.suffix} setting.",
        )
        for endpoint in FIELD_ENDPOINTS
    ]
