"""PostgreSQL's side of HA (storage/ha.py): the leader lock with its term, fencing and the
change feed, against a real PostgreSQL, with two backends standing for two nodes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from strongroom.errors import Fenced, StorageConflict
from strongroom.logical import StorageOp
from strongroom.storage import PostgreSQLStorage
from strongroom.storage.ha import ChangeFeed, FeedGap, HABackend

from .conftest import fresh_table, open_pg

Run = Callable[[Awaitable[Any]], Any]


async def pair(**options: Any) -> tuple[PostgreSQLStorage, PostgreSQLStorage]:
    """Two nodes on one table (and one lock table of their own)."""
    table = fresh_table()
    options.setdefault("ha_table", f"{table}_locks")
    a = await open_pg(table, ha_enabled=True, **options)
    b = await open_pg(table, ha_enabled=True, **options)
    return a, b


def test_it_is_an_ha_backend_and_a_change_feed(run: Run) -> None:
    async def scenario() -> None:
        a, b = await pair()
        try:
            assert isinstance(a, HABackend) and isinstance(a, ChangeFeed)
        finally:
            await a.close()
            await b.close()

    run(scenario())


@pytest.mark.parametrize("round_", range(10))
def test_racing_nodes_exactly_one_wins_and_terms_grow(run: Run, round_: int) -> None:
    async def scenario() -> None:
        a, b = await pair()
        c = await open_pg(a.table, ha_enabled=True, ha_table=a.ha_table)
        try:
            nodes = [(a, "a"), (b, "b"), (c, "c")] * 3  # several tries per node at once
            terms = await asyncio.gather(
                *(s.try_acquire(n, f"https://{n}:8200", f"https://{n}:8201", 5) for s, n in nodes)
            )
            winners = {nodes[i][1] for i, t in enumerate(terms) if t is not None}
            # one node wins (it may re-take its own lock, each time with a newer term)
            assert len(winners) == 1, terms
            winner = winners.pop()
            holder = await b.holder()
            assert holder is not None and holder.node_id == winner
            assert holder.api_addr == f"https://{winner}:8200"
            assert holder.term == max(t for t in terms if t is not None)
            assert holder.expires_at > time.time()
            # released: another node takes it with a greater term
            await a.release(winner, holder.term)
            assert await a.holder() is None
            other = "b" if winner != "b" else "c"
            term = await b.try_acquire(other, "", "", 5)
            assert term is not None and term > holder.term
            assert not await a.renew(winner, holder.term, 5)  # the old term is over
            assert await b.renew(other, term, 5)
        finally:
            for s in (a, b, c):
                await s.close()

    run(scenario())


def test_a_lapsed_hold_is_taken_over(run: Run) -> None:
    async def scenario() -> None:
        a, b = await pair()
        try:
            first = await a.try_acquire("a", "", "", 0.3)
            assert first is not None
            assert await b.try_acquire("b", "", "", 5) is None  # held
            await asyncio.sleep(0.4)
            second = await b.try_acquire("b", "", "", 5)
            assert second is not None and second > first
        finally:
            await a.close()
            await b.close()

    run(scenario())


def test_a_paused_former_active_writes_nothing(run: Run) -> None:
    """The SIGSTOP scenario at storage level: A leads, pauses past its TTL, B takes over and
    writes; A wakes up and writes under its old term: refused, nothing changed."""

    async def scenario() -> None:
        a, b = await pair()
        try:
            term_a = await a.try_acquire("a", "", "", 0.3)
            assert term_a is not None
            a.fence(term_a)
            await a.put("x", b"from-a")
            await a.transaction([StorageOp("y", b"a"), StorageOp("z", b"a")])
            await asyncio.sleep(0.4)  # A is "stopped": no renewal
            term_b = await b.try_acquire("b", "", "", 5)
            assert term_b is not None and term_b > term_a
            b.fence(term_b)
            await b.put("x", b"from-b")
            before = await b.current_index()
            for attempt in (
                a.put("x", b"late"),
                a.delete("y"),
                a.transaction([StorageOp("z", b"late"), StorageOp("new", b"late")]),
                a.transaction([StorageOp("x", b"from-b", check=True), StorageOp("x", b"late")]),
            ):
                with pytest.raises(Fenced):
                    await attempt
            assert await b.get("x") == b"from-b"
            assert await b.get("y") == b"a" and await b.get("z") == b"a"
            assert await b.get("new") is None
            assert await b.current_index() == before  # nor did it reach the feed
            assert not await a.renew("a", term_a, 5)
            a.fence(None)  # a standby: every write refused before it reaches the database
            with pytest.raises(Fenced):
                await a.put("x", b"standby")
        finally:
            await a.close()
            await b.close()

    run(scenario())


@pytest.mark.parametrize("round_", range(5))
def test_writes_in_flight_during_a_takeover_land_before_it_or_not_at_all(
    run: Run, round_: int
) -> None:
    """A keeps writing while B takes the lock: each of A's writes either committed under
    A's term (before B's term began) or was refused; none lands after B's first write."""

    async def scenario() -> None:
        a, b = await pair(max_parallel=12)
        try:
            term_a = await a.try_acquire("a", "", "", 0.2)
            assert term_a is not None
            a.fence(term_a)
            outcomes: list[str] = []

            async def writer(i: int) -> None:
                for j in range(40):
                    try:
                        await a.put(f"w/{i}", b"a-%d" % j)
                    except Fenced:
                        outcomes.append("fenced")
                        return
                    outcomes.append("ok")
                    await asyncio.sleep(0.01)

            async def takeover() -> int:
                while True:
                    term = await b.try_acquire("b", "", "", 5)
                    if term is not None:
                        b.fence(term)
                        for i in range(4):
                            await b.put(f"w/{i}", b"b")
                        return term
                    await asyncio.sleep(0.02)

            _, _, _, _, term_b = await asyncio.gather(*(writer(i) for i in range(4)), takeover())
            assert term_b > term_a
            assert "fenced" in outcomes
            for i in range(4):  # B wrote last, and nothing of A's came after
                assert await b.get(f"w/{i}") == b"b"
        finally:
            await a.close()
            await b.close()

    run(scenario())


def test_the_change_feed_orders_every_write(run: Run) -> None:
    async def scenario() -> None:
        a, b = await pair(max_parallel=10)
        try:
            assert await b.current_index() == 0
            await a.put("k/1", b"1")
            await a.transaction([StorageOp("k/2", b"2"), StorageOp("k/3"), StorageOp("k/2", b"x")])
            batch = await b.changes_since(0)
            assert batch.index == 2
            assert list(batch.keys) == ["k/1", "k/2", "k/3"]
            # a burst: group-committed (fewer indexes than writes), consecutive, nothing lost
            await asyncio.gather(*(a.put(f"burst/{i}", b"v") for i in range(30)))
            end = await b.current_index()
            assert 2 < end < 32
            seen: list[str] = []
            index = 2
            while index < end:
                step = await b.changes_since(index, limit=1)
                assert step.index == index + 1  # every index in turn, none skipped
                seen += step.keys
                index = step.index
            assert sorted(seen) == sorted(f"burst/{i}" for i in range(30))
            for i in range(30):  # one after the other: one index each
                await a.put(f"seq/{i}", b"v")
            assert await b.current_index() == end + 30
            batch = await b.changes_since(end, limit=10)
            assert batch.index == end + 10 and len(batch.keys) == 10
            rest = await b.changes_since(batch.index)
            assert rest.index == end + 30
            assert {*batch.keys, *rest.keys} == {f"seq/{i}" for i in range(30)}
            empty = await b.changes_since(end + 30)
            assert empty.index == end + 30 and list(empty.keys) == []
            with pytest.raises(FeedGap) as gap:
                await b.changes_since(end + 99)  # ahead of the store: it was replaced
            assert gap.value.index == end + 30
            await a.trim_feed(end + 20)
            with pytest.raises(FeedGap):
                await b.changes_since(end + 5)
            assert (await b.changes_since(end + 20)).index == end + 30
        finally:
            await a.close()
            await b.close()

    run(scenario())


def test_the_feed_trims_itself(run: Run) -> None:
    async def scenario() -> None:
        a, b = await pair()
        try:
            a.feed_keep = 100
            i = 0
            while await a.current_index() < 1100:  # bursts, group-committed: ≥ 1 index each
                await asyncio.gather(*(a.put(f"t/{i + j}", b"v") for j in range(4)))
                i += 4
            end = await a.current_index()
            await asyncio.sleep(0.2)  # the trim runs after the 1024th commit
            with pytest.raises(FeedGap):
                await b.changes_since(10)
            assert (await b.changes_since(end - 50)).index == end
        finally:
            await a.close()
            await b.close()

    run(scenario())


def test_wait_wakes_on_another_nodes_commit(run: Run) -> None:
    async def scenario() -> None:
        a, b = await pair()
        try:
            start = time.monotonic()
            await b.wait(0, 0.3)  # nothing happens: returns after the timeout
            assert time.monotonic() - start >= 0.25
            waiting = asyncio.ensure_future(b.wait(0, 10))
            await asyncio.sleep(0.3)  # LISTEN is up
            assert not waiting.done()
            began = time.monotonic()
            await a.put("k", b"v")
            await asyncio.wait_for(waiting, 5)
            assert time.monotonic() - began < 2  # NOTIFY, not the 10 s timeout
            start = time.monotonic()
            await b.wait(0, 5)  # already past: at once
            assert time.monotonic() - start < 1
        finally:
            await a.close()
            await b.close()

    run(scenario())


def test_concurrent_writes_of_the_active_are_group_committed(run: Run) -> None:
    """A burst of writes on the fenced active: committed in few transactions (one fence
    check, one feed append and one flush each), every write's outcome its own: a failed
    guard fails that write alone, the others land."""

    async def scenario() -> None:
        a, b = await pair(max_parallel=8)
        try:
            term = await a.try_acquire("a", "", "", 5)
            assert term is not None
            a.fence(term)
            await a.put("cas", b"0")
            commits = a.commits
            writes = [a.put(f"g/{i}", b"v%d" % i) for i in range(20)]
            # two compare-and-swaps from the same value: exactly one wins
            cas = [
                a.transaction([StorageOp("cas", b"0", check=True), StorageOp("cas", v)])
                for v in (b"1", b"2")
            ]
            results = await asyncio.gather(*writes, *cas, return_exceptions=True)
            assert results[:20] == [None] * 20
            failed = [r for r in results[20:] if r is not None]
            assert len(failed) == 1 and isinstance(failed[0], StorageConflict)
            assert await b.get("cas") in (b"1", b"2")
            for i in range(20):
                assert await b.get(f"g/{i}") == b"v%d" % i
            assert a.commits - commits < 22  # grouped (all 22 were queued at once: one group)
            batch = await b.changes_since(0)
            assert {f"g/{i}" for i in range(20)} <= set(batch.keys) and "cas" in batch.keys
        finally:
            await a.close()
            await b.close()

    run(scenario())


@pytest.mark.parametrize("round_", range(5))
def test_a_fenced_out_former_active_commits_no_group(run: Run, round_: int) -> None:
    """A group of writes from a former active whose term is over: every one refused, none
    lands, the feed does not move."""

    async def scenario() -> None:
        a, b = await pair(max_parallel=8)
        try:
            term_a = await a.try_acquire("a", "", "", 0.2)
            assert term_a is not None
            a.fence(term_a)
            await a.put("k/0", b"a")
            await asyncio.sleep(0.3)  # A's hold lapses
            term_b = await b.try_acquire("b", "", "", 5)
            assert term_b is not None
            b.fence(term_b)
            await b.put("k/0", b"b")
            before = await b.current_index()
            results = await asyncio.gather(
                *(a.put(f"k/{i}", b"late") for i in range(16)), return_exceptions=True
            )
            assert all(isinstance(r, Fenced) for r in results), results
            assert await b.get("k/0") == b"b"
            for i in range(1, 16):
                assert await b.get(f"k/{i}") is None
            assert await b.current_index() == before
        finally:
            await a.close()
            await b.close()

    run(scenario())


@pytest.mark.parametrize("then", ["stepped-down", "re-elected"])
def test_a_write_commits_only_under_the_term_it_was_asked_for(run: Run, then: str) -> None:
    """A write asked for under term T that reaches the database after this node was fenced
    to ``None`` (stepped down) or to a newer term of its own (re-elected, its caches
    reloaded) is refused: it may rest on reads made as T's holder."""

    async def scenario() -> None:
        a, b = await pair(max_parallel=4)
        try:
            term = await a.try_acquire("a", "", "", 5)
            assert term is not None
            a.fence(term)
            await a.put("x", b"before")
            again = None
            if then == "re-elected":  # the lock taken again (a new term), not yet known
                again = await a.try_acquire("a", "", "", 5)
                assert again is not None and again > term
            before = await b.current_index()
            late = asyncio.ensure_future(a.put("x", b"late"))
            await asyncio.sleep(0)  # the write is queued; the committer has not run yet
            a.fence(again)  # stepped down (None), or re-elected under the new term
            with pytest.raises(Fenced):
                await late
            assert await b.get("x") == b"before"
            assert await b.current_index() == before
        finally:
            await a.close()
            await b.close()

    run(scenario())
