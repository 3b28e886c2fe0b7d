"""SQLite in shared mode: several real processes on one file, the leader lock with fencing
terms, guarded writes and the change feed (strongroom.storage.ha's contract)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from strongroom.errors import Fenced, InternalError, StorageConflict
from strongroom.logical import StorageOp
from strongroom.storage import SQLiteStorage
from strongroom.storage.ha import ChangeFeed, FeedGap, HABackend

Run = Callable[[Awaitable[Any]], Any]


def child(script: str, *args: str) -> subprocess.Popen[str]:
    """A separate Python process running ``script`` (with ``open_shared`` defined)."""
    prelude = textwrap.dedent(
        """
        import asyncio, sys, time
        from strongroom.errors import Fenced, StorageConflict
        from strongroom.logical import StorageOp
        from strongroom.storage import SQLiteStorage

        def say(*words):
            print(*words, flush=True)
        """
    )
    return subprocess.Popen(
        [sys.executable, "-c", prelude + textwrap.dedent(script), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def expect_line(proc: subprocess.Popen[str], wanted: str) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line.startswith(wanted), (line, wanted)
    return line


def test_is_an_ha_backend_and_feed_and_mixed_modes_exclude_each_other(
    run: Run, tmp_path: Path
) -> None:
    path = str(tmp_path / "db")
    one = run(SQLiteStorage.open(path, shared=True))
    two = run(SQLiteStorage.open(path, shared=True))  # another shared opener is welcome
    assert isinstance(one, HABackend) and isinstance(one, ChangeFeed)
    with pytest.raises(InternalError, match="in use"):
        run(SQLiteStorage.open(path))  # an exclusive (non-HA) server is not
    run(one.close())
    run(two.close())
    alone = run(SQLiteStorage.open(path))
    with pytest.raises(InternalError, match="in use"):
        run(SQLiteStorage.open(path, shared=True))
    with pytest.raises(InternalError, match="shared mode"):
        run(alone.try_acquire("n", "", "", 1.0))
    run(alone.close())


def test_terms_grow_and_only_one_holds_an_unexpired_lock(run: Run, tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    a = run(SQLiteStorage.open(path, shared=True))
    b = run(SQLiteStorage.open(path, shared=True))
    assert run(a.holder()) is None
    term = run(a.try_acquire("a", "https://a:8200", "https://a:8201", 30.0))
    assert term == 1
    assert run(b.try_acquire("b", "", "", 30.0)) is None
    holder = run(b.holder())
    assert holder is not None and (holder.node_id, holder.term) == ("a", 1)
    assert holder.api_addr == "https://a:8200" and holder.cluster_addr == "https://a:8201"
    assert run(a.renew("a", 1, 30.0)) and not run(b.renew("b", 1, 30.0))
    run(b.release("b", 1))  # not b's: no effect
    assert run(b.try_acquire("b", "", "", 30.0)) is None
    run(a.release("a", 1))
    assert run(b.holder()) is None
    assert run(b.try_acquire("b", "", "", 30.0)) == 2
    assert not run(a.renew("a", 1, 30.0))  # a's old term cannot be renewed back
    run(a.close())
    run(b.close())
    reopened = run(SQLiteStorage.open(path, shared=True))
    run(reopened.release("b", 2))
    assert run(reopened.try_acquire("c", "", "", 30.0)) == 3  # terms survive restarts
    run(reopened.close())


_HOLDER = """
async def main(path):
    storage = await SQLiteStorage.open(path, shared=True)
    term = await storage.try_acquire("paused", "", "", 0.5)
    storage.fence(term)
    await storage.put("k", b"from the first term")
    say("held", term)
    sys.stdin.readline()  # the test stops us (SIGSTOP) and resumes us past the TTL
    try:
        await storage.transaction([StorageOp("k", b"stale write"), StorageOp("other", b"x")])
        say("wrote")
    except Fenced:
        say("fenced")
    say("renew", await storage.renew("paused", term, 0.5))
    await storage.close()

asyncio.run(main(sys.argv[1]))
"""


@pytest.mark.parametrize("round_", range(3))
def test_a_paused_holder_is_fenced_once_another_takes_over(
    run: Run, tmp_path: Path, round_: int
) -> None:
    path = str(tmp_path / "db")
    proc = child(_HOLDER, path)
    try:
        term = int(expect_line(proc, "held").split()[1])
        os.kill(proc.pid, signal.SIGSTOP)
        storage = run(SQLiteStorage.open(path, shared=True))
        deadline = time.monotonic() + 5
        new_term = None
        while new_term is None and time.monotonic() < deadline:
            new_term = run(storage.try_acquire("new", "", "", 30.0))
            if new_term is None:
                time.sleep(0.05)
        assert new_term == term + 1
        storage.fence(new_term)
        run(storage.put("k", b"from the second term"))
        os.kill(proc.pid, signal.SIGCONT)
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
        expect_line(proc, "fenced")
        expect_line(proc, "renew False")
        assert proc.wait(10) == 0
        assert run(storage.get("k")) == b"from the second term"
        assert run(storage.get("other")) is None  # nothing of the fenced write landed
        storage.fence(None)  # a standby: every write refused
        with pytest.raises(Fenced):
            run(storage.put("k", b"standby write"))
        assert run(storage.get("k")) == b"from the second term"
        run(storage.close())
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
        proc.wait()


_COUNTER = """
async def main(path, rounds):
    storage = await SQLiteStorage.open(path, shared=True)
    say("ready")
    sys.stdin.readline()
    done = conflicts = 0
    while done < rounds:
        raw = await storage.get("counter")
        new = str(int(raw or b"0") + 1).encode()
        try:
            await storage.transaction(
                [StorageOp("counter", raw, check=True), StorageOp("counter", new)]
            )
        except StorageConflict:
            conflicts += 1
            continue
        done += 1
    say("done", done, conflicts)
    await storage.close()

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


@pytest.mark.parametrize("round_", range(5))
def test_guarded_increments_from_processes_never_lose_one(
    run: Run, tmp_path: Path, round_: int
) -> None:
    path = str(tmp_path / "db")
    per_process = 60
    procs = [child(_COUNTER, path, str(per_process)) for _ in range(3)]
    try:
        for proc in procs:
            expect_line(proc, "ready")
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        for proc in procs:
            expect_line(proc, f"done {per_process}")
            assert proc.wait(30) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    storage = run(SQLiteStorage.open(path, shared=True))
    assert run(storage.get("counter")) == str(3 * per_process).encode()
    # every successful increment is one change in the feed, in order
    batch = run(storage.changes_since(0))
    assert batch.index == 3 * per_process and list(batch.keys) == ["counter"]
    run(storage.close())


def test_guards_fail_a_write_alone_and_write_nothing(run: Run, tmp_path: Path) -> None:
    storage = run(SQLiteStorage.open(str(tmp_path / "db"), shared=True))

    async def scenario() -> list[BaseException | None]:
        await storage.put("g", b"old")
        return await asyncio.gather(
            storage.transaction([StorageOp("g", b"wrong", check=True), StorageOp("g", b"x")]),
            storage.transaction([StorageOp("absent", None, check=True), StorageOp("n", b"1")]),
            storage.transaction([StorageOp("g", None, check=True), StorageOp("h", b"1")]),
            return_exceptions=True,
        )

    results = run(scenario())
    assert isinstance(results[0], StorageConflict) and results[1] is None
    assert isinstance(results[2], StorageConflict)
    assert run(storage.get("g")) == b"old" and run(storage.get("n")) == b"1"
    assert run(storage.get("h")) is None
    run(storage.close())


_WRITER = """
async def main(path):
    storage = await SQLiteStorage.open(path, shared=True)
    say("ready")
    for line in sys.stdin:
        key = line.strip()
        if not key:
            break
        await storage.put(key, b"v")
        say("put", key)
    await storage.close()

asyncio.run(main(sys.argv[1]))
"""


def test_the_feed_reports_another_process_writes_in_order(run: Run, tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    reader = run(SQLiteStorage.open(path, shared=True))
    assert run(reader.current_index()) == 0
    assert run(reader.changes_since(0)).keys == ()
    proc = child(_WRITER, path)
    try:
        expect_line(proc, "ready")
        assert proc.stdin is not None
        index = 0
        for i in range(5):

            async def put_and_wait(key: str, since: int) -> float:
                assert proc.stdin is not None
                proc.stdin.write(key + "\n")
                proc.stdin.flush()
                start = time.monotonic()
                await reader.wait(since, 10.0)
                return time.monotonic() - start

            run(put_and_wait(f"dir/key{i}\twith a tab", index))
            expect_line(proc, "put")
            batch = run(reader.changes_since(index))
            assert batch.index == index + 1
            assert list(batch.keys) == [f"dir/key{i}\twith a tab"]
            index = batch.index
        # wait() with nothing new returns after its timeout
        start = time.monotonic()
        run(reader.wait(index, 0.05))
        assert time.monotonic() - start >= 0.04
        assert run(reader.changes_since(0, limit=2)).index == 2
        with pytest.raises(FeedGap) as gap:
            run(reader.changes_since(index + 10))  # ahead of the store: it was replaced
        assert gap.value.index == index
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    run(reader.close())
