"""KV v2 ``data/<path>`` (read, write, merge-patch, soft-delete) and ``subkeys/<path>``.

A read of a version that is soft-deleted (its ``deletion_time`` has passed) or destroyed answers
404 with a body holding ``data: null`` and the version metadata, as Vault does, so clients can
tell "deleted" from "never existed".
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from strongroom.engines.kv._records import (
    EngineConfig,
    KeyMetadata,
    KVState,
    add_version,
    check_cas,
    deletion_time_for,
    load_version,
    require_secret_path,
    secret_path,
    storage_of,
    version_delete,
    version_put,
)
from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import Path
from strongroom.logical import Operation, Request, Response, Storage

__all__ = ["DataArgs", "DataPaths", "SubkeysArgs", "merge_patch", "strip_values"]


@dataclass(frozen=True, slots=True)
class DataArgs:
    path: str
    version: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    data: Any = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class SubkeysArgs:
    path: str
    version: int = 0
    depth: int = 0


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch: objects merge recursively, ``null`` removes a member, and
    anything else replaces the target."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = merge_patch(result.get(name), value)
    return result


def strip_values(data: dict[str, Any], max_depth: int, depth: int = 1) -> dict[str, Any]:
    """Vault's subkeys ``removeValues``: every leaf (a non-object or an empty object) becomes
    ``None``; objects at ``max_depth`` (0 = unlimited) are treated as leaves too."""
    out: dict[str, Any] = {}
    for name, value in data.items():
        if isinstance(value, dict) and value and (max_depth == 0 or depth + 1 <= max_depth):
            out[name] = strip_values(value, max_depth, depth + 1)
        else:
            out[name] = None
    return out


def _payload(request: Request) -> dict[str, Any]:
    raw = request.data.get("data")
    if raw is None:
        raise InvalidRequest("no data provided")
    if not isinstance(raw, dict):
        raise InvalidRequest("data: expected an object")
    return raw


class DataPaths:
    """Handlers for ``data/`` and ``subkeys/``; state is the mount's clock and locks."""

    def __init__(self, state: KVState) -> None:
        self.state = state

    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=r"data/(?P<path>.*)",
                args=DataArgs,
                operations={
                    Operation.READ: self.read,
                    Operation.CREATE: self.write,
                    Operation.UPDATE: self.write,
                    Operation.PATCH: self.patch,
                    Operation.DELETE: self.delete,
                    Operation.LIST: self.list_hint,
                },
                existence_check=self.exists,
                synopsis="Write, Patch, Read, and Delete data in the Key-Value Store.",
                description=_DATA_HELP,
            ),
            Path(
                pattern=r"subkeys/(?P<path>.*)",
                args=SubkeysArgs,
                operations={Operation.READ: self.read_subkeys},
                synopsis="Read the structure of a secret entry with the values removed.",
                description=_SUBKEYS_HELP,
            ),
        ]

    async def exists(self, request: Request, args: DataArgs) -> bool:
        key = secret_path(args.path)
        return (
            key is not None and await self.state.load_metadata(storage_of(request), key) is not None
        )

    async def read(self, request: Request, args: DataArgs) -> Response | None:
        found = await self._locate(request, args.path, args.version, "data")
        if found is None or isinstance(found, Response):
            return found
        meta, version = found
        record = await load_version(storage_of(request), meta.key, version)
        if record is None:  # pruned or destroyed since the metadata was read
            return None
        return Response(data={"data": record.data, "metadata": meta.describe_version(version)})

    async def read_subkeys(self, request: Request, args: SubkeysArgs) -> Response | None:
        if args.depth < 0:
            raise InvalidRequest("depth: must not be negative")
        found = await self._locate(request, args.path, args.version, "subkeys")
        if found is None or isinstance(found, Response):
            return found
        meta, version = found
        record = await load_version(storage_of(request), meta.key, version)
        if record is None:
            return None
        try:
            subkeys = strip_values(record.data, args.depth)
        except RecursionError:
            raise InvalidRequest("data: nested too deeply") from None
        return Response(data={"subkeys": subkeys, "metadata": meta.describe_version(version)})

    async def _locate(
        self, request: Request, path: str, version: int, body_key: str
    ) -> tuple[KeyMetadata, int] | Response | None:
        """Which version a read names: ``None`` when there is none (404), a 404 Response with
        the version metadata when it is deleted or destroyed, else (metadata, number)."""
        key = secret_path(path)
        if key is None:
            return None
        meta = await self.state.load_metadata(storage_of(request), key)
        if meta is None:
            return None
        number = version if version > 0 else meta.current_version
        vm = meta.versions.get(number)
        if vm is None:
            return None
        if vm.destroyed or vm.is_deleted(self.state.now_ns()):
            return Response(
                data={body_key: None, "metadata": meta.describe_version(number)}, status=404
            )
        return meta, number

    async def write(self, request: Request, args: DataArgs) -> Response | None:
        key = require_secret_path(args.path)
        payload = _payload(request)
        storage = storage_of(request)
        async with self.state.locks.hold(key):
            config = await self.state.load_config(storage)
            meta = await self.state.load_metadata(storage, key) or KeyMetadata(key=key)
            check_cas(args.options, config, meta)
            return await self._append(storage, config, meta, payload)

    async def patch(self, request: Request, args: DataArgs) -> Response | None:
        key = require_secret_path(args.path)
        patch = _payload(request)
        storage = storage_of(request)
        async with self.state.locks.hold(key):
            meta = await self.state.load_metadata(storage, key)
            if meta is None:
                raise NotFound()  # a write answering None would be a 204
            config = await self.state.load_config(storage)
            check_cas(args.options, config, meta)
            vm = meta.versions.get(meta.current_version)
            if vm is None:
                raise NotFound()
            if vm.destroyed or vm.is_deleted(self.state.now_ns()):
                # Vault answers a patch of a deleted/destroyed latest version with a 404 whose
                # body is the flat version metadata.
                return Response(data=meta.describe_version(meta.current_version), status=404)
            record = await load_version(storage, key, meta.current_version)
            if record is None:
                raise NotFound()
            try:
                merged = merge_patch(record.data, patch)
            except RecursionError:
                raise InvalidRequest("data: nested too deeply") from None
            return await self._append(storage, config, meta, merged)

    async def _append(
        self, storage: Storage, config: EngineConfig, meta: KeyMetadata, payload: dict[str, Any]
    ) -> Response:
        """Write a new version, prune past ``max_versions``, all in one transaction (lock held)."""
        now = self.state.now_ns()
        meta, pruned = add_version(
            meta, now, deletion_time_for(now, config, meta), config.max_versions
        )
        ops = [
            version_put(meta.key, meta.current_version, payload, now),
            self.state.metadata_put(meta),
            *(version_delete(meta.key, n) for n in pruned),
        ]
        await storage.transaction(ops)
        return Response(data=meta.describe_version(meta.current_version))

    async def delete(self, request: Request, args: DataArgs) -> Response | None:
        key = secret_path(args.path)
        if key is None:
            return None
        storage = storage_of(request)
        async with self.state.locks.hold(key):
            meta = await self.state.load_metadata(storage, key)
            if meta is None:
                return None
            vm = meta.versions.get(meta.current_version)
            now = self.state.now_ns()
            if vm is None or vm.destroyed or vm.is_deleted(now):
                return None
            meta = meta.with_version(
                meta.current_version, dataclasses.replace(vm, deletion_time=now)
            )
            await storage.transaction([self.state.metadata_put(meta)])
        return None

    async def list_hint(self, request: Request, args: DataArgs) -> Response | None:
        raise NotFound("Invalid path for a versioned K/V secrets engine: list secrets on metadata/")


_DATA_HELP = """\
This path takes a key name and based on the operation stores, retrieves or deletes versions of
data.

A write takes an "options" object and a "data" object. Set options.cas to use check-and-set: 0
allows the write only if the key does not exist, a non-zero value only if it equals the key's
current version. Each write creates a new version and does not overwrite the previous data.

A patch (JSON merge patch, Content-Type application/merge-patch+json) must target an existing
secret whose latest version is neither deleted nor destroyed; it creates a new version.

A read returns the latest version, or the one named by the "version" query parameter.

A delete is a soft delete of the latest version: the data stays until destroyed, and the
undelete path restores it."""

_SUBKEYS_HELP = """\
Returns the structure of a secret with every leaf value (a non-object, or an empty object)
replaced by null. "version" selects a version (default: the latest). "depth" limits how deep
the structure is walked: objects at that depth read as null; 0 (the default) means no limit."""
