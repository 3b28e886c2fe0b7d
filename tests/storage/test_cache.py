"""CachedStorage: hits, misses, LRU order, invalidation, and the read/write races."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest

from strongroom.errors import InternalError
from strongroom.logical import StorageOp
from strongroom.storage import CachedStorage, MemoryStorage

Run = Callable[[Awaitable[Any]], Any]


class CountingStorage(MemoryStorage):
    """A memory storage that counts inner reads and can be told to fail writes."""

    def __init__(self) -> None:
        super().__init__()
        self.gets = 0
        self.fail_writes = False
        self.closed = False

    async def get(self, key: str) -> bytes | None:
        self.gets += 1
        return await super().get(key)

    async def put(self, key: str, value: bytes) -> None:
        if self.fail_writes:
            raise InternalError("disk on fire")
        await super().put(key, value)

    async def transaction(self, ops: Sequence[StorageOp]) -> None:
        if self.fail_writes:
            raise InternalError("disk on fire")
        await super().transaction(ops)

    async def close(self) -> None:
        self.closed = True


class GatedStorage(MemoryStorage):
    """Reads and writes act at call time but return only when their gate opens."""

    def __init__(self) -> None:
        super().__init__()
        self.gates: list[asyncio.Event] = []

    def _gate(self) -> asyncio.Event:
        gate = asyncio.Event()
        self.gates.append(gate)
        return gate

    async def get(self, key: str) -> bytes | None:
        value = await super().get(key)
        await self._gate().wait()
        return value

    async def put(self, key: str, value: bytes) -> None:
        await super().put(key, value)
        await self._gate().wait()


def test_hits_misses_and_negative_entries(run: Run) -> None:
    inner = CountingStorage()
    cache = CachedStorage(inner, max_entries=10)
    run(inner.put("a", b"1"))
    assert run(cache.get("a")) == b"1"
    assert run(cache.get("a")) == b"1"
    assert run(cache.get("missing")) is None
    assert run(cache.get("missing")) is None
    assert inner.gets == 2
    assert (cache.hits, cache.misses) == (2, 2)


def test_writes_update_the_cache_without_reading(run: Run) -> None:
    inner = CountingStorage()
    cache = CachedStorage(inner)
    run(cache.put("a", b"1"))
    run(cache.delete("b"))
    run(cache.transaction([StorageOp("c", b"3"), StorageOp("a", b"2"), StorageOp("c")]))
    assert [run(cache.get(k)) for k in "abc"] == [b"2", None, None]
    assert inner.gets == 0
    assert [run(inner.get(k)) for k in "abc"] == [b"2", None, None]


def test_lru_evicts_the_least_recently_used(run: Run) -> None:
    inner = CountingStorage()
    cache = CachedStorage(inner, max_entries=2)
    run(cache.put("a", b"1"))
    run(cache.put("b", b"2"))
    run(cache.get("a"))  # a is now the most recent
    run(cache.put("c", b"3"))  # evicts b
    assert len(cache) == 2
    run(cache.get("a"))
    run(cache.get("c"))
    assert inner.gets == 0
    run(cache.get("b"))
    assert inner.gets == 1


def test_zero_entries_disables_caching(run: Run) -> None:
    inner = CountingStorage()
    cache = CachedStorage(inner, max_entries=0)
    run(cache.put("a", b"1"))
    assert run(cache.get("a")) == b"1"
    assert inner.gets == 1
    with pytest.raises(ValueError):
        CachedStorage(inner, max_entries=-1)


def test_invalidate_sends_the_next_read_inside(run: Run) -> None:
    inner = CountingStorage()
    cache = CachedStorage(inner)
    run(cache.put("a", b"1"))
    run(cache.put("b", b"2"))
    run(inner.put("a", b"changed elsewhere"))
    run(inner.put("b", b"also changed"))
    assert run(cache.get("a")) == b"1"
    cache.invalidate("a")
    assert run(cache.get("a")) == b"changed elsewhere"
    assert run(cache.get("b")) == b"2"
    cache.invalidate_all()
    assert run(cache.get("b")) == b"also changed"


def test_a_failed_write_leaves_nothing_cached(run: Run) -> None:
    inner = CountingStorage()
    cache = CachedStorage(inner)
    run(cache.put("a", b"1"))
    inner.fail_writes = True
    with pytest.raises(InternalError):
        run(cache.put("a", b"2"))
    with pytest.raises(InternalError):
        run(cache.transaction([StorageOp("a", b"3")]))
    inner.fail_writes = False
    assert run(cache.get("a")) == b"1"
    assert inner.gets == 1  # it came from the inner storage, not from a guess


def test_a_slow_miss_does_not_cache_a_value_overtaken_by_a_write(run: Run) -> None:
    inner = GatedStorage()
    cache = CachedStorage(inner)

    async def scenario() -> None:
        await inner.transaction([StorageOp("k", b"old")])
        reader = asyncio.create_task(cache.get("k"))
        await asyncio.sleep(0)  # the miss has read b"old" and waits at its gate
        writer = asyncio.create_task(cache.put("k", b"new"))
        await asyncio.sleep(0)
        inner.gates[1].set()  # the write returns first
        await writer
        inner.gates[0].set()
        assert await reader == b"old"  # it started before the write: fine to see old
        assert await cache.get("k") == b"new"  # but the cache must not keep it

    run(scenario())


def test_overlapping_writes_drop_the_key_instead_of_guessing(run: Run) -> None:
    inner = GatedStorage()
    cache = CachedStorage(inner)

    async def scenario() -> None:
        first = asyncio.create_task(cache.put("k", b"first"))
        await asyncio.sleep(0)
        second = asyncio.create_task(cache.put("k", b"second"))
        await asyncio.sleep(0)
        inner.gates[1].set()  # the later write finishes first
        await second
        inner.gates[0].set()
        await first
        assert len(cache) == 0
        inner.gates.clear()
        reader = asyncio.create_task(cache.get("k"))
        await asyncio.sleep(0)
        inner.gates[0].set()
        assert await reader == b"second"

    run(scenario())


def test_concurrent_misses_read_once_each_and_fill_once(run: Run) -> None:
    inner = GatedStorage()
    cache = CachedStorage(inner)

    async def scenario() -> None:
        await inner.transaction([StorageOp("k", b"v")])
        readers = [asyncio.create_task(cache.get("k")) for _ in range(3)]
        await asyncio.sleep(0)
        for gate in inner.gates:
            gate.set()
        assert await asyncio.gather(*readers) == [b"v"] * 3
        assert await cache.get("k") == b"v"
        assert len(inner.gates) == 3  # the fourth read was a hit

    run(scenario())


def test_list_goes_inside_and_close_closes_inner(run: Run) -> None:
    inner = CountingStorage()
    cache = CachedStorage(inner)
    run(cache.put("d/a", b"1"))
    run(inner.put("d/b", b"2"))
    assert run(cache.list("d/")) == ["a", "b"]
    run(cache.close())
    assert inner.closed


def test_repr_never_shows_values(run: Run) -> None:
    cache = CachedStorage(MemoryStorage())
    run(cache.put("k", b"top-secret-ciphertext"))
    assert "top-secret" not in repr(cache)
