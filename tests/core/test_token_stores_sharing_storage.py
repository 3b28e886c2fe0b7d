"""Two token stores on one storage, each with its own caches: two worker processes (or
nodes) of one server. Use counts and revocation must hold across them, which only the
guarded read-modify-writes in storage can give (neither store's memory knows the other's).
"""

from __future__ import annotations

import asyncio
import secrets

import pytest

from strongroom.barrier import AESGCMBarrier, View
from strongroom.clock import FakeClock
from strongroom.core.tokens import TokenStore
from strongroom.errors import PermissionDenied, StorageConflict
from strongroom.framework import Swap, swap
from strongroom.logical import Storage
from strongroom.storage import CachedStorage, MemoryStorage


async def _two_stores() -> tuple[TokenStore, TokenStore]:
    """Two stores, each behind its own storage cache and barrier, over one physical store."""
    physical = MemoryStorage()
    root_key = secrets.token_bytes(32)
    stores = []
    for index in range(2):
        barrier = AESGCMBarrier(CachedStorage(physical, max_entries=1024))
        if index == 0:
            await barrier.initialize(root_key)
        else:
            await barrier.unseal(root_key)
        stores.append(TokenStore(View(barrier, "sys/token/"), FakeClock(), b"s" * 32))
    return stores[0], stores[1]


async def _spend(store: TokenStore, token: str) -> bool:
    await asyncio.sleep(0)
    entry = await store.lookup(token)
    if entry is None:
        return False
    await asyncio.sleep(0)  # both processes hold the entry before either spends it
    try:
        await store.use(entry)
    except PermissionDenied:
        return False
    return True


@pytest.mark.parametrize("uses", [1, 2, 5])
def test_uses_are_counted_across_processes(uses: int) -> None:
    async def scenario() -> None:
        a, b = await _two_stores()
        token, _ = await a.create(policies=("p",), parent=None, ttl=600, num_uses=uses)
        assert await b.lookup(token) is not None  # b caches the entry with all its uses
        results = await asyncio.gather(*(_spend(s, token) for s in (a, b) * 10))
        assert results.count(True) == uses

    asyncio.run(scenario())


def test_revocation_in_one_process_stops_minting_in_the_other() -> None:
    async def scenario() -> None:
        a, b = await _two_stores()
        _, parent = await a.create(policies=("p",), parent=None, ttl=600)
        cached_in_b = await b.lookup_accessor(parent.accessor)
        assert cached_in_b is not None
        await a.create(policies=("p",), parent=parent, ttl=600)
        await a.revoke_tree(parent)
        # b's cache still holds the live parent; the storage guard refuses the child
        with pytest.raises(PermissionDenied):
            await b.create(policies=("p",), parent=cached_in_b, ttl=600)
        assert await b.list_accessors() == []

    asyncio.run(scenario())


def test_swap_over_two_caches_loses_no_increment() -> None:
    async def scenario() -> None:
        physical = MemoryStorage()
        caches: list[Storage] = [CachedStorage(physical), CachedStorage(physical)]

        async def bump(raw: bytes | None) -> Swap[None]:
            await asyncio.sleep(0)
            return Swap(str(int(raw or b"0") + 1).encode(), None)

        await asyncio.gather(*(swap(caches[i % 2], "n", bump) for i in range(100)))
        assert await physical.get("n") == b"100"

    asyncio.run(scenario())


def test_swap_gives_up_under_endless_conflict() -> None:
    class Hostile(MemoryStorage):
        async def transaction(self, ops):  # type: ignore[no-untyped-def]
            raise StorageConflict("always")

    async def keep(raw: bytes | None) -> Swap[None]:
        return Swap(b"x", None)

    with pytest.raises(StorageConflict):
        asyncio.run(swap(Hostile(), "k", keep, attempts=3))
