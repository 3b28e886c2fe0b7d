"""KV v2 records, their storage layout, and the version bookkeeping Vault defines.

Storage layout inside the mount's view (the view is already barrier-encrypted; what is visible
in the clear to the physical store is the key names only)::

    config                          EngineConfig (JSON)
    metadata/<secret path>          KeyMetadata (JSON): one record per secret, listed by LIST
    versions/<sha256(path)>/<n>     VersionRecord (JSON): the data of version n

Metadata and each version are separate records so that reading one version never decodes the
others. Every write that touches both goes through one ``storage.transaction``. Version keys use
a digest of the path so a version record never needs escaping and a secret's versions sit
together; the metadata key already names the secret, so salting the digest would hide nothing.

Times are integer nanoseconds since the epoch, taken from the mount's ``SystemView`` clock and
rendered as RFC 3339 with nanoseconds in UTC, as Go's ``time.RFC3339Nano`` does (trailing zeros
trimmed): ``2018-03-22T02:24:06.945319214Z``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from strongroom.errors import CheckAndSetMismatch, InternalError, InvalidPath, InvalidRequest
from strongroom.framework import KeyLocks, format_time_ns, parse_int, remember
from strongroom.logical import Request, Storage, StorageOp, SystemView

__all__ = [
    "CONFIG_KEY",
    "DEFAULT_MAX_VERSIONS",
    "METADATA_PREFIX",
    "EngineConfig",
    "KVState",
    "KeyMetadata",
    "VersionMeta",
    "VersionRecord",
    "add_version",
    "check_cas",
    "config_put",
    "deletion_time_for",
    "format_duration",
    "format_time",
    "list_prefix",
    "load_version",
    "metadata_delete",
    "require_secret_path",
    "secret_path",
    "storage_of",
    "version_delete",
    "version_put",
]

CONFIG_KEY = "config"
METADATA_PREFIX = "metadata/"
VERSION_PREFIX = "versions/"
DEFAULT_MAX_VERSIONS = 10
_NS = 1_000_000_000


# ---- times and durations --------------------------------------------------------------------


def format_time(ns: int | None) -> str:
    """Go's RFC3339Nano in UTC; ``""`` for an unset time (Vault's ``ptypesTimestampToString``)."""
    return format_time_ns(ns)


def format_duration(seconds: int) -> str:
    """Go's ``time.Duration.String()`` for whole seconds: ``0s``, ``5m0s``, ``3h25m19s``."""
    if seconds == 0:
        return "0s"
    sign = "-" if seconds < 0 else ""
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{sign}{minutes}m{secs}s"
    return f"{sign}{secs}s"


# ---- paths ---------------------------------------------------------------------------------


def _check_segments(path: str) -> None:
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidPath("invalid secret path: empty, '.' or '..' segment")


def secret_path(path: str) -> str | None:
    """The secret a read/delete names, or ``None`` when the path cannot name one (404)."""
    if path == "" or path.endswith("/"):
        return None
    _check_segments(path)
    return path


def require_secret_path(path: str) -> str:
    """The secret a write names; an empty path or a folder is a bad request."""
    if path == "":
        raise InvalidRequest("missing path")
    if path.endswith("/"):
        raise InvalidPath("invalid secret path: must not end in '/'")
    _check_segments(path)
    return path


def list_prefix(path: str) -> str:
    """A LIST path as a storage prefix: ``""`` or ending in ``/``."""
    if path == "":
        return ""
    if not path.endswith("/"):
        path += "/"
    _check_segments(path[:-1])
    return path


def storage_of(request: Request) -> Storage:
    if request.storage is None:
        raise InternalError("request carries no storage view")
    return request.storage


# ---- records -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """The ``config`` record. ``delete_version_after`` < 0 disables it for every key."""

    max_versions: int = 0
    cas_required: bool = False
    delete_version_after: int = 0

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> EngineConfig:
        return cls(
            max_versions=int(raw.get("max_versions", 0)),
            cas_required=bool(raw.get("cas_required", False)),
            delete_version_after=int(raw.get("delete_version_after", 0)),
        )


@dataclass(frozen=True, slots=True)
class VersionMeta:
    """One entry of ``KeyMetadata.versions``."""

    created_time: int
    deletion_time: int | None = None
    destroyed: bool = False

    def is_deleted(self, now_ns: int) -> bool:
        """Deleted once its deletion time is reached (soft delete or ``delete_version_after``).

        Vault compares with "before now"; we include the instant itself so a soft delete takes
        effect at once even when the clock has not moved (a fake clock, or a coarse one).
        """
        return self.deletion_time is not None and self.deletion_time <= now_ns

    def to_json(self) -> dict[str, Any]:
        return {
            "created_time": self.created_time,
            "deletion_time": self.deletion_time,
            "destroyed": self.destroyed,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> VersionMeta:
        deletion = raw.get("deletion_time")
        return cls(
            created_time=int(raw["created_time"]),
            deletion_time=None if deletion is None else int(deletion),
            destroyed=bool(raw.get("destroyed", False)),
        )


@dataclass(frozen=True, slots=True)
class KeyMetadata:
    """The per-secret record: settings plus the bookkeeping of every retained version."""

    key: str
    versions: Mapping[int, VersionMeta] = field(default_factory=dict)
    current_version: int = 0
    oldest_version: int = 0
    created_time: int | None = None
    updated_time: int | None = None
    max_versions: int = 0
    cas_required: bool = False
    delete_version_after: int = 0
    custom_metadata: Mapping[str, str] | None = None
    # rendered (created_time, deletion_time) per version: records are immutable and shared
    # between requests (see load_metadata), so each is rendered once
    _times: dict[int, tuple[str, str]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def describe_version(self, version: int) -> dict[str, Any]:
        """The version metadata Vault returns from data/ writes and reads."""
        vm = self.versions[version]
        times = self._times.get(version)
        if times is None:
            times = (format_time(vm.created_time), format_time(vm.deletion_time))
            self._times[version] = times
        return {
            "created_time": times[0],
            "custom_metadata": self.custom_metadata_json(),
            "deletion_time": times[1],
            "destroyed": vm.destroyed,
            "version": version,
        }

    def custom_metadata_json(self) -> dict[str, str] | None:
        # Vault stores custom_metadata as a protobuf map: an empty map reads back as null.
        return dict(self.custom_metadata) if self.custom_metadata else None

    def with_version(self, version: int, vm: VersionMeta) -> KeyMetadata:
        return dataclasses.replace(self, versions={**self.versions, version: vm})

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "versions": {str(n): vm.to_json() for n, vm in sorted(self.versions.items())},
            "current_version": self.current_version,
            "oldest_version": self.oldest_version,
            "created_time": self.created_time,
            "updated_time": self.updated_time,
            "max_versions": self.max_versions,
            "cas_required": self.cas_required,
            "delete_version_after": self.delete_version_after,
            "custom_metadata": dict(self.custom_metadata) if self.custom_metadata else None,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> KeyMetadata:
        def opt_int(value: Any) -> int | None:
            return None if value is None else int(value)

        custom = raw.get("custom_metadata")
        return cls(
            key=str(raw["key"]),
            versions={int(n): VersionMeta.from_json(v) for n, v in raw["versions"].items()},
            current_version=int(raw.get("current_version", 0)),
            oldest_version=int(raw.get("oldest_version", 0)),
            created_time=opt_int(raw.get("created_time")),
            updated_time=opt_int(raw.get("updated_time")),
            max_versions=int(raw.get("max_versions", 0)),
            cas_required=bool(raw.get("cas_required", False)),
            delete_version_after=int(raw.get("delete_version_after", 0)),
            custom_metadata=None if custom is None else {str(k): str(v) for k, v in custom.items()},
        )


@dataclass(frozen=True, slots=True)
class VersionRecord:
    """The stored data of one version. Never printed: ``data`` holds the secret."""

    data: dict[str, Any] = field(repr=False)
    created_time: int


# ---- bookkeeping (pure) ---------------------------------------------------------------------


def add_version(
    meta: KeyMetadata, created: int, deletion: int | None, config_max_versions: int
) -> tuple[KeyMetadata, list[int]]:
    """Append a version and slide the ``max_versions`` window, as Vault's ``AddVersion`` does.

    The larger of the key's and the engine's ``max_versions`` wins; when both are 0 Vault keeps
    10. Returns the new metadata and the version numbers whose records must now be deleted.
    """
    current = meta.current_version + 1
    versions = dict(meta.versions)
    versions[current] = VersionMeta(created_time=created, deletion_time=deletion)
    limit = max(meta.max_versions, config_max_versions) or DEFAULT_MAX_VERSIONS
    oldest = meta.oldest_version
    pruned: list[int] = []
    if current - oldest >= limit:
        last_pruned = current - limit
        pruned = sorted(n for n in versions if n <= last_pruned)
        for n in pruned:
            del versions[n]
        oldest = last_pruned + 1
    # built field by field: dataclasses.replace costs several microseconds per write
    updated = KeyMetadata(
        key=meta.key,
        versions=versions,
        current_version=current,
        oldest_version=oldest,
        created_time=created if meta.created_time is None else meta.created_time,
        updated_time=created,
        max_versions=meta.max_versions,
        cas_required=meta.cas_required,
        delete_version_after=meta.delete_version_after,
        custom_metadata=meta.custom_metadata,
    )
    return updated, pruned


def deletion_time_for(now_ns: int, config: EngineConfig, meta: KeyMetadata) -> int | None:
    """When a version written (or undeleted) now will count as deleted: the smaller non-zero
    ``delete_version_after`` of engine and key, or never; a negative engine value disables it."""
    if config.delete_version_after < 0:
        return None
    candidates = [d for d in (config.delete_version_after, meta.delete_version_after) if d > 0]
    if not candidates:
        return None
    return now_ns + min(candidates) * _NS


def check_cas(options: Mapping[str, Any], config: EngineConfig, meta: KeyMetadata) -> None:
    """Vault's ``validateCheckAndSetOption``: ``options.cas`` must equal the current version
    (0 for a secret with none), and is mandatory if the engine or the key requires it."""
    if "cas" in options:
        try:
            cas = parse_int(options["cas"], "cas")
        except InvalidRequest:
            raise InvalidRequest("error parsing check-and-set parameter") from None
        if cas != meta.current_version:
            raise CheckAndSetMismatch("check-and-set parameter did not match the current version")
    elif config.cas_required or meta.cas_required:
        raise InvalidRequest("check-and-set parameter required for this call")


# ---- storage -------------------------------------------------------------------------------


# Process-wide on purpose: a pure function of the path (no key, no core state), so a hit is
# exactly what recomputing gives, and mounts or cores sharing it learn nothing.
@functools.lru_cache(maxsize=16384)
def _path_digest(path: str) -> str:
    return hashlib.sha256(path.encode()).hexdigest()


def _version_key(path: str, version: int) -> str:
    return f"{VERSION_PREFIX}{_path_digest(path)}/{version}"


def _dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except (orjson.JSONEncodeError, TypeError):
        # orjson refuses integers beyond 64 bits; say so without echoing the value
        raise InvalidRequest("data: contains a value that cannot be stored as JSON") from None


async def load_version(storage: Storage, path: str, version: int) -> VersionRecord | None:
    raw = await storage.get(_version_key(path, version))
    if raw is None:
        return None
    decoded = orjson.loads(raw)
    return VersionRecord(data=decoded["data"], created_time=int(decoded["created_time"]))


def config_put(config: EngineConfig) -> StorageOp:
    return StorageOp(CONFIG_KEY, orjson.dumps(config.to_json()))


def metadata_delete(path: str) -> StorageOp:
    return StorageOp(METADATA_PREFIX + path)


def version_put(path: str, version: int, data: Mapping[str, Any], created: int) -> StorageOp:
    return StorageOp(_version_key(path, version), _dumps({"data": data, "created_time": created}))


def version_delete(path: str, version: int) -> StorageOp:
    return StorageOp(_version_key(path, version))


_DECODED_LIMIT = 4096


class KVState:
    """What every KV v2 handler shares: the mount's clock and the per-secret write locks.

    The locks serialise read-modify-write of one secret inside this process; atomicity across
    the metadata and version records comes from ``storage.transaction``.

    Decoded records are memoised here, per mount, by their exact stored bytes (equal bytes
    mean equal records, and records are never mutated), so a standby never needs to
    invalidate them, and two cores (or two mounts) in one process share nothing: the
    plaintext they hold goes with the mount when it is unmounted or the core seals.
    """

    def __init__(self, system: SystemView) -> None:
        self.system = system
        self.locks = KeyLocks()
        self._configs: dict[bytes, EngineConfig] = {}
        self._decoded: dict[bytes, KeyMetadata] = {}

    async def load_config(self, storage: Storage) -> EngineConfig:
        raw = await storage.get(CONFIG_KEY)
        if raw is None:
            return EngineConfig()
        config = self._configs.get(raw)
        if config is None:  # EngineConfig is frozen: one decoded object serves every write
            config = remember(self._configs, raw, EngineConfig.from_json(orjson.loads(raw)), 256)
        return config

    async def load_metadata(self, storage: Storage, path: str) -> KeyMetadata | None:
        # decoding a record with many versions costs tens of microseconds on every read
        raw = await storage.get(METADATA_PREFIX + path)
        if raw is None:
            return None
        meta = self._decoded.get(raw)
        if meta is None:
            meta = KeyMetadata.from_json(orjson.loads(raw))
            remember(self._decoded, raw, meta, _DECODED_LIMIT)
        return meta

    def metadata_put(self, meta: KeyMetadata) -> StorageOp:
        raw = orjson.dumps(meta.to_json())
        # the next load of this record (the following write's existence check, reads) finds
        # it decoded already; should the write fail, the entry is merely never looked up
        remember(self._decoded, raw, meta, _DECODED_LIMIT)
        return StorageOp(METADATA_PREFIX + meta.key, raw)

    def now_ns(self) -> int:
        # microsecond rounding keeps float noise out of the rendered nanoseconds
        return round(self.system.now() * 1_000_000) * 1_000
