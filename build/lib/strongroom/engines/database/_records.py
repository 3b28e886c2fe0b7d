"""Stored records of the database engine and where they live in the mount's view.

==========================  ==========================================================
``config/<name>``           :class:`DbConfig`: connection details, root password
``role/<name>``             :class:`Role`: a dynamic role (statements, TTLs)
``static-role/<name>``      :class:`StaticRole`: a managed existing user and its password
==========================  ==========================================================

The keys are Vault's. Everything here is behind the barrier; passwords are stored because the
engine must connect (root) and hand them out (static roles), and are never returned by a
config or role read. ``pending_password`` is a write-ahead record of a rotation in flight:
it is stored before the database is changed and cleared after, so a crash in between leaves
enough to recover (see ``config.py`` and ``static.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from strongroom.engines.database._postgres import ConnectionSettings
from strongroom.errors import InternalError, InvalidRequest
from strongroom.framework import get_json, put_json
from strongroom.logical import Request, Storage

__all__ = [
    "CONFIG_PREFIX",
    "NAME",
    "ROLE_PREFIX",
    "STATIC_PREFIX",
    "DbConfig",
    "Role",
    "StaticRole",
    "check_credential_type",
    "check_substitutable",
    "load_config",
    "load_role",
    "load_static",
    "save",
    "storage_of",
]

CONFIG_PREFIX = "config/"
ROLE_PREFIX = "role/"
STATIC_PREFIX = "static-role/"
# Vault's GenericNameRegex, ASCII only
NAME = r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?"
# a name substituted into operator-written statements must not be able to close a quote
_SUBSTITUTABLE = re.compile(r"[^\x00-\x20\"'`;\\]{1,63}")


def storage_of(request: Request) -> Storage:
    if request.storage is None:
        raise InternalError("request carries no storage view")
    return request.storage


def check_substitutable(username: str, what: str) -> None:
    """Names we paste into operator statements (``"{{name}}"``) may not hold quotes,
    backslashes, semicolons, spaces or control characters, and fit PostgreSQL's 63 bytes.

    Raises:
        InvalidRequest: the name is unsafe to substitute.
    """
    if _SUBSTITUTABLE.fullmatch(username) is None or len(username.encode()) > 63:
        raise InvalidRequest(
            f"{what}: must be 1-63 bytes without quotes, backslashes, semicolons, "
            "whitespace or control characters"
        )


def check_credential_type(value: str) -> str:
    if value not in ("", "password"):
        raise InvalidRequest(
            f'credential_type "{value}" is not supported: the PostgreSQL plugin issues '
            '"password" credentials'
        )
    return "password"


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(item) for item in value or ())


@dataclass(frozen=True, slots=True)
class DbConfig:
    name: str
    plugin_name: str
    connection_url: str = field(repr=False)  # may hold a literal password
    username: str = ""
    password: str = field(default="", repr=False)
    pending_password: str = field(default="", repr=False)
    allowed_roles: tuple[str, ...] = ()
    verify_connection: bool = True
    password_policy: str = ""
    root_rotation_statements: tuple[str, ...] = ()
    username_template: str = ""
    disable_escaping: bool = False
    max_open_connections: int = 4
    max_idle_connections: int = 0
    max_connection_lifetime: int = 0

    def settings(self, password: str | None = None) -> ConnectionSettings:
        return ConnectionSettings(
            connection_url=self.connection_url,
            username=self.username,
            password=self.password if password is None else password,
            disable_escaping=self.disable_escaping,
            max_open_connections=self.max_open_connections,
            max_connection_lifetime=self.max_connection_lifetime,
        )

    def allows(self, role: str) -> bool:
        """Vault's allowed_roles: ``*``, an exact name, or a glob with ``*``."""
        for pattern in self.allowed_roles:
            if pattern == "*" or pattern == role:
                return True
            if "*" in pattern:
                regex = ".*".join(re.escape(part) for part in pattern.split("*"))
                if re.fullmatch(regex, role):
                    return True
        return False

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "plugin_name": self.plugin_name,
            "connection_url": self.connection_url,
            "username": self.username,
            "password": self.password,
            "pending_password": self.pending_password,
            "allowed_roles": list(self.allowed_roles),
            "verify_connection": self.verify_connection,
            "password_policy": self.password_policy,
            "root_rotation_statements": list(self.root_rotation_statements),
            "username_template": self.username_template,
            "disable_escaping": self.disable_escaping,
            "max_open_connections": self.max_open_connections,
            "max_idle_connections": self.max_idle_connections,
            "max_connection_lifetime": self.max_connection_lifetime,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> DbConfig:
        return cls(
            name=raw["name"],
            plugin_name=raw["plugin_name"],
            connection_url=raw["connection_url"],
            username=raw.get("username", ""),
            password=raw.get("password", ""),
            pending_password=raw.get("pending_password", ""),
            allowed_roles=_strings(raw.get("allowed_roles")),
            verify_connection=bool(raw.get("verify_connection", True)),
            password_policy=raw.get("password_policy", ""),
            root_rotation_statements=_strings(raw.get("root_rotation_statements")),
            username_template=raw.get("username_template", ""),
            disable_escaping=bool(raw.get("disable_escaping", False)),
            max_open_connections=int(raw.get("max_open_connections", 4)),
            max_idle_connections=int(raw.get("max_idle_connections", 0)),
            max_connection_lifetime=int(raw.get("max_connection_lifetime", 0)),
        )


@dataclass(frozen=True, slots=True)
class Role:
    name: str
    db_name: str
    creation_statements: tuple[str, ...]
    revocation_statements: tuple[str, ...] = ()
    rollback_statements: tuple[str, ...] = ()
    renew_statements: tuple[str, ...] = ()
    default_ttl: int = 0
    max_ttl: int = 0
    credential_type: str = "password"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "db_name": self.db_name,
            "creation_statements": list(self.creation_statements),
            "revocation_statements": list(self.revocation_statements),
            "rollback_statements": list(self.rollback_statements),
            "renew_statements": list(self.renew_statements),
            "default_ttl": self.default_ttl,
            "max_ttl": self.max_ttl,
            "credential_type": self.credential_type,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Role:
        return cls(
            name=raw["name"],
            db_name=raw["db_name"],
            creation_statements=_strings(raw.get("creation_statements")),
            revocation_statements=_strings(raw.get("revocation_statements")),
            rollback_statements=_strings(raw.get("rollback_statements")),
            renew_statements=_strings(raw.get("renew_statements")),
            default_ttl=int(raw.get("default_ttl", 0)),
            max_ttl=int(raw.get("max_ttl", 0)),
            credential_type=raw.get("credential_type", "password"),
        )


@dataclass(frozen=True, slots=True)
class StaticRole:
    name: str
    db_name: str
    username: str
    rotation_period: int
    rotation_statements: tuple[str, ...] = ()
    credential_type: str = "password"
    password: str = field(default="", repr=False)
    pending_password: str = field(default="", repr=False)
    last_vault_rotation: float = 0.0

    def next_rotation(self) -> float:
        return self.last_vault_rotation + self.rotation_period

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "db_name": self.db_name,
            "username": self.username,
            "rotation_period": self.rotation_period,
            "rotation_statements": list(self.rotation_statements),
            "credential_type": self.credential_type,
            "password": self.password,
            "pending_password": self.pending_password,
            "last_vault_rotation": self.last_vault_rotation,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> StaticRole:
        return cls(
            name=raw["name"],
            db_name=raw["db_name"],
            username=raw["username"],
            rotation_period=int(raw["rotation_period"]),
            rotation_statements=_strings(raw.get("rotation_statements")),
            credential_type=raw.get("credential_type", "password"),
            password=raw.get("password", ""),
            pending_password=raw.get("pending_password", ""),
            last_vault_rotation=float(raw.get("last_vault_rotation", 0.0)),
        )


async def load_config(storage: Storage, name: str) -> DbConfig | None:
    raw = await get_json(storage, CONFIG_PREFIX + name)
    return None if raw is None else DbConfig.from_json(raw)


async def load_role(storage: Storage, name: str) -> Role | None:
    raw = await get_json(storage, ROLE_PREFIX + name)
    return None if raw is None else Role.from_json(raw)


async def load_static(storage: Storage, name: str) -> StaticRole | None:
    raw = await get_json(storage, STATIC_PREFIX + name)
    return None if raw is None else StaticRole.from_json(raw)


async def save(storage: Storage, record: DbConfig | Role | StaticRole) -> None:
    prefix = (
        CONFIG_PREFIX
        if isinstance(record, DbConfig)
        else ROLE_PREFIX
        if isinstance(record, Role)
        else STATIC_PREFIX
    )
    await put_json(storage, prefix + record.name, record.to_json())
