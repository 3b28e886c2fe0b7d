# ruff: noqa: S608  (SQL built from table names the tests make themselves)
"""PostgreSQL storage beyond the shared contract: layout, schema, guards under races, LIST plans.

Every test runs against the session's real PostgreSQL cluster (``shared_pg``), each on
tables of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import pytest

from strongroom.errors import InternalError, InvalidRequest, StorageConflict
from strongroom.logical import StorageOp
from strongroom.storage import PostgreSQLStorage
from strongroom.storage._pgschema import SCHEMA_VERSION

from .conftest import fresh_table, open_pg, pg_url, shared_pg

Run = Callable[[Awaitable[Any]], Any]


def guard(key: str, value: bytes | None) -> StorageOp:
    return StorageOp(key, value, check=True)


def rows(text: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    return shared_pg().query(text, params)


def test_values_are_stored_as_given_and_visible_to_other_connections(run: Run) -> None:
    table = fresh_table()

    async def scenario() -> None:
        storage = await open_pg(table)
        try:
            await storage.put("a/b/c", b"\x00\xffcipher")
            await storage.put("top", b"t")
        finally:
            await storage.close()

    run(scenario())
    # acknowledged means committed: a separate session sees exactly the stored bytes
    assert sorted(rows(f"SELECT parent, name, value FROM {table}")) == [
        ("", "top", b"t"),
        ("a/b/", "c", b"\x00\xffcipher"),
    ]
    assert rows(f"SELECT version FROM {table}_schema") == [(SCHEMA_VERSION,)]


def test_schema_from_a_newer_version_is_refused(run: Run) -> None:
    table = fresh_table()
    run(_open_close(table))
    rows(f"UPDATE {table}_schema SET version = 99")
    with pytest.raises(InternalError, match="newer version"):
        run(open_pg(table))


def test_a_version_1_schema_is_migrated(run: Run) -> None:
    table = fresh_table()
    rows(  # what version 1 created: no term on the feed row
        f'CREATE TABLE {table} (parent TEXT COLLATE "C" NOT NULL,'
        f' name TEXT COLLATE "C" NOT NULL, value BYTEA NOT NULL, PRIMARY KEY (parent, name))'
    )
    rows(f"CREATE TABLE {table}_schema (id BOOLEAN PRIMARY KEY, version INTEGER NOT NULL)")
    rows(f"INSERT INTO {table}_schema VALUES (TRUE, 1)")
    rows(
        f"CREATE TABLE {table}_feed (id BOOLEAN PRIMARY KEY, last_idx BIGINT NOT NULL,"
        " trimmed_to BIGINT NOT NULL)"
    )
    rows(f"INSERT INTO {table}_feed VALUES (TRUE, 7, 0)")
    rows(f"INSERT INTO {table} VALUES ('a/', 'b', 'kept')")

    async def scenario() -> None:
        storage = await open_pg(table, ha_enabled=True, ha_table=f"{table}_locks")
        try:
            assert await storage.get("a/b") == b"kept"
            term = await storage.try_acquire("n", "", "", 5)
            assert term == 1
            storage.fence(term)
            await storage.put("a/c", b"new")
            assert await storage.current_index() == 8
        finally:
            await storage.close()

    run(scenario())
    assert rows(f"SELECT version FROM {table}_schema") == [(SCHEMA_VERSION,)]
    assert rows(f"SELECT term FROM {table}_feed") == [(1,)]


def test_skip_create_table_needs_the_tables(run: Run) -> None:
    table = fresh_table()
    with pytest.raises(InternalError, match="skip_create_table"):
        run(open_pg(table, skip_create_table=True))
    run(_open_close(table))  # created by a normal open: now the skipping open works

    async def scenario() -> None:
        storage = await open_pg(table, skip_create_table=True)
        try:
            await storage.put("k", b"v")
            assert await storage.get("k") == b"v"
        finally:
            await storage.close()

    run(scenario())


def test_an_unprivileged_role_without_create_is_told_what_to_do(run: Run) -> None:
    cluster = shared_pg()
    role = f"nocreate_{fresh_table()}"
    rows(f"CREATE ROLE {role} LOGIN PASSWORD 'pw-{role}'")
    rows(f"REVOKE CREATE ON SCHEMA public FROM {role}")
    rows("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    url = cluster.dsn(role, f"pw-{role}")
    with pytest.raises(InternalError, match="permission denied"):
        run(PostgreSQLStorage.open(url, table=fresh_table()))


@pytest.mark.parametrize("bad", ["", "1abc", "a;drop", "a.b.c", "x" * 60])
def test_bad_table_names_are_refused(bad: str) -> None:
    with pytest.raises(InvalidRequest):
        PostgreSQLStorage(pg_url(), table=bad)


def test_schema_qualified_table(run: Run) -> None:
    schema = f"s_{fresh_table()}"
    rows(f"CREATE SCHEMA {schema}")

    async def scenario() -> None:
        storage = await open_pg(f"{schema}.kv")
        try:
            await storage.put("x/y", b"1")
            assert await storage.list("x/") == ["y"]
        finally:
            await storage.close()

    run(scenario())
    assert rows(f"SELECT name FROM {schema}.kv") == [("y",)]


async def _open_close(table: str) -> None:
    storage = await open_pg(table)
    await storage.close()


# -- guards ---------------------------------------------------------------------------------------


def test_guard_failure_rolls_back_every_op(run: Run) -> None:
    async def scenario() -> None:
        storage = await open_pg()
        try:
            await storage.put("g/k", b"one")
            with pytest.raises(StorageConflict):
                await storage.transaction(
                    [guard("g/k", b"other"), StorageOp("g/k", b"two"), StorageOp("g/new", b"n")]
                )
            assert await storage.get("g/k") == b"one"
            assert await storage.get("g/new") is None
            await storage.transaction([guard("g/k", b"one"), StorageOp("g/k", b"two")])
            assert await storage.get("g/k") == b"two"
            with pytest.raises(StorageConflict):  # one key, two different expectations
                await storage.transaction([guard("g/k", b"two"), guard("g/k", None)])
        finally:
            await storage.close()

    run(scenario())


@pytest.mark.parametrize("round_", range(10))
def test_concurrent_compare_and_swap_loses_no_increment(run: Run, round_: int) -> None:
    """Many tasks on separate connections increment one counter with guarded swaps; every
    acknowledged swap must be counted exactly once."""

    async def scenario() -> None:
        storage = await open_pg(max_parallel=8)
        other = await open_pg(storage.table, max_parallel=8)  # a second "process"
        try:
            await storage.put("counter", b"0")
            acknowledged = 0

            async def increment(backend: PostgreSQLStorage) -> None:
                nonlocal acknowledged
                while True:
                    current = await backend.get("counter")
                    assert current is not None
                    nxt = str(int(current) + 1).encode()
                    try:
                        await backend.transaction(
                            [guard("counter", current), StorageOp("counter", nxt)]
                        )
                    except StorageConflict:
                        continue
                    acknowledged += 1
                    return

            await asyncio.gather(*(increment(storage if i % 2 else other) for i in range(16)))
            assert acknowledged == 16
            assert await storage.get("counter") == b"16"
        finally:
            await storage.close()
            await other.close()

    run(scenario())


@pytest.mark.parametrize("round_", range(10))
def test_racing_creators_exactly_one_wins(run: Run, round_: int) -> None:
    async def scenario() -> None:
        storage = await open_pg(max_parallel=12)
        try:

            async def create(i: int) -> bool:
                try:
                    await storage.transaction([guard("once", None), StorageOp("once", b"%d" % i)])
                except StorageConflict:
                    return False
                return True

            results = await asyncio.gather(*(create(i) for i in range(12)))
            assert results.count(True) == 1
            winner = results.index(True)
            assert await storage.get("once") == b"%d" % winner
        finally:
            await storage.close()

    run(scenario())


def test_overlapping_multi_key_transactions_do_not_deadlock(run: Run) -> None:
    async def scenario() -> None:
        storage = await open_pg(max_parallel=8)
        try:
            keys = [f"d/{i}" for i in range(20)]

            async def write(i: int) -> None:
                order = keys if i % 2 else list(reversed(keys))
                await storage.transaction([StorageOp(k, b"%d" % i) for k in order])

            await asyncio.gather(*(write(i) for i in range(16)))
            values = {await storage.get(k) for k in keys}
            assert len(values) == 1  # each transaction is all-or-nothing and serial per key
        finally:
            await storage.close()

    run(scenario())


# -- LIST is an index range scan ------------------------------------------------------------------


def test_list_plan_uses_only_index_scans(run: Run) -> None:
    table = fresh_table()

    async def fill() -> PostgreSQLStorage:
        storage = await open_pg(table)
        ops = [StorageOp(f"logical/m{i % 40:02d}/k/{i:05d}", b"v" * 64) for i in range(20_000)]
        await storage.transaction(ops)
        await storage.transaction([StorageOp(f"sys/token/id/{i}", b"v") for i in range(50)])
        return storage

    storage = run(fill())
    try:
        rows(f"ANALYZE {table}")
        with psycopg.connect(shared_pg().admin_conninfo()) as conn:
            for prefix in ("", "logical/", "logical/m07/k/", "sys/token/"):
                if prefix:
                    statement = storage.sql.list_folder
                    params: dict[str, Any] = {
                        "p": prefix,
                        "n": len(prefix),
                        "hi": prefix[:-1] + "0",
                    }
                else:
                    statement, params = storage.sql.list_root, {}
                explain = psycopg.sql.SQL("EXPLAIN (COSTS OFF) ") + statement
                plan = "\n".join(
                    str(r[0]) for r in conn.execute(explain, params or None).fetchall()
                )
                assert "Seq Scan" not in plan, plan
                assert "Index" in plan, plan
        assert run(storage.list("")) == ["logical/", "sys/"]
        assert run(storage.list("logical/")) == [f"m{i:02d}/" for i in range(40)]
        assert len(run(storage.list("logical/m07/k/"))) == 500
    finally:
        run(storage.close())


def test_list_with_awkward_segments(run: Run) -> None:
    async def scenario() -> None:
        storage = await open_pg()
        try:
            keys = ["a//c", "a/!/x", "a/ /y", "a/0/z", "a/-", "a/é/q", "a/\U0010ffff/w", "a"]
            await storage.transaction([StorageOp(k, b"v") for k in keys])
            assert await storage.list("a/") == sorted(
                ["/", "!/", " /", "0/", "-", "é/", "\U0010ffff/"]
            )
            assert await storage.list("") == ["a", "a/"]
            assert await storage.list("a/é/") == ["q"]
        finally:
            await storage.close()

    run(scenario())
