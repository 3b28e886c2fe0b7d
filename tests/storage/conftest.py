"""Fixtures: one event loop per test (``run``) and the backends under test (``storage``).

The ``postgresql`` kind runs against one real PostgreSQL cluster per test session (started
on first use by :func:`shared_pg`), each backend on tables of its own.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from strongroom.storage import (
    CachedStorage,
    MemoryStorage,
    PhysicalStorage,
    PostgreSQLStorage,
    SQLiteStorage,
)
from tests.pg import PgCluster, PgUnavailable

KINDS = ("memory", "sqlite", "sqlite_shared", "cached", "postgresql", "postgresql_ha")

_PG: list[PgCluster] = []
_TABLES = itertools.count()


def shared_pg() -> PgCluster:
    """The session's PostgreSQL cluster, started on first use (fails, never skips)."""
    if not _PG:
        try:
            _PG.append(PgCluster().start())
        except PgUnavailable as exc:
            pytest.fail(str(exc), pytrace=False)
    return _PG[0]


def pytest_sessionfinish() -> None:
    while _PG:
        _PG.pop().destroy()


def pg_url(cluster: PgCluster | None = None) -> str:
    cluster = cluster or shared_pg()
    return cluster.dsn(cluster.superuser, cluster.superuser_password)


def fresh_table() -> str:
    """A table name no other backend in this session uses."""
    return f"kv_{os.getpid()}_{next(_TABLES)}"


async def open_pg(table: str | None = None, **options: Any) -> PostgreSQLStorage:
    options.setdefault("max_idle_connections", 1)
    options.setdefault("max_parallel", 8)
    return await PostgreSQLStorage.open(pg_url(), table=table or fresh_table(), **options)


async def open_backend(kind: str, directory: Path) -> PhysicalStorage:
    if kind == "memory":
        return MemoryStorage()
    if kind == "sqlite":
        return await SQLiteStorage.open(str(directory / "strongroom.db"))
    if kind == "sqlite_shared":  # HA / workers mode: fencing and the change feed on
        return await SQLiteStorage.open(str(directory / "strongroom.db"), shared=True)
    if kind == "cached":
        return CachedStorage(MemoryStorage(), max_entries=64)
    if kind in ("postgresql", "postgresql_ha"):
        # one table per directory, so a reopen finds the same data
        marker = directory / "pg-table"
        if marker.exists():
            table = marker.read_text()
        else:
            directory.mkdir(parents=True, exist_ok=True)
            table = fresh_table()
            marker.write_text(table)
        if kind == "postgresql":
            return await open_pg(table)
        # HA: the active node's store (fenced with its term, writes group-committed and
        # appended to the change feed)
        storage = await open_pg(table, ha_enabled=True, ha_table=table + "_locks")
        term = await storage.try_acquire("test-node", "", "", 60.0)
        assert term is not None
        storage.fence(term)
        return storage
    raise AssertionError(kind)


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as runner:
        yield runner


@pytest.fixture
def run(runner: asyncio.Runner) -> Callable[[Awaitable[Any]], Any]:
    """``run(coroutine)`` on this test's event loop (the same loop for the whole test)."""

    def run_one(awaitable: Awaitable[Any]) -> Any:
        async def wrap() -> Any:
            return await awaitable

        return runner.run(wrap())

    return run_one


@pytest.fixture(params=KINDS)
def storage(
    request: pytest.FixtureRequest, run: Callable[[Awaitable[Any]], Any], tmp_path: Path
) -> Iterator[PhysicalStorage]:
    backend: PhysicalStorage = run(open_backend(request.param, tmp_path))
    yield backend
    run(backend.close())
