"""AppRole ``role/`` (LIST), ``role/<role_name>`` (create, read, update, delete) and
``role/<role_name>/role-id`` (read, update).

A role needs at least one constraint: ``bind_secret_id`` (the default), ``secret_id_bound_cidrs``
or ``token_bound_cidrs``; otherwise anyone who learns the role ID could log in. Role IDs are
unique across the mount (login finds the role by its role ID). ``local_secret_ids`` can only
be set when the role is created.
"""

from __future__ import annotations

import dataclasses
import hmac
import uuid
from dataclasses import dataclass, field

import orjson

from strongroom.auth._common import given, parse_cidrs, storage_of
from strongroom.auth._tokenfields import TokenFieldArgs
from strongroom.auth.approle._fields import field_paths
from strongroom.auth.approle._records import (
    ACCESSOR_PREFIX,
    ROLE_ID_PREFIX,
    ROLE_PREFIX,
    SECRET_ID_PREFIX,
    AppRoleState,
    Role,
    role_name_of,
)
from strongroom.errors import InvalidRequest
from strongroom.framework import Duration, NoArgs, Path, list_all
from strongroom.logical import Operation, Request, Response, Storage, StorageOp

__all__ = ["RoleArgs", "RoleIDArgs", "RolePaths"]

_MAX_ROLE_ID = 4096


@dataclass(frozen=True, slots=True)
class RoleArgs(TokenFieldArgs):
    role_name: str
    bind_secret_id: bool | None = None
    secret_id_bound_cidrs: list[str] | None = None
    bound_cidr_list: list[str] | None = None  # deprecated name of secret_id_bound_cidrs
    secret_id_num_uses: int | None = None
    secret_id_ttl: Duration | None = None
    local_secret_ids: bool | None = None
    enable_local_secret_ids: bool | None = None  # the name hvac sends
    role_id: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class RoleNameArgs:
    role_name: str


@dataclass(frozen=True, slots=True)
class RoleIDArgs:
    role_name: str
    role_id: str = field(default="", repr=False)


def _check_role_id(role_id: str) -> str:
    """A role ID is the identity alias name: it must already be in the identity store's
    normal form (no surrounding whitespace, no control characters), or logins would fail."""
    if (
        not role_id
        or role_id != role_id.strip()
        or len(role_id) > _MAX_ROLE_ID
        or any(ord(ch) < 32 or ord(ch) == 127 for ch in role_id)
    ):
        raise InvalidRequest(
            "role_id: 1-4096 characters, no surrounding whitespace or control characters"
        )
    return role_id


class RolePaths:
    def __init__(self, state: AppRoleState) -> None:
        self.state = state

    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=r"role/?",
                args=NoArgs,
                operations={Operation.LIST: self.list_roles},
                synopsis="List the roles of this mount.",
            ),
            Path(
                pattern=r"role/(?P<role_name>[^/]+)/role-id",
                args=RoleIDArgs,
                operations={Operation.READ: self.read_role_id, Operation.UPDATE: self.set_role_id},
                synopsis="Read or set a role's role ID.",
                description="The role ID must be unique across the mount's roles.",
            ),
            Path(
                pattern=r"role/(?P<role_name>[^/]+)",
                args=RoleArgs,
                operations={
                    Operation.CREATE: self.write_role,
                    Operation.UPDATE: self.write_role,
                    Operation.READ: self.read_role,
                    Operation.DELETE: self.delete_role,
                },
                existence_check=self.role_exists,
                synopsis="Manage an AppRole.",
                description=_ROLE_HELP,
            ),
            *field_paths(self),
        ]

    async def list_roles(self, request: Request, args: NoArgs) -> Response | None:
        keys = [k for k in await storage_of(request).list(ROLE_PREFIX) if not k.endswith("/")]
        return Response(data={"keys": keys}) if keys else None

    async def role_exists(self, request: Request, args: RoleArgs) -> bool:
        name = role_name_of(args.role_name)
        return await self.state.load_role(storage_of(request), name) is not None

    async def read_role(self, request: Request, args: RoleArgs) -> Response | None:
        role = await self.state.load_role(storage_of(request), role_name_of(args.role_name))
        return None if role is None else Response(data=role.describe())

    async def write_role(
        self, request: Request, args: RoleArgs, *, must_exist: bool = False
    ) -> None:
        name = role_name_of(args.role_name)
        storage = storage_of(request)
        async with self.state.role_locks.hold("roles"):
            existing = await self.state.load_role(storage, name)
            if existing is None and must_exist:
                raise InvalidRequest(f'role "{name}" does not exist')
            if args.role_id is not None:
                _check_role_id(args.role_id)
            role = existing or Role(name=name, role_id=args.role_id or str(uuid.uuid4()))
            changes = given(args, exclude=("role_name", "role_id"))
            local = args.local_secret_ids
            if local is None:
                local = args.enable_local_secret_ids
            if local is not None and existing is not None and local != existing.local_secret_ids:
                raise InvalidRequest("local_secret_ids can only be modified during role creation")
            cidrs = changes.get("secret_id_bound_cidrs", changes.get("bound_cidr_list"))
            if args.secret_id_num_uses is not None and args.secret_id_num_uses < 0:
                raise InvalidRequest("secret_id_num_uses cannot be negative")
            role = dataclasses.replace(
                role,
                bind_secret_id=changes.get("bind_secret_id", role.bind_secret_id),
                secret_id_bound_cidrs=(
                    role.secret_id_bound_cidrs
                    if cidrs is None
                    else parse_cidrs(cidrs, "secret_id_bound_cidrs")
                ),
                secret_id_num_uses=changes.get("secret_id_num_uses", role.secret_id_num_uses),
                secret_id_ttl=int(changes.get("secret_id_ttl", role.secret_id_ttl)),
                local_secret_ids=role.local_secret_ids if local is None else local,
                token=role.token.updated(args),
            )
            if existing is not None and args.role_id:
                role = dataclasses.replace(role, role_id=args.role_id)
            if not (role.bind_secret_id or role.secret_id_bound_cidrs or role.token.bound_cidrs):
                raise InvalidRequest(
                    "at least one constraint should be enabled on the role: bind_secret_id, "
                    "secret_id_bound_cidrs or token_bound_cidrs"
                )
            await self._save(storage, role, existing)

    async def _save(self, storage: Storage, role: Role, existing: Role | None) -> None:
        """Write the role and keep the role-ID index unique (caller holds the roles lock)."""
        new_index = ROLE_ID_PREFIX + await self.state.hmac(role.role_id)
        ops: list[StorageOp] = []
        if existing is None or not hmac.compare_digest(existing.role_id, role.role_id):
            owner = await storage.get(new_index)
            if owner is not None:
                raise InvalidRequest("role_id already in use")
            if existing is not None:
                old_index = ROLE_ID_PREFIX + await self.state.hmac(existing.role_id)
                ops.append(StorageOp(old_index))
            ops.append(StorageOp(new_index, _index_value(role.name)))
        ops.append(StorageOp(ROLE_PREFIX + role.name, _encode(role.to_record())))
        await storage.transaction(ops)

    async def delete_role(self, request: Request, args: RoleArgs) -> None:
        name = role_name_of(args.role_name)
        storage = storage_of(request)
        async with self.state.role_locks.hold("roles"):
            role = await self.state.load_role(storage, name)
            if role is None:
                return
            ops = [
                StorageOp(ROLE_PREFIX + name),
                StorageOp(ROLE_ID_PREFIX + await self.state.hmac(role.role_id)),
            ]
            for prefix in (SECRET_ID_PREFIX, ACCESSOR_PREFIX):
                for key in await list_all(storage, f"{prefix}{name}/"):
                    ops.append(StorageOp(f"{prefix}{name}/{key}"))
            await storage.transaction(ops)

    async def read_role_id(self, request: Request, args: RoleIDArgs) -> Response | None:
        role = await self.state.load_role(storage_of(request), role_name_of(args.role_name))
        return None if role is None else Response(data={"role_id": role.role_id})

    async def set_role_id(self, request: Request, args: RoleIDArgs) -> None:
        if not args.role_id:
            raise InvalidRequest("missing role_id")
        _check_role_id(args.role_id)
        storage = storage_of(request)
        async with self.state.role_locks.hold("roles"):
            role = await self.state.require_role(storage, role_name_of(args.role_name))
            await self._save(storage, dataclasses.replace(role, role_id=args.role_id), role)


def _encode(value: object) -> bytes:
    return orjson.dumps(value)


def _index_value(name: str) -> bytes:
    return _encode({"name": name})


_ROLE_HELP = """\
Fields: bind_secret_id (default true), secret_id_bound_cidrs, secret_id_num_uses,
secret_id_ttl, local_secret_ids (creation only), role_id (optional; a random UUID otherwise)
and the token_* fields. At least one of bind_secret_id, secret_id_bound_cidrs and
token_bound_cidrs must be set. Role names are case-insensitive."""
