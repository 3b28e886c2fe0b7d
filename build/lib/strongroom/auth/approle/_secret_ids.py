"""AppRole secret IDs: ``role/<role_name>/secret-id`` (generate; LIST accessors),
``role/<role_name>/custom-secret-id``, ``role/<role_name>/secret-id/lookup`` and ``/destroy``,
``role/<role_name>/secret-id-accessor/lookup`` and ``/destroy``, and ``tidy/secret-id``.

Every path works on the role named in the path only: secret IDs and accessors are stored under
that role, so a caller allowed on ``role/a/*`` cannot read or destroy a secret ID of role b by
naming its accessor.

A generated secret ID is a random UUID (122 random bits), returned once in the response data
(which core may response-wrap when the client sent ``X-Vault-Wrap-TTL``) and stored only as an
HMAC. Per-secret-ID ``ttl``, ``num_uses``, ``cidr_list`` and ``token_bound_cidrs`` may only
narrow what the role allows.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

from strongroom.auth._common import cidrs_subset, parse_cidrs, storage_of
from strongroom.auth.approle._records import (
    ACCESSOR_PREFIX,
    SECRET_ID_PREFIX,
    AppRoleState,
    Role,
    SecretIDEntry,
    role_name_of,
)
from strongroom.errors import InvalidRequest
from strongroom.framework import BackgroundJob, Duration, NoArgs, Path, get_json
from strongroom.logical import Operation, Request, Response, Storage, StorageOp

__all__ = ["SecretIDArgs", "SecretIDPaths", "delete_ops"]

_MAX_CUSTOM_SECRET_ID = 4096


@dataclass(frozen=True, slots=True)
class SecretIDArgs:
    role_name: str
    metadata: Any = None
    cidr_list: list[str] | None = None
    token_bound_cidrs: list[str] | None = None
    num_uses: int | None = None
    ttl: Duration | None = None


@dataclass(frozen=True, slots=True)
class CustomSecretIDArgs(SecretIDArgs):
    secret_id: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class SecretIDValueArgs:
    role_name: str
    secret_id: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class AccessorArgs:
    role_name: str
    secret_id_accessor: str = ""


def _metadata(value: Any) -> dict[str, str]:
    """Vault takes metadata as a JSON-encoded string of string values (hvac sends that);
    a JSON object is accepted too."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise InvalidRequest("metadata: expected a JSON object of strings") from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise InvalidRequest("metadata: expected a JSON object of strings")
    return dict(value)


def delete_ops(role: str, digest: str, accessor: str) -> list[StorageOp]:
    return [
        StorageOp(AppRoleState.secret_key(role, digest)),
        StorageOp(AppRoleState.accessor_key(role, accessor)),
    ]


class SecretIDPaths:
    def __init__(self, state: AppRoleState) -> None:
        self.state = state
        self.tidy_job = BackgroundJob("approle tidy/secret-id")

    def paths(self) -> list[Path]:
        role = r"role/(?P<role_name>[^/]+)"
        return [
            Path(
                pattern=role + r"/secret-id/?",
                args=SecretIDArgs,
                operations={Operation.UPDATE: self.generate, Operation.LIST: self.list_accessors},
                synopsis="Generate a secret ID for a role, or LIST its accessors.",
                description=_GENERATE_HELP,
            ),
            Path(
                pattern=role + r"/custom-secret-id",
                args=CustomSecretIDArgs,
                operations={Operation.UPDATE: self.custom},
                synopsis="Register a secret ID chosen by the caller (push model).",
            ),
            Path(
                pattern=role + r"/secret-id/lookup",
                args=SecretIDValueArgs,
                operations={Operation.UPDATE: self.lookup},
                synopsis="Read the properties of a secret ID of this role.",
            ),
            Path(
                pattern=role + r"/secret-id/destroy",
                args=SecretIDValueArgs,
                operations={Operation.UPDATE: self.destroy, Operation.DELETE: self.destroy},
                synopsis="Destroy a secret ID of this role.",
            ),
            Path(
                pattern=role + r"/secret-id-accessor/lookup",
                args=AccessorArgs,
                operations={Operation.UPDATE: self.lookup_accessor},
                synopsis="Read the properties of a secret ID of this role by its accessor.",
            ),
            Path(
                pattern=role + r"/secret-id-accessor/destroy",
                args=AccessorArgs,
                operations={
                    Operation.UPDATE: self.destroy_accessor,
                    Operation.DELETE: self.destroy_accessor,
                },
                synopsis="Destroy a secret ID of this role by its accessor.",
            ),
            Path(
                pattern=r"tidy/secret-id",
                args=NoArgs,
                operations={Operation.UPDATE: self.tidy},
                synopsis="Delete expired secret IDs and dangling accessors.",
            ),
        ]

    # -- issue -----------------------------------------------------------------------------

    async def generate(self, request: Request, args: SecretIDArgs) -> Response:
        return await self._issue(request, args, str(uuid.uuid4()))

    async def custom(self, request: Request, args: CustomSecretIDArgs) -> Response:
        if not args.secret_id:
            raise InvalidRequest("missing secret_id")
        if len(args.secret_id) > _MAX_CUSTOM_SECRET_ID:
            raise InvalidRequest("secret_id: too long")
        return await self._issue(request, args, args.secret_id)

    async def _issue(self, request: Request, args: SecretIDArgs, secret_id: str) -> Response:
        storage = storage_of(request)
        role = await self.state.require_role(storage, role_name_of(args.role_name))
        num_uses = role.secret_id_num_uses if args.num_uses is None else args.num_uses
        if num_uses < 0:
            raise InvalidRequest("num_uses cannot be negative")
        if role.secret_id_num_uses and not 0 < num_uses <= role.secret_id_num_uses:
            raise InvalidRequest("num_uses cannot be higher than the role's secret_id_num_uses")
        ttl = role.secret_id_ttl if args.ttl is None else int(args.ttl)
        if role.secret_id_ttl and not 0 < ttl <= role.secret_id_ttl:
            raise InvalidRequest("ttl cannot be longer than the role's secret_id_ttl")
        cidrs = parse_cidrs(args.cidr_list or (), "cidr_list")
        if not cidrs_subset(cidrs, role.secret_id_bound_cidrs):
            raise InvalidRequest("cidr_list must be a subset of the role's secret_id_bound_cidrs")
        token_cidrs = parse_cidrs(args.token_bound_cidrs or (), "token_bound_cidrs")
        if not cidrs_subset(token_cidrs, role.token.bound_cidrs):
            raise InvalidRequest("token_bound_cidrs must be a subset of the role's")
        now = self.state.now()
        entry = SecretIDEntry(
            accessor=str(uuid.uuid4()),
            metadata=_metadata(args.metadata),
            cidr_list=cidrs,
            token_bound_cidrs=token_cidrs,
            num_uses=num_uses,
            ttl=ttl,
            creation_time=now,
            expiration_time=now + ttl if ttl else 0.0,
            last_updated_time=now,
        )
        digest = await self.state.hmac(secret_id)
        key = self.state.secret_key(role.name, digest)
        async with self.state.secret_locks.hold(f"{role.name}/{digest}"):
            if await storage.get(key) is not None:
                raise InvalidRequest("secret_id already registered")
            await storage.transaction(
                [
                    StorageOp(key, orjson.dumps(entry.to_record())),
                    StorageOp(
                        self.state.accessor_key(role.name, entry.accessor),
                        orjson.dumps({"hmac": digest}),
                    ),
                ]
            )
        return Response(
            data={
                "secret_id": secret_id,
                "secret_id_accessor": entry.accessor,
                "secret_id_ttl": ttl,
                "secret_id_num_uses": num_uses,
            }
        )

    async def list_accessors(self, request: Request, args: SecretIDArgs) -> Response | None:
        storage = storage_of(request)
        role = await self.state.require_role(storage, role_name_of(args.role_name))
        keys = await storage.list(f"{ACCESSOR_PREFIX}{role.name}/")
        return Response(data={"keys": keys}) if keys else None

    # -- by secret ID ----------------------------------------------------------------------

    async def _entry(self, storage: Storage, role: Role, digest: str) -> SecretIDEntry | None:
        """The live entry, or None; an expired one is deleted on sight."""
        record = await get_json(storage, self.state.secret_key(role.name, digest))
        if record is None:
            return None
        entry = SecretIDEntry.from_record(record)
        if entry.expired(self.state.now()):
            await storage.transaction(delete_ops(role.name, digest, entry.accessor))
            return None
        return entry

    async def lookup(self, request: Request, args: SecretIDValueArgs) -> Response | None:
        if not args.secret_id:
            raise InvalidRequest("missing secret_id")
        storage = storage_of(request)
        role = await self.state.require_role(storage, role_name_of(args.role_name))
        entry = await self._entry(storage, role, await self.state.hmac(args.secret_id))
        return None if entry is None else Response(data=entry.describe())

    async def destroy(self, request: Request, args: SecretIDValueArgs) -> None:
        if not args.secret_id:
            raise InvalidRequest("missing secret_id")
        storage = storage_of(request)
        role = await self.state.require_role(storage, role_name_of(args.role_name))
        digest = await self.state.hmac(args.secret_id)
        async with self.state.secret_locks.hold(f"{role.name}/{digest}"):
            record = await get_json(storage, self.state.secret_key(role.name, digest))
            if record is not None:
                accessor = str(record["accessor"])
                await storage.transaction(delete_ops(role.name, digest, accessor))

    # -- by accessor -----------------------------------------------------------------------

    async def _by_accessor(
        self, storage: Storage, args: AccessorArgs
    ) -> tuple[Role, str, SecretIDEntry | None]:
        if not args.secret_id_accessor:
            raise InvalidRequest("missing secret_id_accessor")
        role = await self.state.require_role(storage, role_name_of(args.role_name))
        # looked up under this role only: another role's accessor is simply not found here
        index = await get_json(storage, self.state.accessor_key(role.name, args.secret_id_accessor))
        if index is None:
            raise InvalidRequest("failed to find accessor entry for secret_id_accessor")
        digest = str(index["hmac"])
        return role, digest, await self._entry(storage, role, digest)

    async def lookup_accessor(self, request: Request, args: AccessorArgs) -> Response | None:
        _role, _digest, entry = await self._by_accessor(storage_of(request), args)
        return None if entry is None else Response(data=entry.describe())

    async def destroy_accessor(self, request: Request, args: AccessorArgs) -> None:
        storage = storage_of(request)
        role, digest, _entry = await self._by_accessor(storage, args)
        async with self.state.secret_locks.hold(f"{role.name}/{digest}"):
            await storage.transaction(delete_ops(role.name, digest, args.secret_id_accessor))

    # -- tidy ------------------------------------------------------------------------------

    async def tidy(self, request: Request, args: NoArgs) -> Response:
        # Vault runs it in the background and answers 202 with a warning
        storage = storage_of(request)
        return self.tidy_job.start(lambda: self._tidy(storage))

    async def _tidy(self, storage: Storage) -> str:
        removed = 0
        for role_dir in await storage.list(SECRET_ID_PREFIX):
            role = role_dir.rstrip("/")
            live: set[str] = set()
            for digest in await storage.list(f"{SECRET_ID_PREFIX}{role}/"):
                async with self.state.secret_locks.hold(f"{role}/{digest}"):
                    record = await get_json(storage, self.state.secret_key(role, digest))
                    if record is None:
                        continue
                    entry = SecretIDEntry.from_record(record)
                    if entry.expired(self.state.now()):
                        await storage.transaction(delete_ops(role, digest, entry.accessor))
                        removed += 1
                    else:
                        live.add(entry.accessor)
            for accessor in await storage.list(f"{ACCESSOR_PREFIX}{role}/"):
                if accessor not in live:
                    await storage.delete(self.state.accessor_key(role, accessor))
        return f"removed {removed} expired secret IDs"


_GENERATE_HELP = """\
POST generates a secret ID (a random UUID) for the role: optional metadata (a JSON object of
strings, set on tokens as metadata), cidr_list, token_bound_cidrs, num_uses and ttl, each
within what the role allows. The answer holds secret_id, secret_id_accessor, secret_id_ttl and
secret_id_num_uses; the secret ID is shown only here. LIST returns the accessors."""
