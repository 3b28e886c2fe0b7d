"""Mount tables: which backend lives at which path, and its tunables.

Two tables, both stored behind the barrier: secret mounts at ``core/mounts`` and auth
mounts at ``core/auth``. Each mount's data lives in its own storage view, keyed by the
mount's UUID (``logical/<uuid>/`` or ``auth/<uuid>/``), so a remount moves no data and a
disable removes exactly one prefix.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from strongroom.errors import InvalidRequest
from strongroom.logical import Storage

__all__ = [
    "AUTH_TABLE_KEY",
    "MOUNT_TABLE_KEY",
    "MountChanges",
    "MountConfig",
    "MountEntry",
    "MountTable",
    "login_token_type",
    "mount_changes",
    "mount_token_type",
    "new_accessor",
    "validate_mount_path",
]

MOUNT_TABLE_KEY = "core/mounts"
AUTH_TABLE_KEY = "core/auth"

_MOUNT_PATH = re.compile(r"[A-Za-z0-9_\-.@]+(?:/[A-Za-z0-9_\-.@]+)*/")
# Paths whose first segment core owns: nobody mounts over them.
PROTECTED_PREFIXES = ("sys/", "auth/", "cubbyhole/", "identity/", "audit/")


def new_accessor(kind: str) -> str:
    return f"{kind}_{uuid.uuid4().hex[:8]}"


def validate_mount_path(path: str) -> str:
    """Canonical mount path: no leading slash, exactly one trailing slash, sane characters."""
    path = path.strip().lstrip("/")
    if not path.endswith("/"):
        path += "/"
    if not _MOUNT_PATH.fullmatch(path) or any(seg in (".", "..") for seg in path.split("/")):
        raise InvalidRequest(f"invalid mount path {path!r}")
    return path


@dataclass(frozen=True, slots=True)
class MountConfig:
    default_lease_ttl: int = 0  # 0: inherit the system default
    max_lease_ttl: int = 0
    force_no_cache: bool = False
    listing_visibility: str = ""
    audit_non_hmac_request_keys: tuple[str, ...] = ()
    audit_non_hmac_response_keys: tuple[str, ...] = ()
    passthrough_request_headers: tuple[str, ...] = ()
    allowed_response_headers: tuple[str, ...] = ()
    # auth mounts only: "" (read as "default-service"), "default-batch", "service", "batch"
    token_type: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "default_lease_ttl": self.default_lease_ttl,
            "max_lease_ttl": self.max_lease_ttl,
            "force_no_cache": self.force_no_cache,
        }
        if self.listing_visibility:
            out["listing_visibility"] = self.listing_visibility
        if self.token_type:
            out["token_type"] = self.token_type
        for name in (
            "audit_non_hmac_request_keys",
            "audit_non_hmac_response_keys",
            "passthrough_request_headers",
            "allowed_response_headers",
        ):
            value = getattr(self, name)
            if value:
                out[name] = list(value)
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> MountConfig:
        return cls(
            default_lease_ttl=int(raw.get("default_lease_ttl", 0)),
            max_lease_ttl=int(raw.get("max_lease_ttl", 0)),
            force_no_cache=bool(raw.get("force_no_cache", False)),
            listing_visibility=str(raw.get("listing_visibility", "")),
            audit_non_hmac_request_keys=tuple(raw.get("audit_non_hmac_request_keys", ())),
            audit_non_hmac_response_keys=tuple(raw.get("audit_non_hmac_response_keys", ())),
            passthrough_request_headers=tuple(raw.get("passthrough_request_headers", ())),
            allowed_response_headers=tuple(raw.get("allowed_response_headers", ())),
            token_type=str(raw.get("token_type", "")),
        )


@dataclass(frozen=True, slots=True)
class MountEntry:
    path: str  # relative to its table: "secret/" or, for auth, "userpass/"
    type: str
    uuid: str
    accessor: str
    description: str = ""
    config: MountConfig = field(default_factory=MountConfig)
    options: dict[str, str] = field(default_factory=dict)
    local: bool = False
    seal_wrap: bool = False
    external_entropy_access: bool = False
    is_auth: bool = False

    @property
    def full_path(self) -> str:
        """Where requests reach it: "secret/" or "auth/userpass/"."""
        return f"auth/{self.path}" if self.is_auth else self.path

    @property
    def storage_prefix(self) -> str:
        if self.type == "system":
            return "sys/"
        return f"{'auth' if self.is_auth else 'logical'}/{self.uuid}/"

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "type": self.type,
            "uuid": self.uuid,
            "accessor": self.accessor,
            "description": self.description,
            "config": self.config.to_json(),
            "options": dict(self.options),
            "local": self.local,
            "seal_wrap": self.seal_wrap,
            "external_entropy_access": self.external_entropy_access,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any], *, is_auth: bool) -> MountEntry:
        return cls(
            path=raw["path"],
            type=raw["type"],
            uuid=raw["uuid"],
            accessor=raw["accessor"],
            description=raw.get("description", ""),
            config=MountConfig.from_json(raw.get("config", {})),
            options={str(k): str(v) for k, v in (raw.get("options") or {}).items()},
            local=bool(raw.get("local", False)),
            seal_wrap=bool(raw.get("seal_wrap", False)),
            external_entropy_access=bool(raw.get("external_entropy_access", False)),
            is_auth=is_auth,
        )

    def describe(self) -> dict[str, Any]:
        """The shape sys/mounts and sys/auth list for one mount."""
        config = self.config.to_json()
        if self.is_auth:
            # Vault's auth mounts always report the token type they issue
            config["token_type"] = self.config.token_type or "default-service"
        described = {
            "accessor": self.accessor,
            "config": config,
            "description": self.description,
            "external_entropy_access": self.external_entropy_access,
            "local": self.local,
            "options": dict(self.options) if self.options else None,
            "plugin_version": "",
            "running_plugin_version": f"v0.1.0+builtin.{self.type}",
            "running_sha256": "",
            "seal_wrap": self.seal_wrap,
            "type": self.type,
            "uuid": self.uuid,
        }
        if self.type not in _CORE_TYPES:
            # Vault reports it for plugin-backed mounts, never for its own core mounts
            described["deprecation_status"] = "supported"
        return described


_CORE_TYPES = frozenset({"system", "token", "identity", "cubbyhole"})

_MOUNT_TOKEN_TYPES = ("default-service", "default-batch", "service", "batch")


def mount_token_type(value: Any, entry: MountEntry | None = None) -> str:
    """A valid ``token_type`` for an auth mount (Vault: ``""`` means ``default-service``).

    ``entry`` (when tuning) must be an auth mount other than the token store, whose tokens
    follow only its own rules.
    """
    if entry is not None and not entry.is_auth:
        raise InvalidRequest("'token_type' can only be modified on auth mounts")
    if entry is not None and entry.type == "token":
        raise InvalidRequest("'token_type' cannot be set for 'token' or 'ns_token' auth mounts")
    if not isinstance(value, str) or value not in ("", *_MOUNT_TOKEN_TYPES):
        raise InvalidRequest(
            "invalid value for 'token_type': expected one of " + ", ".join(_MOUNT_TOKEN_TYPES)
        )
    return value or "default-service"


def login_token_type(entry: MountEntry, requested: str) -> str:
    """The kind of token a login through ``entry`` mints, as Vault's router decides it.

    ``requested`` is what the role or user asked for (``default``, ``service``, ``batch``,
    ``default-service`` or ``default-batch``). A mount tuned ``service`` or ``batch`` forces
    that kind whatever the role says; ``default-service`` (the default) and
    ``default-batch`` decide only for roles that leave the choice open.
    """
    mount = entry.config.token_type or "default-service"
    if mount in ("service", "batch"):
        return mount
    if mount == "default-batch":
        return "service" if requested in ("service", "default-service") else "batch"
    return "batch" if requested in ("batch", "default-batch") else "service"


class MountTable:
    """An ordered set of mount entries persisted as one JSON record."""

    def __init__(self, key: str, *, is_auth: bool, entries: list[MountEntry] | None = None) -> None:
        self.key = key
        self.is_auth = is_auth
        self.entries: dict[str, MountEntry] = {e.path: e for e in entries or []}

    @classmethod
    async def load(cls, storage: Storage, key: str, *, is_auth: bool) -> MountTable | None:
        raw = await storage.get(key)
        if raw is None:
            return None
        doc = orjson.loads(raw)
        entries = [MountEntry.from_json(e, is_auth=is_auth) for e in doc["entries"]]
        return cls(key, is_auth=is_auth, entries=entries)

    def encode(self) -> bytes:
        return orjson.dumps({"entries": [e.to_json() for e in self.entries.values()]})

    def with_entry(self, entry: MountEntry) -> MountTable:
        table = MountTable(self.key, is_auth=self.is_auth, entries=list(self.entries.values()))
        table.entries[entry.path] = entry
        return table

    def without(self, path: str) -> MountTable:
        entries = [e for p, e in self.entries.items() if p != path]
        return MountTable(self.key, is_auth=self.is_auth, entries=entries)

    def moved(self, src: str, dst: str) -> MountTable:
        entries = []
        for path, entry in self.entries.items():
            entries.append(replace(entry, path=dst) if path == src else entry)
        return MountTable(self.key, is_auth=self.is_auth, entries=entries)

    def find_conflict(self, path: str) -> str | None:
        """A mount that would overlap ``path`` (one is a prefix of the other)."""
        for existing in self.entries:
            if existing.startswith(path) or path.startswith(existing):
                return existing
        return None


@dataclass(frozen=True, slots=True)
class MountChanges:
    """What differs between two versions of a mount table, by mount UUID: what an HA
    standby applies when the active changed the table (core.invalidate)."""

    removed: tuple[MountEntry, ...] = ()  # gone: unmount, clean up the backend
    rebuilt: tuple[tuple[MountEntry, MountEntry], ...] = ()  # (old, new): type/options changed
    updated: tuple[tuple[MountEntry, MountEntry], ...] = ()  # (old, new): moved/tuned, same backend
    added: tuple[MountEntry, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.removed or self.rebuilt or self.updated or self.added)


def mount_changes(old: MountTable, new: MountTable) -> MountChanges:
    before = {e.uuid: e for e in old.entries.values()}
    after = {e.uuid: e for e in new.entries.values()}
    removed = tuple(e for u, e in before.items() if u not in after)
    added = tuple(e for u, e in after.items() if u not in before)
    rebuilt: list[tuple[MountEntry, MountEntry]] = []
    updated: list[tuple[MountEntry, MountEntry]] = []
    for mount_uuid, entry in before.items():
        now = after.get(mount_uuid)
        if now is None or now == entry:
            continue
        same_backend = (now.type, now.options, now.is_auth) == (
            entry.type,
            entry.options,
            entry.is_auth,
        )
        (updated if same_backend else rebuilt).append((entry, now))
    return MountChanges(removed, tuple(rebuilt), tuple(updated), added)
