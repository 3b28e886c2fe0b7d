"""KV v2 ``delete/<path>``, ``undelete/<path>`` and ``destroy/<path>``: per-version lifecycle.

- delete: soft-delete the listed versions (``deletion_time`` = now); the data stays.
- undelete: clear ``deletion_time`` (or re-arm it from ``delete_version_after``).
- destroy: mark the versions destroyed and remove their data for good.

Versions that do not exist (never written, or pruned by ``max_versions``) and versions already
destroyed are skipped silently, as Vault does; a secret with no metadata answers 204 too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from strongroom.engines.kv._records import (
    EngineConfig,
    KeyMetadata,
    KVState,
    VersionMeta,
    deletion_time_for,
    secret_path,
    storage_of,
    version_delete,
)
from strongroom.errors import InvalidRequest
from strongroom.framework import Path, parse_int
from strongroom.logical import Operation, Request, Response, StorageOp

__all__ = ["VersionsArgs", "VersionsPaths", "parse_versions"]


@dataclass(frozen=True, slots=True)
class VersionsArgs:
    path: str
    versions: Any = None


def parse_versions(value: Any) -> list[int]:
    """Vault's TypeCommaIntSlice: ``[1, 2]``, ``["1", "2"]``, ``"1,2"`` or ``3``."""
    if value is None:
        items: list[Any] = []
    elif isinstance(value, list):
        items = value
    elif isinstance(value, str):
        items = [part.strip() for part in value.split(",") if part.strip()]
    else:
        items = [value]
    try:
        versions = [parse_int(item, "versions") for item in items]
    except InvalidRequest:
        raise InvalidRequest("versions: expected a list of integers") from None
    if not versions:
        raise InvalidRequest("no version number provided")
    return versions


Change = Callable[[VersionMeta, int, EngineConfig, KeyMetadata], VersionMeta | None]


class VersionsPaths:
    """Handlers for ``delete/``, ``undelete/`` and ``destroy/``."""

    def __init__(self, state: KVState) -> None:
        self.state = state

    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=r"delete/(?P<path>.*)",
                args=VersionsArgs,
                operations={Operation.UPDATE: self.delete},
                synopsis="Marks one or more versions as deleted in the KV store.",
                description=_DELETE_HELP,
            ),
            Path(
                pattern=r"undelete/(?P<path>.*)",
                args=VersionsArgs,
                operations={Operation.UPDATE: self.undelete},
                synopsis="Undeletes one or more versions from the KV store.",
                description=_UNDELETE_HELP,
            ),
            Path(
                pattern=r"destroy/(?P<path>.*)",
                args=VersionsArgs,
                operations={Operation.UPDATE: self.destroy},
                synopsis="Permanently removes one or more versions in the KV store.",
                description=_DESTROY_HELP,
            ),
        ]

    async def delete(self, request: Request, args: VersionsArgs) -> Response | None:
        def soft_delete(
            vm: VersionMeta, now: int, config: EngineConfig, meta: KeyMetadata
        ) -> VersionMeta | None:
            if vm.is_deleted(now):
                return None
            return dataclasses.replace(vm, deletion_time=now)

        await self._apply(request, args, soft_delete, destroy=False)
        return None

    async def undelete(self, request: Request, args: VersionsArgs) -> Response | None:
        def restore(
            vm: VersionMeta, now: int, config: EngineConfig, meta: KeyMetadata
        ) -> VersionMeta | None:
            return dataclasses.replace(vm, deletion_time=deletion_time_for(now, config, meta))

        await self._apply(request, args, restore, destroy=False)
        return None

    async def destroy(self, request: Request, args: VersionsArgs) -> Response | None:
        def mark_destroyed(
            vm: VersionMeta, now: int, config: EngineConfig, meta: KeyMetadata
        ) -> VersionMeta | None:
            return dataclasses.replace(vm, destroyed=True)

        await self._apply(request, args, mark_destroyed, destroy=True)
        return None

    async def _apply(
        self, request: Request, args: VersionsArgs, change: Change, destroy: bool
    ) -> None:
        """Apply ``change`` to each listed, existing, undestroyed version under the secret's
        lock; write the metadata (and, for destroy, delete the data) in one transaction."""
        versions = parse_versions(args.versions)
        key = secret_path(args.path)
        if key is None:
            return
        storage = storage_of(request)
        async with self.state.locks.hold(key):
            meta = await self.state.load_metadata(storage, key)
            if meta is None:
                return
            config = await self.state.load_config(storage)
            now = self.state.now_ns()
            ops: list[StorageOp] = []
            for number in dict.fromkeys(versions):
                vm = meta.versions.get(number)
                if vm is None or vm.destroyed:
                    continue
                changed = change(vm, now, config, meta)
                if changed is None:
                    continue
                meta = meta.with_version(number, changed)
                if destroy:
                    ops.append(version_delete(key, number))
            await storage.transaction([self.state.metadata_put(meta), *ops])


_DELETE_HELP = """\
Soft-deletes the listed versions ("versions": [1, 2]) of the secret at the path. The data is
not removed, but reads of those versions answer 404 until they are undeleted."""

_UNDELETE_HELP = """\
Restores the listed soft-deleted versions ("versions": [1, 2]) so reads return their data
again. Destroyed versions cannot be restored."""

_DESTROY_HELP = """\
Permanently removes the data of the listed versions ("versions": [1, 2]). Their metadata stays,
marked destroyed; this cannot be undone."""
