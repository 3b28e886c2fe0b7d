"""Snapshots of the whole store: save, restore (with the reload that follows), and a schedule.

A snapshot is every physical entry (barrier ciphertext and the seal records, never a
plaintext), read from one consistent view of the store (:func:`strongroom.storage.bulk.entries`
uses each backend's snapshot-isolated ``items()``), in this file format::

    STRONGROOM-SNAPSHOT 1\\n
    {"cluster_id": …, "created": …, "storage_type": …, "count": N, "sha256": …}\\n
    N * ( u32 key length, key (UTF-8), u32 value length, value )

``sha256`` is :func:`strongroom.storage.bulk.digest_of` over the entries: a restore recomputes
it and refuses a snapshot that does not match (truncated, corrupted, edited).

Restoring another cluster's snapshot (a different cluster ID, or a keyring our root key
cannot open) is refused unless forced. A restore replaces the store in one transaction
(one fence check and one change-feed entry), then :func:`reload_from_storage` rebuilds this
node as a seal followed by an unseal with the root key it holds: every cache is dropped and
mounts, policies, tokens and leases are loaded again from the restored data. After a forced
restore whose keyring our root key cannot open, the node stays sealed: unseal it with the
snapshot cluster's keys. Other nodes are the HA layer's business: it calls
:func:`reload_from_storage` on every node that learns of the restore (a feed gap).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from strongroom.barrier import KEYRING_PATH, decrypt_blob
from strongroom.errors import CryptoError, InvalidRequest, Sealed
from strongroom.storage.bulk import MIGRATION_LOCK, digest_of, entries, replace_all

if TYPE_CHECKING:
    from strongroom.core.system._context import SystemCore

__all__ = [
    "FOREIGN_RESTORE",
    "MAGIC",
    "Snapshot",
    "SnapshotSchedule",
    "SnapshotScheduler",
    "parse_snapshot",
    "reload_from_storage",
    "restore_snapshot",
    "save_snapshot",
]

log = logging.getLogger("strongroom.snapshots")

FOREIGN_RESTORE = (
    "the store was replaced by a snapshot whose keyring this node's root key cannot open"
    " (another cluster's snapshot, restored with force): unseal with that cluster's keys"
)

MAGIC = b"STRONGROOM-SNAPSHOT 1\n"
_LENGTH = struct.Struct(">I")
_MAX_HEADER = 64 * 1024


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A parsed, verified snapshot."""

    cluster_id: str
    created: float
    storage_type: str
    entries: tuple[tuple[str, bytes], ...]
    sha256: str

    def __repr__(self) -> str:
        return f"Snapshot(cluster_id={self.cluster_id!r}, count={len(self.entries)})"


def _physical(core: SystemCore) -> Any:
    """The storage under the barrier (the read cache over the physical backend)."""
    return core.barrier.physical


async def save_snapshot(core: SystemCore) -> bytes:
    """A snapshot of this node's whole store. Needs an unsealed core (for its cluster ID).

    Raises:
        Sealed: the core is sealed.
        StorageUnavailable: storage cannot be read.
    """
    if core.sealed:
        raise Sealed()
    _name, cluster_id = core.cluster_info()
    # entries() reads past the cache, from the backend's own consistent snapshot
    pairs = [pair async for pair in entries(_physical(core)) if pair[0] != MIGRATION_LOCK]
    digest = digest_of(pairs)
    header = {
        "cluster_id": cluster_id,
        "created": time.time(),
        "storage_type": core.settings.storage_type,
        "count": digest.count,
        "sha256": digest.sha256,
    }
    chunks = [MAGIC, orjson.dumps(header), b"\n"]
    for key, value in pairs:
        raw = key.encode()
        chunks += [_LENGTH.pack(len(raw)), raw, _LENGTH.pack(len(value)), value]
    return b"".join(chunks)


def parse_snapshot(data: bytes) -> Snapshot:
    """Parse and verify a snapshot.

    Raises:
        InvalidRequest: not a snapshot, truncated, or its checksum does not match.
    """
    if not data.startswith(MAGIC):
        raise InvalidRequest("not a Strongroom snapshot")
    end = data.find(b"\n", len(MAGIC), len(MAGIC) + _MAX_HEADER)
    if end < 0:
        raise InvalidRequest("snapshot header is malformed")
    try:
        header = orjson.loads(data[len(MAGIC) : end])
        count = int(header["count"])
        expected = str(header["sha256"])
        cluster_id = str(header.get("cluster_id", ""))
        created = float(header.get("created", 0))
        storage_type = str(header.get("storage_type", ""))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        raise InvalidRequest("snapshot header is malformed") from None
    try:
        pairs = tuple(_read_entries(data, end + 1))
    except (struct.error, UnicodeDecodeError, IndexError):
        raise InvalidRequest("snapshot is truncated or corrupt") from None
    digest = digest_of(pairs)
    if digest.count != count or digest.sha256 != expected or len(dict(pairs)) != len(pairs):
        raise InvalidRequest("snapshot checksum does not match its contents")
    return Snapshot(cluster_id, created, storage_type, pairs, digest.sha256)


def _read_entries(data: bytes, offset: int) -> Iterator[tuple[str, bytes]]:
    view = memoryview(data)
    while offset < len(data):
        (size,) = _LENGTH.unpack_from(data, offset)
        offset += 4
        if offset + size > len(data):
            raise IndexError
        key = bytes(view[offset : offset + size]).decode()
        offset += size
        (size,) = _LENGTH.unpack_from(data, offset)
        offset += 4
        if offset + size > len(data):
            raise IndexError
        yield key, bytes(view[offset : offset + size])
        offset += size


async def restore_snapshot(core: SystemCore, data: bytes, *, force: bool = False) -> bool:
    """Replace the whole store with a snapshot, then reload this node.

    Returns:
        True if the node is unsealed afterwards; False if it is sealed (a forced restore of
        another cluster's snapshot: unseal with that cluster's keys).

    Raises:
        Sealed: the core is sealed.
        InvalidRequest: the snapshot is malformed or fails its checksum; or it comes from
            another cluster and ``force`` is not set (nothing is changed).
    """
    if core.sealed:
        raise Sealed()
    snapshot = parse_snapshot(data)
    if not force:
        _name, cluster_id = core.cluster_info()
        keyring = dict(snapshot.entries).get(KEYRING_PATH)
        foreign = snapshot.cluster_id != cluster_id or keyring is None
        if not foreign and keyring is not None:
            try:
                decrypt_blob(core.barrier.root_key, KEYRING_PATH, keyring)
            except CryptoError:
                foreign = True
        if foreign:
            raise InvalidRequest(
                "this snapshot belongs to another cluster (or to keys this cluster no longer"
                " has); use the force path (sys/storage/raft/snapshot-force, or -force) to"
                " restore it anyway"
            )
    physical = _physical(core)
    count = await replace_all(physical, snapshot.entries, keep=frozenset({MIGRATION_LOCK}))
    log.warning("storage restored from a snapshot: %d entries", count)
    return await reload_from_storage(core)


async def reload_from_storage(core: SystemCore) -> bool:
    """Rebuild this node from storage that changed underneath it (a snapshot restore here,
    or, on another node, a change-feed gap): drop every cache, seal, and unseal again with
    the root key held in memory.

    Returns:
        True if unsealed again; False if the node was sealed, or if the stored keyring no
        longer opens with our root key (then it stays sealed until unsealed with the keys
        that do open it).
    """
    root_key = None if core.barrier.sealed else core.barrier.root_key
    await core.seal()
    physical = _physical(core)
    invalidate = getattr(physical, "invalidate_all", None)
    if invalidate is not None:
        invalidate()
    await core.seal_manager.load()
    if root_key is None:
        return False
    try:
        await core.barrier.unseal(root_key)
    except (CryptoError, InvalidRequest):
        log.warning("the restored keyring does not open with this node's root key: sealed")
        core.seal_reason = FOREIGN_RESTORE
        return False
    await core.after_unseal()
    return True


# -- scheduled snapshots ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SnapshotSchedule:
    """The ``automated_snapshots`` stanza: every ``interval`` seconds, write a snapshot into
    ``directory`` (``<file_prefix>-<UTC time>.snap``, mode 0600) and keep the newest
    ``retain`` files of that prefix."""

    directory: str
    interval: int = 3600
    retain: int = 24
    file_prefix: str = "strongroom-snapshot"


class SnapshotScheduler:
    """Runs a :class:`SnapshotSchedule` for one core (skipping while it is sealed)."""

    def __init__(self, core: SystemCore, schedule: SnapshotSchedule) -> None:
        self._core = core
        self.schedule = schedule
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run_once(self) -> str | None:
        """Take one snapshot now (if unsealed and not a standby); returns its path."""
        core = self._core
        if core.sealed or (core.cluster is not None and not core.state.active):
            return None  # sealed, or an HA standby: the active node takes them
        data = await save_snapshot(core)
        path = await asyncio.to_thread(self._write, data)
        await asyncio.to_thread(self._prune)
        return path

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.schedule.interval)
            try:
                path = await self.run_once()
            except Exception as exc:  # a failed round is logged and retried next time
                log.error("scheduled snapshot failed: %s", type(exc).__name__)
            else:
                if path:
                    log.info("scheduled snapshot written: %s", path)

    def _write(self, data: bytes) -> str:
        directory = self.schedule.directory
        os.makedirs(directory, mode=0o700, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        base = os.path.join(directory, f"{self.schedule.file_prefix}-{stamp}")
        path, n = base + ".snap", 1
        while os.path.exists(path):
            n += 1
            path = f"{base}-{n}.snap"
        temp = path + ".partial"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        os.rename(temp, path)
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return path

    def _prune(self) -> None:
        prefix = self.schedule.file_prefix + "-"
        names = sorted(
            name
            for name in os.listdir(self.schedule.directory)
            if name.startswith(prefix) and name.endswith(".snap")
        )
        for name in names[: max(len(names) - self.schedule.retain, 0)]:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.schedule.directory, name))
