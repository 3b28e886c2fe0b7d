"""Whole-store access for offline migration and snapshots: iterate, digest, replace.

Values stay ciphertext throughout: nothing here decrypts. A backend may offer a consistent
``items()`` (PostgreSQL: one REPEATABLE READ snapshot; SQLite: one read transaction on a
connection of its own; memory: a copy), which :func:`entries` prefers; any other
:class:`~strongroom.logical.Storage` is walked with ``list`` and ``get`` (fine offline, not
a consistent snapshot of a live store).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

from strongroom.logical import Storage, StorageOp

__all__ = [
    "MIGRATION_LOCK",
    "Digest",
    "digest",
    "digest_of",
    "entries",
    "replace_all",
]

MIGRATION_LOCK = "core/migration"
"""Written (plain) into the source while ``operator migrate`` runs; a server refuses to start
on a store that holds it, as Vault does."""


@dataclass(frozen=True, slots=True)
class Digest:
    """How many entries a store holds and a SHA-256 over all of them, sorted by key."""

    count: int
    sha256: str


async def entries(storage: Storage) -> AsyncIterator[tuple[str, bytes]]:
    """Every (key, value) of ``storage`` (read past any cache or wrapper that exposes its
    ``inner`` storage, from the innermost backend that offers a consistent ``items()``)."""
    target: object = storage
    while not hasattr(target, "items") and hasattr(target, "inner"):
        target = target.inner
    items = getattr(target, "items", None)
    if items is not None:
        async for pair in items():
            yield pair
        return
    pending = [""]
    while pending:
        prefix = pending.pop()
        for child in await storage.list(prefix):
            key = prefix + child
            if child.endswith("/"):
                pending.append(key)
                continue
            value = await storage.get(key)
            if value is not None:
                yield key, value


def digest_of(pairs: Iterable[tuple[str, bytes]]) -> Digest:
    """The digest of (key, value) pairs given in any order (keys must be distinct)."""
    hashed = sorted((key.encode(), hashlib.sha256(value).digest()) for key, value in pairs)
    total = hashlib.sha256()
    for key, value_hash in hashed:
        total.update(len(key).to_bytes(4, "big"))
        total.update(key)
        total.update(value_hash)
    return Digest(len(hashed), total.hexdigest())


async def digest(storage: Storage, exclude: frozenset[str] = frozenset()) -> Digest:
    """The digest of everything in ``storage`` but the keys in ``exclude``."""
    return digest_of([pair async for pair in entries(storage) if pair[0] not in exclude])


async def replace_all(
    storage: Storage, pairs: Iterable[tuple[str, bytes]], keep: frozenset[str] = frozenset()
) -> int:
    """Make ``storage`` hold exactly ``pairs`` (plus the keys in ``keep``, untouched), in one
    transaction: every key not in ``pairs`` is deleted, every pair is put. Returns the count.

    One transaction means one fence check and one change-feed entry listing every key that
    changed, so standbys drop exactly what the restore replaced.
    """
    wanted = dict(pairs)
    ops = [
        StorageOp(key)
        async for key, _value in entries(storage)
        if key not in wanted and key not in keep
    ]
    ops.extend(StorageOp(key, value) for key, value in sorted(wanted.items()))
    await storage.transaction(ops)
    return len(wanted)
