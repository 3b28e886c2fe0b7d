"""AppRole records and their storage layout, shared by the path families.

Storage (the mount's view, behind the barrier)::

    hmac-key                          32 random bytes, made at first initialize
    role/<name>                       the role (role_id, bind_secret_id, secret-ID defaults, token)
    role_id/<HMAC(role_id)>           {"name": <role>}: login finds the role from its role ID
    secret_id/<role>/<HMAC(secret)>   one secret ID's entry (accessor, uses left, expiry, …)
    accessor/<role>/<accessor>        {"hmac": <HMAC(secret)>}: the accessor index

Secret IDs are never stored, only their HMAC-SHA256 under the mount's key: a storage dump
(or a backup) does not let anyone log in. Accessors are indexed *per role*, so an accessor
can only ever be looked up or destroyed through the role it belongs to. Role names are
case-insensitive (lower-cased, as Vault does for new roles).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from strongroom.auth._common import rfc3339
from strongroom.auth._tokenfields import TokenParams
from strongroom.errors import InvalidRequest
from strongroom.framework import KeyLocks, get_json
from strongroom.logical import Storage

__all__ = [
    "ACCESSOR_PREFIX",
    "ROLE_ID_PREFIX",
    "ROLE_PREFIX",
    "SECRET_ID_PREFIX",
    "AppRoleState",
    "Role",
    "SecretIDEntry",
    "role_name_of",
]

ROLE_PREFIX = "role/"
ROLE_ID_PREFIX = "role_id/"
SECRET_ID_PREFIX = "secret_id/"  # noqa: S105 (a storage prefix)
ACCESSOR_PREFIX = "accessor/"
_HMAC_KEY = "hmac-key"
_ROLE_NAME = re.compile(r"[\w.@\- ]+")
_MAX_ROLE_NAME = 4096


def role_name_of(raw: str) -> str:
    """The stored spelling of a role name: lower-case, checked.

    Raises:
        InvalidRequest: empty, too long, only dots, or characters outside a-z 0-9 _ - . @ space.
    """
    name = raw.lower()
    if (
        not name
        or len(name.encode()) >= _MAX_ROLE_NAME
        or _ROLE_NAME.fullmatch(name) is None
        or set(name) == {"."}
        or name != name.strip()
    ):
        raise InvalidRequest(
            "role_name: letters, digits, space, '_', '-', '.' and '@' only, under 4096 bytes"
        )
    return name


@dataclass(frozen=True, slots=True)
class Role:
    name: str
    role_id: str = field(repr=False)
    bind_secret_id: bool = True
    secret_id_bound_cidrs: tuple[str, ...] = ()
    secret_id_num_uses: int = 0
    secret_id_ttl: int = 0
    local_secret_ids: bool = False
    token: TokenParams = field(default_factory=TokenParams)

    def to_record(self) -> dict[str, Any]:
        return {
            "role_id": self.role_id,
            "bind_secret_id": self.bind_secret_id,
            "secret_id_bound_cidrs": list(self.secret_id_bound_cidrs),
            "secret_id_num_uses": self.secret_id_num_uses,
            "secret_id_ttl": self.secret_id_ttl,
            "local_secret_ids": self.local_secret_ids,
            "token": self.token.to_record(),
        }

    @classmethod
    def from_record(cls, name: str, record: Mapping[str, Any]) -> Role:
        return cls(
            name=name,
            role_id=str(record["role_id"]),
            bind_secret_id=bool(record.get("bind_secret_id", True)),
            secret_id_bound_cidrs=tuple(record.get("secret_id_bound_cidrs", ())),
            secret_id_num_uses=int(record.get("secret_id_num_uses", 0)),
            secret_id_ttl=int(record.get("secret_id_ttl", 0)),
            local_secret_ids=bool(record.get("local_secret_ids", False)),
            token=TokenParams.from_record(record.get("token")),
        )

    def describe(self) -> dict[str, Any]:
        """A role read: everything but the role ID (which has its own path)."""
        return {
            "bind_secret_id": self.bind_secret_id,
            "local_secret_ids": self.local_secret_ids,
            "secret_id_bound_cidrs": list(self.secret_id_bound_cidrs),
            "secret_id_num_uses": self.secret_id_num_uses,
            "secret_id_ttl": self.secret_id_ttl,
            **self.token.describe(),
        }


@dataclass(frozen=True, slots=True)
class SecretIDEntry:
    accessor: str
    metadata: dict[str, str] = field(default_factory=dict)
    cidr_list: tuple[str, ...] = ()
    token_bound_cidrs: tuple[str, ...] = ()
    num_uses: int = 0  # uses left; 0 = unlimited
    ttl: int = 0
    creation_time: float = 0.0
    expiration_time: float = 0.0  # 0 = never
    last_updated_time: float = 0.0

    def expired(self, now: float) -> bool:
        return self.expiration_time != 0.0 and now >= self.expiration_time

    def to_record(self) -> dict[str, Any]:
        return {
            "accessor": self.accessor,
            "metadata": self.metadata,
            "cidr_list": list(self.cidr_list),
            "token_bound_cidrs": list(self.token_bound_cidrs),
            "num_uses": self.num_uses,
            "ttl": self.ttl,
            "creation_time": self.creation_time,
            "expiration_time": self.expiration_time,
            "last_updated_time": self.last_updated_time,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> SecretIDEntry:
        return cls(
            accessor=str(record["accessor"]),
            metadata=dict(record.get("metadata") or {}),
            cidr_list=tuple(record.get("cidr_list", ())),
            token_bound_cidrs=tuple(record.get("token_bound_cidrs", ())),
            num_uses=int(record.get("num_uses", 0)),
            ttl=int(record.get("ttl", 0)),
            creation_time=float(record.get("creation_time", 0)),
            expiration_time=float(record.get("expiration_time", 0)),
            last_updated_time=float(record.get("last_updated_time", 0)),
        )

    def describe(self) -> dict[str, Any]:
        return {
            "cidr_list": list(self.cidr_list),
            "creation_time": rfc3339(self.creation_time),
            "expiration_time": rfc3339(self.expiration_time),
            "last_updated_time": rfc3339(self.last_updated_time),
            "metadata": self.metadata,
            "secret_id_accessor": self.accessor,
            "secret_id_num_uses": self.num_uses,
            "secret_id_ttl": self.ttl,
            "token_bound_cidrs": list(self.token_bound_cidrs),
        }


class AppRoleState:
    """Per-mount state: the HMAC key (loaded at initialize), locks, the clock."""

    def __init__(self, storage: Storage, now: Callable[[], float]) -> None:
        self._storage = storage
        self.now = now
        self._key: bytes = b""
        # one lock per secret ID (HMAC) for the use-count read-modify-write, one for role
        # writes (role IDs must stay unique across roles)
        self.secret_locks = KeyLocks()
        self.role_locks = KeyLocks()

    async def initialize(self) -> None:
        key = await self._storage.get(_HMAC_KEY)
        if key is None:
            key = secrets.token_bytes(32)
            await self._storage.put(_HMAC_KEY, key)
        self._key = key

    async def hmac(self, value: str) -> str:
        if not self._key:
            await self.initialize()
        return hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()

    async def load_role(self, storage: Storage, name: str) -> Role | None:
        record = await get_json(storage, ROLE_PREFIX + name)
        return None if record is None else Role.from_record(name, record)

    async def require_role(self, storage: Storage, name: str) -> Role:
        role = await self.load_role(storage, name)
        if role is None:
            raise InvalidRequest(f'role "{name}" does not exist')
        return role

    @staticmethod
    def secret_key(role: str, digest: str) -> str:
        return f"{SECRET_ID_PREFIX}{role}/{digest}"

    @staticmethod
    def accessor_key(role: str, accessor: str) -> str:
        return f"{ACCESSOR_PREFIX}{role}/{accessor}"
