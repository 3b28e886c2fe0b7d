"""Whole-store copies: entries, digests and `operator migrate` between real backends."""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from strongroom.logical import StorageOp
from strongroom.server.config import StorageConfig
from strongroom.server.migrate import MigrationError, migrate
from strongroom.storage import MemoryStorage, SQLiteStorage
from strongroom.storage.bulk import MIGRATION_LOCK, digest, digest_of, entries, replace_all

from .conftest import fresh_table, open_pg, pg_url

Run = Callable[[Awaitable[Any]], Any]

SAMPLE = {
    "core/seal-config": b"plain-config",
    "core/keyring": b"\x00\x01",
    "logical/abc/data/a": b"x" * 300,
    "logical/abc/data/a/b": b"nested",
    "c/": b"folder-named-leaf",
    "é/日本": bytes(range(256)),
    "empty": b"",
}


def pg_config(table: str) -> StorageConfig:
    return StorageConfig("postgresql", {"connection_url": pg_url(), "table": table})


def sqlite_config(path: Path) -> StorageConfig:
    return StorageConfig("sqlite", {"path": str(path)})


async def fill(storage: Any, pairs: dict[str, bytes] = SAMPLE) -> None:
    await storage.transaction([StorageOp(k, v) for k, v in pairs.items()])


def test_every_backend_iterates_and_digests_alike(run: Run, tmp_path: Path) -> None:
    async def scenario() -> None:
        memory = MemoryStorage()
        sqlite = await SQLiteStorage.open(str(tmp_path / "s.db"))
        pg = await open_pg()
        try:
            expected = digest_of(SAMPLE.items())
            for backend in (memory, sqlite, pg):
                await fill(backend)
                assert dict([pair async for pair in entries(backend)]) == SAMPLE
                assert await digest(backend) == expected
            await pg.put("core/keyring", b"\x00\x02")  # one byte differs: another digest
            assert await digest(pg) != expected
            assert (await digest(pg)).count == len(SAMPLE)
        finally:
            await sqlite.close()
            await pg.close()

    run(scenario())


def test_replace_all_leaves_exactly_the_given_pairs(run: Run) -> None:
    async def scenario() -> None:
        pg = await open_pg()
        try:
            await fill(pg)
            await pg.put("keep/me", b"k")
            wanted = {"new/a": b"1", "core/keyring": b"other"}
            await replace_all(pg, wanted.items(), keep=frozenset({"keep/me"}))
            assert dict([p async for p in entries(pg)]) == {**wanted, "keep/me": b"k"}
            assert await pg.list("") == ["core/", "keep/", "new/"]
        finally:
            await pg.close()

    run(scenario())


def test_migrate_sqlite_to_postgresql_and_back(run: Run, tmp_path: Path) -> None:
    table = fresh_table()

    async def scenario() -> None:
        source = await SQLiteStorage.open(str(tmp_path / "src.db"))
        await fill(source)
        await fill(source, {f"logical/m/{i:04d}": b"v%d" % i for i in range(1200)})
        want = await digest(source)
        await source.close()
        out = io.StringIO()
        count = await migrate(sqlite_config(tmp_path / "src.db"), pg_config(table), out=out)
        assert count == want.count == len(SAMPLE) + 1200
        assert "Success!" in out.getvalue() and want.sha256 in out.getvalue()
        back = tmp_path / "back.db"
        await migrate(pg_config(table), sqlite_config(back), out=io.StringIO())
        copy = await SQLiteStorage.open(str(back))
        try:
            assert await digest(copy) == want
            assert await copy.get(MIGRATION_LOCK) is None  # the lock never travels
        finally:
            await copy.close()
        source = await SQLiteStorage.open(str(tmp_path / "src.db"))
        try:
            assert await source.get(MIGRATION_LOCK) is None  # and is gone from the source
        finally:
            await source.close()

    run(scenario())


def test_migrate_refusals(run: Run, tmp_path: Path) -> None:
    table = fresh_table()

    async def scenario() -> None:
        src = sqlite_config(tmp_path / "src.db")
        source = await SQLiteStorage.open(str(tmp_path / "src.db"))
        await fill(source)
        await source.close()
        with pytest.raises(MigrationError, match="same store"):
            await migrate(src, sqlite_config(tmp_path / "src.db"))
        # an initialized destination is refused (unless resuming with -start)
        destination = await open_pg(table)
        await destination.put("core/seal-config", b"someone else's")
        await destination.put("junk", b"left over")
        await destination.close()
        with pytest.raises(MigrationError, match="already initialized"):
            await migrate(src, pg_config(table), out=io.StringIO())
        # resuming into a destination holding extra keys does not verify: an error, not success
        with pytest.raises(MigrationError, match="verification failed"):
            await migrate(src, pg_config(table), start="c", out=io.StringIO())
        # a migration in progress (its lock on the source) is refused; -reset removes it
        source = await SQLiteStorage.open(str(tmp_path / "src.db"))
        await source.put(MIGRATION_LOCK, b"{}")
        await source.close()
        with pytest.raises(MigrationError, match="in progress"):
            await migrate(src, pg_config(fresh_table()), out=io.StringIO())
        out = io.StringIO()
        await migrate(src, pg_config(fresh_table()), reset=True, out=out)
        assert "lock removed" in out.getvalue()
        assert await migrate(src, pg_config(fresh_table()), out=io.StringIO()) == len(SAMPLE)

    run(scenario())


def test_postgresql_items_is_one_snapshot(run: Run) -> None:
    async def scenario() -> None:
        pg = await open_pg()
        try:
            await fill(pg, {f"k/{i:04d}": b"old" for i in range(3000)})
            seen: dict[str, bytes] = {}
            async for key, value in pg.items(batch=100):
                if not seen:  # rewrite everything once the walk has begun
                    await fill(pg, {f"k/{i:04d}": b"new" for i in range(3000)})
                seen[key] = value
            assert set(seen.values()) == {b"old"} and len(seen) == 3000
        finally:
            await pg.close()

    run(scenario())
