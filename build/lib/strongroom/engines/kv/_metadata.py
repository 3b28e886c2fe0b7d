"""KV v2 ``metadata/<path>`` (per-key settings, version history, LIST) and ``config``.

Settings resolve as Vault resolves them: ``max_versions`` is the larger of key and engine (both
0 → 10); ``cas_required`` holds if either says so; ``delete_version_after`` is the smaller
non-zero of key and engine, and a negative engine value disables it everywhere.
``custom_metadata`` is limited to 64 keys, keys of 1-128 and values of 1-512 printable
characters.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from strongroom.engines.kv._records import (
    METADATA_PREFIX,
    EngineConfig,
    KeyMetadata,
    KVState,
    config_put,
    format_duration,
    format_time,
    list_prefix,
    metadata_delete,
    require_secret_path,
    secret_path,
    storage_of,
    version_delete,
)
from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import Duration, Path, parse_duration, parse_str
from strongroom.logical import Operation, Request, Response

__all__ = ["ConfigArgs", "MetadataArgs", "MetadataPaths", "validate_custom_metadata"]

MAX_CUSTOM_METADATA_KEYS = 64
MAX_CUSTOM_METADATA_KEY_LENGTH = 128
MAX_CUSTOM_METADATA_VALUE_LENGTH = 512
_MAX_VERSIONS_LIMIT = 2**32 - 1  # Vault stores max_versions as a uint32
_CAS_WARNING = (
    '"cas_required" set to false, but is mandated by backend config. This value will be ignored.'
)


@dataclass(frozen=True, slots=True)
class MetadataArgs:
    path: str
    max_versions: int | None = None
    cas_required: bool | None = None
    delete_version_after: Duration | None = None
    custom_metadata: Any = None


@dataclass(frozen=True, slots=True)
class ConfigArgs:
    max_versions: int | None = None
    cas_required: bool | None = None
    # signed: a negative duration disables delete_version_after on every key
    delete_version_after: Any = None


def _check_max_versions(value: int) -> int:
    if not 0 <= value <= _MAX_VERSIONS_LIMIT:
        raise InvalidRequest("max_versions: must be between 0 and 4294967295")
    return value


def _signed_duration(value: Any) -> int:
    text = value.strip() if isinstance(value, str) else None
    if text is not None and text.startswith("-"):
        return -parse_duration(text[1:], "delete_version_after")
    if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        return -parse_duration(-value, "delete_version_after")
    return parse_duration(value, "delete_version_after")


def _custom_value(value: Any) -> str:
    if isinstance(value, dict | list):
        raise InvalidRequest("custom_metadata validation failed: values must be strings")
    return "" if value is None else parse_str(value, "custom_metadata")


def validate_custom_metadata(custom: dict[str, str]) -> None:
    """Vault's limits. Messages name offending keys only when short and printable; they never
    echo values."""
    prefix = "custom_metadata validation failed"
    if len(custom) > MAX_CUSTOM_METADATA_KEYS:
        raise InvalidRequest(
            f"{prefix}: payload must contain at most {MAX_CUSTOM_METADATA_KEYS} keys, "
            f"provided {len(custom)}"
        )
    problems: list[str] = []
    for name, value in sorted(custom.items()):
        shown = repr(name) if 0 < len(name) <= 128 and name.isprintable() else "a key"
        if not 0 < len(name) <= MAX_CUSTOM_METADATA_KEY_LENGTH:
            problems.append(
                f"{prefix}: length of {shown} is {len(name)} but must be "
                f"0 < len(key) <= {MAX_CUSTOM_METADATA_KEY_LENGTH}"
            )
        if not 0 < len(value) <= MAX_CUSTOM_METADATA_VALUE_LENGTH:
            problems.append(
                f"{prefix}: length of value for {shown} is {len(value)} but must be "
                f"0 < len(value) <= {MAX_CUSTOM_METADATA_VALUE_LENGTH}"
            )
        if not name.isprintable():
            problems.append(f"{prefix}: a key contains unprintable characters")
        if not value.isprintable():
            problems.append(f"{prefix}: value for {shown} contains unprintable characters")
    if problems:
        raise InvalidRequest(*problems)


def _parse_custom_metadata(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise InvalidRequest("custom_metadata: expected an object")
    return {str(name): _custom_value(value) for name, value in raw.items()}


class MetadataPaths:
    """Handlers for ``metadata/`` and ``config``."""

    def __init__(self, state: KVState) -> None:
        self.state = state

    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=r"config",
                args=ConfigArgs,
                operations={Operation.READ: self.read_config, Operation.UPDATE: self.write_config},
                synopsis="Configures settings for the KV store.",
                description=_CONFIG_HELP,
            ),
            Path(
                pattern=r"metadata/(?P<path>.*)",
                args=MetadataArgs,
                operations={
                    Operation.READ: self.read,
                    Operation.CREATE: self.write,
                    Operation.UPDATE: self.write,
                    Operation.PATCH: self.patch,
                    Operation.DELETE: self.delete,
                    Operation.LIST: self.list_keys,
                },
                existence_check=self.exists,
                synopsis="Allows interaction with key metadata and settings in the KV store.",
                description=_METADATA_HELP,
            ),
        ]

    # ---- config ------------------------------------------------------------------------

    async def read_config(self, request: Request, args: ConfigArgs) -> Response | None:
        config = await self.state.load_config(storage_of(request))
        return Response(
            data={
                "cas_required": config.cas_required,
                "delete_version_after": format_duration(config.delete_version_after),
                "max_versions": config.max_versions,
            }
        )

    async def write_config(self, request: Request, args: ConfigArgs) -> Response | None:
        storage = storage_of(request)
        config = await self.state.load_config(storage)
        if args.max_versions is not None:
            config = dataclasses.replace(
                config, max_versions=_check_max_versions(args.max_versions)
            )
        if args.cas_required is not None:
            config = dataclasses.replace(config, cas_required=args.cas_required)
        if args.delete_version_after is not None:
            dva = _signed_duration(args.delete_version_after)
            config = dataclasses.replace(config, delete_version_after=-1 if dva < 0 else dva)
        await storage.transaction([config_put(config)])
        return None

    # ---- metadata ----------------------------------------------------------------------

    async def exists(self, request: Request, args: MetadataArgs) -> bool:
        key = secret_path(args.path)
        return (
            key is not None and await self.state.load_metadata(storage_of(request), key) is not None
        )

    async def read(self, request: Request, args: MetadataArgs) -> Response | None:
        key = secret_path(args.path)
        meta = None if key is None else await self.state.load_metadata(storage_of(request), key)
        if meta is None:
            return None
        versions = {
            str(n): {
                "created_time": format_time(vm.created_time),
                "deletion_time": format_time(vm.deletion_time),
                "destroyed": vm.destroyed,
            }
            for n, vm in sorted(meta.versions.items())
        }
        return Response(
            data={
                "cas_required": meta.cas_required,
                "created_time": format_time(meta.created_time),
                "current_version": meta.current_version,
                "custom_metadata": meta.custom_metadata_json(),
                "delete_version_after": format_duration(meta.delete_version_after),
                "max_versions": meta.max_versions,
                "oldest_version": meta.oldest_version,
                "updated_time": format_time(meta.updated_time),
                "versions": versions,
            }
        )

    async def list_keys(self, request: Request, args: MetadataArgs) -> Response | None:
        keys = await storage_of(request).list(METADATA_PREFIX + list_prefix(args.path))
        return Response(data={"keys": keys}) if keys else None

    async def write(self, request: Request, args: MetadataArgs) -> Response | None:
        key = require_secret_path(args.path)
        custom = None
        if args.custom_metadata is not None:
            custom = _parse_custom_metadata(args.custom_metadata)
            validate_custom_metadata(custom)
        if args.max_versions is not None:
            _check_max_versions(args.max_versions)
        given = (args.max_versions, args.cas_required, args.delete_version_after, custom)
        if all(value is None for value in given):
            return None
        storage = storage_of(request)
        async with self.state.locks.hold(key):
            config = await self.state.load_config(storage)
            meta = await self.state.load_metadata(storage, key)
            if meta is None:
                now = self.state.now_ns()
                meta = KeyMetadata(key=key, created_time=now, updated_time=now)
            changes: dict[str, Any] = {}
            if args.max_versions is not None:
                changes["max_versions"] = args.max_versions
            if args.cas_required is not None:
                changes["cas_required"] = args.cas_required
            if args.delete_version_after is not None:
                changes["delete_version_after"] = int(args.delete_version_after)
            if custom is not None:
                changes["custom_metadata"] = custom
            await storage.transaction(
                [self.state.metadata_put(dataclasses.replace(meta, **changes))]
            )
        return _cas_warning(config, args.cas_required)

    async def patch(self, request: Request, args: MetadataArgs) -> Response | None:
        """JSON merge patch of the settings: a present ``null`` resets a field to its default,
        and ``custom_metadata`` members merge (``null`` removes one)."""
        key = require_secret_path(args.path)
        raw = request.data
        if args.max_versions is not None:
            _check_max_versions(args.max_versions)
        patch_custom = raw.get("custom_metadata")
        if patch_custom is not None and not isinstance(patch_custom, dict):
            raise InvalidRequest("custom_metadata: expected an object")
        storage = storage_of(request)
        async with self.state.locks.hold(key):
            meta = await self.state.load_metadata(storage, key)
            if meta is None:
                raise NotFound()  # a write answering None would be a 204
            config = await self.state.load_config(storage)
            changes: dict[str, Any] = {}
            if "max_versions" in raw:
                changes["max_versions"] = args.max_versions or 0
            if "cas_required" in raw:
                changes["cas_required"] = bool(args.cas_required)
            if "delete_version_after" in raw:
                changes["delete_version_after"] = int(args.delete_version_after or 0)
            if "custom_metadata" in raw:
                merged = dict(meta.custom_metadata or {}) if patch_custom is not None else {}
                for name, value in (patch_custom or {}).items():
                    if value is None:
                        merged.pop(name, None)
                    else:
                        merged[str(name)] = _custom_value(value)
                validate_custom_metadata(merged)
                changes["custom_metadata"] = merged
            await storage.transaction(
                [self.state.metadata_put(dataclasses.replace(meta, **changes))]
            )
        return _cas_warning(config, args.cas_required)

    async def delete(self, request: Request, args: MetadataArgs) -> Response | None:
        key = secret_path(args.path)
        if key is None:
            return None
        storage = storage_of(request)
        async with self.state.locks.hold(key):
            meta = await self.state.load_metadata(storage, key)
            if meta is None:
                return None
            ops = [version_delete(key, n) for n in sorted(meta.versions)]
            await storage.transaction([*ops, metadata_delete(key)])
        return None


def _cas_warning(config: EngineConfig, cas_required: bool | None) -> Response | None:
    if cas_required is False and config.cas_required:
        return Response(warnings=[_CAS_WARNING])
    return None


_CONFIG_HELP = """\
Backend-level settings applied to every key in the store:

  * max_versions (int) - versions kept per key (0: 10). A key's own setting may raise it.
  * cas_required (bool) - if true, every write must carry options.cas.
  * delete_version_after (duration) - time after which a new version counts as deleted.
    A negative duration disables it on all keys; "0s" clears the setting."""

_METADATA_HELP = """\
Reads a key's metadata and version history, writes its settings (max_versions, cas_required,
delete_version_after, custom_metadata) without creating a version, patches them (JSON merge
patch), permanently deletes the key with all its versions, or lists keys under a folder
(folders end in "/")."""
