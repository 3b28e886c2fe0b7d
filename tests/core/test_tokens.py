"""Token store TTL arithmetic and revocation with a movable clock and in-memory storage."""

from __future__ import annotations

import asyncio

import pytest

from strongroom.clock import FakeClock
from strongroom.core.tokens import TokenStore, new_token_id
from strongroom.errors import InvalidRequest
from strongroom.storage import MemoryStorage


def _store() -> tuple[TokenStore, FakeClock, MemoryStorage]:
    clock = FakeClock()
    storage = MemoryStorage()
    return TokenStore(storage, clock, b"s" * 32), clock, storage


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_token_ids_are_long_and_random() -> None:
    ids = {new_token_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(t.startswith("hvs.") and len(t) == 28 for t in ids)


def test_storage_never_holds_the_token_id() -> None:
    async def scenario() -> None:
        store, _, storage = _store()
        token, entry = await store.create(policies=("default",), parent=None, ttl=60)
        blob = b"".join([k.encode() + (v or b"") for k, v in storage._data.items()])
        assert token.encode() not in blob
        assert token[4:].encode() not in blob
        assert (await store.lookup(token)) == entry

    run(scenario())


def test_expiry_is_immediate() -> None:
    async def scenario() -> None:
        store, clock, _ = _store()
        token, _ = await store.create(policies=("default",), parent=None, ttl=60)
        clock.advance(59.9)
        assert await store.lookup(token) is not None
        clock.advance(0.2)
        assert await store.lookup(token) is None

    run(scenario())


def test_renew_capped_by_explicit_max() -> None:
    async def scenario() -> None:
        store, clock, _ = _store()
        token, entry = await store.create(
            policies=("default",), parent=None, ttl=60, explicit_max_ttl=100
        )
        clock.advance(50)
        renewed, warnings = await store.renew(entry, 3600)
        assert renewed.expire_time == entry.creation_time + 100
        assert warnings
        clock.advance(51)
        assert await store.lookup(token) is None

    run(scenario())


def test_renew_periodic_resets_to_period() -> None:
    async def scenario() -> None:
        store, clock, _ = _store()
        _, entry = await store.create(policies=("default",), parent=None, ttl=30, period=30)
        clock.advance(1000)
        renewed, _ = await store.renew(entry, 99999)
        assert renewed.expire_time == clock.now() + 30

    run(scenario())


def test_not_renewable() -> None:
    async def scenario() -> None:
        store, _, _ = _store()
        _, entry = await store.create(policies=("d",), parent=None, ttl=30, renewable=False)
        with pytest.raises(InvalidRequest):
            await store.renew(entry, 10)

    run(scenario())


def test_revoke_tree_and_orphan() -> None:
    async def scenario() -> None:
        store, _, _ = _store()
        root_token, root = await store.create(policies=("root",), parent=None)
        child_token, child = await store.create(policies=("a",), parent=root, ttl=60)
        grand_token, _ = await store.create(policies=("a",), parent=child, ttl=60)
        other_token, other = await store.create(policies=("a",), parent=root, ttl=60)
        other_child, _ = await store.create(policies=("a",), parent=other, ttl=60)
        await store.revoke_tree(child)
        assert await store.lookup(child_token) is None
        assert await store.lookup(grand_token) is None
        assert await store.lookup(root_token) is not None
        await store.revoke_orphan(other)
        assert await store.lookup(other_token) is None
        orphan = await store.lookup(other_child)
        assert orphan is not None and orphan.orphan

    run(scenario())


def test_sweep_revokes_expired_children() -> None:
    async def scenario() -> None:
        store, clock, _ = _store()
        _, parent = await store.create(policies=("a",), parent=None, ttl=10)
        child_token, _ = await store.create(policies=("a",), parent=parent, ttl=1000)
        clock.advance(11)
        assert await store.sweep() == 1
        assert await store.lookup(child_token) is None

    run(scenario())


def test_num_uses_last_use_marks_exhausted() -> None:
    async def scenario() -> None:
        store, _, _ = _store()
        token, entry = await store.create(policies=("a",), parent=None, ttl=60, num_uses=2)
        assert await store.use(entry) is None
        entry = await store.lookup(token)
        assert entry is not None and entry.num_uses == 1
        last = await store.use(entry)
        assert last is not None
        assert await store.lookup(token) is None

    run(scenario())


def test_accessor_lookup_and_listing() -> None:
    async def scenario() -> None:
        store, _, _ = _store()
        _, entry = await store.create(policies=("a",), parent=None, ttl=60)
        assert (await store.lookup_accessor(entry.accessor)) == entry
        assert await store.lookup_accessor("nope") is None
        assert await store.list_accessors() == [entry.accessor]

    run(scenario())


def test_repr_hides_secrets() -> None:
    async def scenario() -> None:
        store, _, _ = _store()
        token, entry = await store.create(policies=("a",), parent=None, ttl=60)
        assert token not in repr(entry)
        assert entry.id_hash not in repr(entry)

    run(scenario())
