"""A read-through LRU cache of values (and of misses) in front of any physical storage.

What it trusts: that it is the only writer of the inner storage, or that whoever else writes
calls :meth:`CachedStorage.invalidate` / :meth:`CachedStorage.invalidate_all` (a standby
hearing the active node's change notices). What it promises: once a write has returned, every
later read returns that write (or something newer); a failed or cancelled write leaves no
cached value for its keys, so the next read goes to the inner storage.

Two races are closed explicitly. A miss that read an old value must not cache it after a
write to the same key landed, so a miss fills the cache only if no write or invalidation
touched the key while it was reading. Two overlapping writes to one key may complete in
either order, so when writes overlap the cache drops the key instead of guessing the winner.

``list`` is not cached: it goes to the inner storage, which answers it by index.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass

from strongroom.errors import StorageConflict
from strongroom.logical import Storage, StorageOp
from strongroom.storage.memory import check_key, to_bytes

__all__ = ["DEFAULT_MAX_ENTRIES", "CachedStorage"]

DEFAULT_MAX_ENTRIES = 131072
"""Vault's default ``cache_size`` (entries, not bytes)."""


@dataclass(slots=True)
class _Writes:
    """Writes in flight on one key; ``overlapped`` once two were in flight at the same time."""

    count: int = 1
    overlapped: bool = False


class _Read:
    """Identifies one in-flight miss; a write or invalidation on the key discards it."""

    __slots__ = ()


class CachedStorage:
    """An LRU cache of up to ``max_entries`` values and misses over ``inner``.

    Closing it closes ``inner``: the cache owns what it wraps.
    """

    def __init__(self, inner: Storage, max_entries: int = DEFAULT_MAX_ENTRIES):
        """
        Args:
            inner: the storage to cache; closed by :meth:`close` if it has a ``close`` method.
            max_entries: entries kept (values and misses alike); 0 disables caching.

        Raises:
            ValueError: ``max_entries`` is negative.
        """
        if max_entries < 0:
            raise ValueError("max_entries must not be negative")
        self._inner = inner
        self._max = max_entries
        self._entries: OrderedDict[str, bytes | None] = OrderedDict()
        self._reads: dict[str, _Read] = {}
        self._writes: dict[str, _Writes] = {}
        self.hits = 0
        self.misses = 0

    def __repr__(self) -> str:
        return f"CachedStorage({self._inner!r}, entries={len(self._entries)}/{self._max})"

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def inner(self) -> Storage:
        return self._inner

    async def get(self, key: str) -> bytes | None:
        check_key(key)
        try:
            value = self._entries[key]
        except KeyError:
            pass
        else:
            self._entries.move_to_end(key)
            self.hits += 1
            return value
        self.misses += 1
        # concurrent misses on one key share a token: whichever finishes first may fill
        token = self._reads.get(key)
        if token is None and key not in self._writes:
            token = self._reads[key] = _Read()
        try:
            value = await self._inner.get(key)
        except BaseException:
            if token is not None and self._reads.get(key) is token:
                del self._reads[key]
            raise
        if token is not None and self._reads.get(key) is token:
            del self._reads[key]
            self._store(key, value)
        return value

    async def put(self, key: str, value: bytes) -> None:
        check_key(key)
        value = to_bytes(value)
        await self._write({key: value}, self._inner.put(key, value))

    async def delete(self, key: str) -> None:
        check_key(key)
        await self._write({key: None}, self._inner.delete(key))

    async def list(self, prefix: str) -> list[str]:
        return await self._inner.list(prefix)

    async def transaction(self, ops: Sequence[StorageOp]) -> None:
        final: dict[str, bytes | None] = {}
        guarded: list[str] = []
        frozen: list[StorageOp] = []
        for op in ops:
            check_key(op.key)
            value = None if op.value is None else to_bytes(op.value)
            if op.check:
                guarded.append(op.key)  # a guard writes nothing: never cache its value
            else:
                final[op.key] = value  # a later op on the same key wins, as it does inside
            frozen.append(op if value is op.value else StorageOp(op.key, value, op.check))
        try:
            await self._write(final, self._inner.transaction(frozen))
        except StorageConflict:
            # the guard compared against a value we may hold stale (another writer changed
            # it without telling us): the caller's retry must read the inner storage
            for key in guarded:
                self.invalidate(key)
            raise

    def invalidate(self, key: str) -> None:
        """Forget ``key``: the next read goes to the inner storage.

        A write to ``key`` in flight will not cache its value either.
        """
        self._entries.pop(key, None)
        self._reads.pop(key, None)
        writes = self._writes.get(key)
        if writes is not None:
            writes.overlapped = True

    def invalidate_all(self) -> None:
        """Forget everything, including what in-flight reads and writes would cache."""
        self._entries.clear()
        self._reads.clear()
        for writes in self._writes.values():
            writes.overlapped = True

    async def close(self) -> None:
        self._entries.clear()
        self._reads.clear()
        close = getattr(self._inner, "close", None)
        if close is not None:
            await close()

    async def _write(self, final: dict[str, bytes | None], operation: Awaitable[None]) -> None:
        for key in final:
            self._reads.pop(key, None)  # a miss reading now may return the old value
            writes = self._writes.get(key)
            if writes is None:
                self._writes[key] = _Writes()
            else:
                writes.count += 1
                writes.overlapped = True
        ok = False
        try:
            await operation
            ok = True
        finally:
            # only after the inner write returned: on failure (or cancellation, which may or
            # may not have written) the key is dropped, never left at a guessed value
            for key, value in final.items():
                self._reads.pop(key, None)
                writes = self._writes[key]
                writes.count -= 1
                if writes.count == 0:
                    del self._writes[key]
                if ok and writes.count == 0 and not writes.overlapped:
                    self._store(key, value)
                else:
                    self._entries.pop(key, None)

    def _store(self, key: str, value: bytes | None) -> None:
        if self._max == 0:
            return
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
