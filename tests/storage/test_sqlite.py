"""SQLiteStorage specifics: file modes, group commit, failure isolation, crash durability."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import strongroom
from strongroom.errors import InternalError
from strongroom.logical import StorageOp
from strongroom.storage import SQLiteStorage

Run = Callable[[Awaitable[Any]], Any]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_are_owner_only_whatever_the_umask(run: Run, tmp_path: Path) -> None:
    db = tmp_path / "new" / "dir" / "vault.db"
    old = os.umask(0)
    try:
        storage = run(SQLiteStorage.open(str(db)))
    finally:
        os.umask(old)
    run(storage.put("k", b"v"))
    assert mode(db.parent) == 0o700
    for suffix in ("", "-wal", "-shm"):
        assert mode(Path(f"{db}{suffix}")) == 0o600, suffix
    run(storage.close())


def test_an_existing_directory_keeps_its_mode_and_a_loose_file_is_tightened(
    run: Run, tmp_path: Path
) -> None:
    tmp_path.chmod(0o755)
    db = tmp_path / "vault.db"
    db.touch(mode=0o644)
    db.chmod(0o644)
    storage = run(SQLiteStorage.open(str(db)))
    run(storage.close())
    assert mode(tmp_path) == 0o755
    assert mode(db) == 0o600


def test_a_second_open_of_the_same_file_is_refused(run: Run, tmp_path: Path) -> None:
    first = run(SQLiteStorage.open(str(tmp_path / "db")))
    with pytest.raises(InternalError, match="in use"):
        run(SQLiteStorage.open(str(tmp_path / "db")))
    run(first.close())
    second = run(SQLiteStorage.open(str(tmp_path / "db")))
    run(second.close())


def test_open_failure_is_reported(run: Run, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(InternalError, match="cannot open"):
        run(SQLiteStorage.open(str(tmp_path / "file" / "db")))


def test_data_survives_reopen(run: Run, tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    storage = run(SQLiteStorage.open(path))
    run(storage.transaction([StorageOp(f"p/{i}", str(i).encode()) for i in range(100)]))
    run(storage.delete("p/7"))
    run(storage.close())
    storage = run(SQLiteStorage.open(path))
    assert run(storage.get("p/8")) == b"8"
    assert run(storage.get("p/7")) is None
    assert len(run(storage.list("p/"))) == 99
    run(storage.close())


def test_concurrent_writers_share_commits_and_read_their_writes(run: Run, tmp_path: Path) -> None:
    storage = run(SQLiteStorage.open(str(tmp_path / "db")))

    async def writer(task: int) -> None:
        for i in range(40):
            key = f"w/{task:02d}/{i:03d}"
            value = f"{task}:{i}".encode()
            await storage.put(key, value)
            # read-your-writes through the separate read connection
            assert await storage.get(key) == value
            if i % 5 == 0:
                await storage.delete(key)
                assert await storage.get(key) is None
            if i % 10 == 0:
                await storage.transaction([StorageOp(f"{key}/t", value), StorageOp(key)])

    async def scenario() -> None:
        await asyncio.gather(*(writer(task) for task in range(32)))

    run(scenario())
    writes = storage.write_count
    assert writes == 32 * (40 + 8 + 4)
    assert storage.commit_count < writes / 2  # group commit did group
    assert len(run(storage.list("w/"))) == 32
    for task in range(32):
        children = run(storage.list(f"w/{task:02d}/"))
        assert len([c for c in children if not c.endswith("/")]) == 40 - 8
        assert len([c for c in children if c.endswith("/")]) == 4
    run(storage.close())


def test_without_group_commit_every_write_commits_alone(run: Run, tmp_path: Path) -> None:
    storage = run(SQLiteStorage.open(str(tmp_path / "db"), max_batch=1))

    async def scenario() -> None:
        await asyncio.gather(*(storage.put(f"k{i}", b"v") for i in range(50)))

    run(scenario())
    assert storage.commit_count == storage.write_count == 50
    run(storage.close())


def test_a_failing_write_does_not_fail_its_batch(run: Run, tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    storage = run(SQLiteStorage.open(path))
    run(storage.put("broken/leaf", b"v"))
    # damage the folder index behind the storage's back (storage is untrusted)
    raw = sqlite3.connect(path)
    raw.execute("DELETE FROM folders WHERE name = 'broken/'")
    raw.commit()
    raw.close()

    async def scenario() -> list[BaseException | None]:
        return await asyncio.gather(
            *(storage.put(f"ok/{i}", b"v") for i in range(10)),
            storage.delete("broken/leaf"),
            *(storage.put(f"ok/{i}", b"v") for i in range(10, 20)),
            return_exceptions=True,
        )

    outcomes = run(scenario())
    assert isinstance(outcomes[10], InternalError)
    assert [o for i, o in enumerate(outcomes) if i != 10] == [None] * 20
    assert len(run(storage.list("ok/"))) == 20
    assert run(storage.get("broken/leaf")) == b"v"  # the failed delete was rolled back
    run(storage.close())


def test_cancelled_writer_does_not_break_the_writer(run: Run, tmp_path: Path) -> None:
    storage = run(SQLiteStorage.open(str(tmp_path / "db")))

    async def scenario() -> None:
        task = asyncio.create_task(storage.put("c", b"v"))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await storage.put("d", b"w")

    run(scenario())
    assert run(storage.get("d")) == b"w"
    run(storage.close())


_CRASH_WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from strongroom.storage import SQLiteStorage

    async def main(path):
        storage = await SQLiteStorage.open(path)

        async def writer(lane):
            i = 0
            while True:
                key = f"crash/{lane}/{i:07d}"
                await storage.put(key, f"value-{lane}-{i}".encode())
                sys.stdout.write(key + "\\n")
                sys.stdout.flush()
                i += 1

        await asyncio.gather(*(writer(lane) for lane in range(4)))

    asyncio.run(main(sys.argv[1]))
    """
)


def test_acknowledged_writes_survive_sigkill(run: Run, tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(_CRASH_WRITER)
    path = str(tmp_path / "crash.db")
    src = str(Path(strongroom.__file__).parent.parent)
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    child = subprocess.Popen([sys.executable, str(script), path], stdout=subprocess.PIPE, env=env)
    assert child.stdout is not None
    first = child.stdout.readline()  # the first acknowledgement: the writer is up
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.communicate(timeout=1.0)  # keeps reading, so the writer never blocks on stdout
    child.send_signal(signal.SIGKILL)
    rest, _ = child.communicate(timeout=10)
    assert child.returncode == -signal.SIGKILL
    # a line cut short by the kill is not an acknowledgement
    acked = [line for line in (first + rest).decode().split("\n")[:-1] if line]
    assert len(acked) > 100, len(acked)

    storage = run(SQLiteStorage.open(path))
    for key in acked:
        _, lane, i = key.split("/")
        assert run(storage.get(key)) == f"value-{lane}-{int(i)}".encode(), key
    lanes = run(storage.list("crash/"))
    assert lanes == ["0/", "1/", "2/", "3/"]
    listed = sum(len(run(storage.list(f"crash/{lane}"))) for lane in lanes)
    assert listed >= len(acked)
    run(storage.close())
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    raw.close()
