"""Transaction guards (``StorageOp(check=True)``): compare-and-swap on every layer.

Run against each physical backend, and against the barrier (and a view of it) over each
backend, because the barrier turns a plaintext guard into a guard on the exact ciphertext.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from strongroom.barrier import AESGCMBarrier, View
from strongroom.errors import InvalidPath, StorageConflict
from strongroom.logical import Storage, StorageOp
from strongroom.storage import CachedStorage, MemoryStorage, PhysicalStorage

from .conftest import KINDS, open_backend

Run = Callable[[Awaitable[Any]], Any]

LAYERS = [*KINDS, *(f"barrier-{kind}" for kind in KINDS), "view-barrier-sqlite"]


async def _open_layer(layer: str, directory: Path) -> tuple[Storage, PhysicalStorage]:
    """(the storage under test, the physical backend to close)."""
    kind = layer.rsplit("-", 1)[-1]
    physical = await open_backend(kind, directory)
    if not layer.startswith(("barrier-", "view-")):
        return physical, physical
    barrier = AESGCMBarrier(physical)
    await barrier.initialize(secrets.token_bytes(32))
    if layer.startswith("view-"):
        return View(barrier, "logical/abc/"), physical
    return barrier, physical


@pytest.fixture(params=LAYERS)
def layer(request: pytest.FixtureRequest, run: Run, tmp_path: Path) -> Iterator[Storage]:
    storage, physical = run(_open_layer(request.param, tmp_path))
    yield storage
    run(physical.close())


def guard(key: str, value: bytes | None) -> StorageOp:
    return StorageOp(key, value, check=True)


def test_guard_on_absent_key_lets_the_write_through(layer: Storage, run: Run) -> None:
    run(layer.transaction([guard("g/k", None), StorageOp("g/k", b"first")]))
    assert run(layer.get("g/k")) == b"first"


def test_guard_on_matching_value_is_a_compare_and_swap(layer: Storage, run: Run) -> None:
    run(layer.put("g/k", b"one"))
    run(layer.transaction([guard("g/k", b"one"), StorageOp("g/k", b"two")]))
    assert run(layer.get("g/k")) == b"two"
    # the same swap again no longer matches
    with pytest.raises(StorageConflict):
        run(layer.transaction([guard("g/k", b"one"), StorageOp("g/k", b"three")]))
    assert run(layer.get("g/k")) == b"two"


@pytest.mark.parametrize(
    ("stored", "expected"),
    [(b"actual", b"other"), (b"actual", None), (None, b"wanted"), (b"", None), (None, b"")],
)
def test_failed_guard_applies_nothing(
    layer: Storage, run: Run, stored: bytes | None, expected: bytes | None
) -> None:
    if stored is not None:
        run(layer.put("g/k", stored))
    run(layer.put("g/other", b"before"))
    with pytest.raises(StorageConflict):
        run(
            layer.transaction(
                [
                    StorageOp("g/other", b"after"),
                    guard("g/k", expected),
                    StorageOp("g/k", b"new"),
                    StorageOp("g/third", b"x"),
                ]
            )
        )
    assert run(layer.get("g/k")) == stored
    assert run(layer.get("g/other")) == b"before"
    assert run(layer.get("g/third")) is None
    assert run(layer.list("g/")) == sorted(["other", *(["k"] if stored is not None else [])])


def test_a_guard_alone_writes_nothing(layer: Storage, run: Run) -> None:
    run(layer.put("g/k", b"v"))
    run(layer.transaction([guard("g/k", b"v"), guard("g/missing", None)]))
    assert run(layer.get("g/k")) == b"v"
    assert run(layer.get("g/missing")) is None
    assert run(layer.list("g/")) == ["k"]


def test_guards_see_values_from_before_the_transaction(layer: Storage, run: Run) -> None:
    run(layer.put("g/k", b"old"))
    # the guard comes after the write in the list, yet compares the value before it
    run(layer.transaction([StorageOp("g/k", b"new"), guard("g/k", b"old")]))
    assert run(layer.get("g/k")) == b"new"
    with pytest.raises(StorageConflict):
        run(layer.transaction([StorageOp("g/k", b"newer"), guard("g/k", b"newer")]))
    assert run(layer.get("g/k")) == b"new"


def test_several_guards_all_must_hold(layer: Storage, run: Run) -> None:
    run(layer.put("g/a", b"1"))
    run(layer.put("g/b", b"2"))
    with pytest.raises(StorageConflict):
        run(layer.transaction([guard("g/a", b"1"), guard("g/b", b"X"), StorageOp("g/c", b"3")]))
    assert run(layer.get("g/c")) is None
    run(layer.transaction([guard("g/a", b"1"), guard("g/b", b"2"), StorageOp("g/c", b"3")]))
    assert run(layer.get("g/c")) == b"3"


def test_guard_with_a_delete(layer: Storage, run: Run) -> None:
    run(layer.put("g/k", b"v"))
    with pytest.raises(StorageConflict):
        run(layer.transaction([guard("g/k", b"w"), StorageOp("g/k")]))
    run(layer.transaction([guard("g/k", b"v"), StorageOp("g/k")]))
    assert run(layer.get("g/k")) is None


async def _cas_increment(storage: Storage, key: str, times: int) -> int:
    """Add 1 to the counter at ``key`` ``times`` times; returns how many retries it took."""
    retries = 0
    for _ in range(times):
        while True:
            current = await storage.get(key)
            count = int(current) if current is not None else 0
            await asyncio.sleep(0)  # let the others read the same value (memory never yields)
            try:
                await storage.transaction(
                    [guard(key, current), StorageOp(key, str(count + 1).encode())]
                )
            except StorageConflict:
                retries += 1
                continue
            break
    return retries


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_cas_increments_lose_nothing(layer: Storage, run: Run, round_: int) -> None:
    workers, times = 16, 12

    async def burst() -> int:
        results = await asyncio.gather(
            *(_cas_increment(layer, "g/counter", times) for _ in range(workers))
        )
        return sum(results)

    retries = run(burst())
    assert run(layer.get("g/counter")) == str(workers * times).encode()
    assert retries > 0  # the burst really raced: some guards failed and were retried


def test_guards_compare_values_not_versions(layer: Storage, run: Run) -> None:
    """A rewrite to the same value between the read and the swap does not fail the guard
    (the barrier's physical guard is taken on the ciphertext current when it commits)."""

    async def scenario() -> None:
        await layer.put("g/k", b"1")
        seen = await layer.get("g/k")
        await layer.put("g/k", b"1")
        await layer.transaction([guard("g/k", seen), StorageOp("g/k", b"2")])

    run(scenario())
    assert run(layer.get("g/k")) == b"2"


# -- layer-specific ---------------------------------------------------------------------------


class _Spy(MemoryStorage):
    """A physical storage recording the transactions it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[list[StorageOp]] = []

    async def transaction(self, ops: Sequence[StorageOp]) -> None:
        self.seen.append(list(ops))
        await super().transaction(ops)


def test_barrier_guards_the_exact_ciphertext_it_read(run: Run) -> None:
    async def scenario() -> None:
        physical = _Spy()
        barrier = AESGCMBarrier(physical)
        await barrier.initialize(secrets.token_bytes(32))
        await barrier.put("k", b"plain")
        blob = await physical.get("k")
        assert blob is not None and b"plain" not in blob
        await barrier.transaction([guard("k", b"plain"), StorageOp("k", b"next")])
        sent = physical.seen[-1]
        assert sent[0] == StorageOp("k", blob, check=True)
        assert sent[1].key == "k" and not sent[1].check and sent[1].value != b"next"
        assert await barrier.get("k") == b"next"

    run(scenario())


def test_barrier_guard_fails_when_the_ciphertext_changed_underneath(run: Run) -> None:
    """Another writer re-encrypts the same plaintext between our read and our commit."""

    async def scenario() -> None:
        physical = MemoryStorage()
        barrier = AESGCMBarrier(physical)
        await barrier.initialize(secrets.token_bytes(32))
        await barrier.put("k", b"same")

        class Racing(MemoryStorage):
            async def transaction(self, ops: Sequence[StorageOp]) -> None:
                await barrier.put("k", b"same")  # new nonce, same plaintext
                await physical.transaction(ops)

            async def get(self, key: str) -> bytes | None:
                return await physical.get(key)

        racing = AESGCMBarrier(Racing())
        await racing.unseal(barrier.root_key)
        with pytest.raises(StorageConflict):
            await racing.transaction([guard("k", b"same"), StorageOp("k", b"lost")])
        assert await barrier.get("k") == b"same"

    run(scenario())


def test_barrier_refuses_guards_on_reserved_paths(run: Run) -> None:
    async def scenario() -> None:
        barrier = AESGCMBarrier(MemoryStorage())
        await barrier.initialize(secrets.token_bytes(32))
        with pytest.raises(InvalidPath):
            await barrier.transaction([guard("core/keyring", None), StorageOp("x", b"1")])
        assert await barrier.get("x") is None

    run(scenario())


def test_cache_never_caches_a_guard_and_forgets_a_stale_value(run: Run) -> None:
    async def scenario() -> None:
        inner = MemoryStorage()
        cache = CachedStorage(inner, max_entries=16)
        await cache.put("k", b"v1")
        assert await cache.get("k") == b"v1"
        # a guard for a value that is not stored must not plant that value in the cache
        with pytest.raises(StorageConflict):
            await cache.transaction([guard("k", b"guessed")])
        assert await cache.get("k") == b"v1"
        # another writer changes the inner storage behind the cache's back
        await inner.put("k", b"v2")
        assert await cache.get("k") == b"v1"  # stale, as documented (no invalidation yet)
        with pytest.raises(StorageConflict):
            await cache.transaction([guard("k", b"v1"), StorageOp("k", b"v3")])
        # the failed guard dropped the stale entry: the retry sees the real value
        assert await cache.get("k") == b"v2"
        await cache.transaction([guard("k", b"v2"), StorageOp("k", b"v3")])
        assert await cache.get("k") == b"v3"
        assert await inner.get("k") == b"v3"

    run(scenario())


def test_view_keeps_guards_when_prefixing(run: Run) -> None:
    async def scenario() -> None:
        physical = _Spy()
        view = View(physical, "logical/m/")
        await view.put("k", b"v")
        await view.transaction([guard("k", b"v"), StorageOp("k", b"w")])
        assert physical.seen[-1][0] == StorageOp("logical/m/k", b"v", check=True)
        with pytest.raises(StorageConflict):
            await view.transaction([guard("k", b"v"), StorageOp("k", b"x")])
        assert await view.get("k") == b"w"

    run(scenario())
