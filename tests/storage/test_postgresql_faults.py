"""PostgreSQL faults against a real cluster of this module's own (it is stopped and started):
terminated backends, a restart, a server that is down, and a COMMIT whose answer is lost.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from strongroom.errors import StorageUnavailable
from strongroom.storage import PostgreSQLStorage
from tests.pg import PgCluster, pg_cluster_fixture
from tests.tcpproxy import TcpProxy

from .conftest import fresh_table

Run = Callable[[Awaitable[Any]], Any]


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    yield from pg_cluster_fixture()


@pytest.fixture
def up(cluster: PgCluster) -> PgCluster:
    """The cluster, running (a test before may have stopped it)."""
    if not (cluster.datadir / "postmaster.pid").exists():
        cluster.start()
    return cluster


def url(cluster: PgCluster, port: int | None = None) -> str:
    dsn = cluster.dsn(cluster.superuser, cluster.superuser_password)
    return dsn if port is None else dsn.replace(f":{cluster.port}/", f":{port}/")


async def open_on(address: str, table: str, **options: Any) -> PostgreSQLStorage:
    options.setdefault("max_idle_connections", 2)
    options.setdefault("max_parallel", 4)
    return await PostgreSQLStorage.open(address, table=table, **options)


async def eventually(call: Callable[[], Awaitable[Any]], within: float = 10.0) -> Any:
    """``call()`` once it stops raising StorageUnavailable (the server is coming back)."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await call()
        except StorageUnavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


def terminate_clients(cluster: PgCluster) -> int:
    found = cluster.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
    )
    return len(found)


def test_reads_and_writes_survive_terminated_backends(up: PgCluster, run: Run) -> None:
    async def scenario() -> None:
        storage = await open_on(url(up), fresh_table())
        try:
            await storage.put("k", b"v0")
            await asyncio.gather(*(storage.get("k") for _ in range(4)))  # fill the pool
            for i in range(5):
                assert terminate_clients(up) >= 1
                assert await storage.get("k") == b"v%d" % i
                assert terminate_clients(up) >= 1
                # nothing was sent before the failure was seen: retried, then acknowledged
                await storage.put("k", b"v%d" % (i + 1))
            assert await storage.get("k") == b"v5"
        finally:
            await storage.close()

    run(scenario())


def test_reads_wait_out_a_restart(up: PgCluster, run: Run) -> None:
    def restart() -> None:
        up.stop()
        time.sleep(0.5)
        up.start()

    async def scenario() -> None:
        storage = await open_on(url(up), fresh_table(), retry_timeout=30)
        try:
            await storage.put("k", b"before")
            thread = threading.Thread(target=restart)
            thread.start()
            reads = 0
            while thread.is_alive() or reads < 5:
                assert await storage.get("k") == b"before"
                reads += 1
                await asyncio.sleep(0.02)
            thread.join()
            await storage.put("k", b"after")
            assert await storage.get("k") == b"after"
        finally:
            await storage.close()

    run(scenario())


def test_a_down_server_is_reported_as_unavailable_then_recovered(up: PgCluster, run: Run) -> None:
    table = fresh_table()

    async def scenario() -> None:
        storage = await open_on(url(up), table, retry_timeout=0.5)
        try:
            await storage.put("k", b"v")
            up.stop()
            started = time.monotonic()
            with pytest.raises(StorageUnavailable, match="storage unavailable"):
                await storage.get("k")
            assert time.monotonic() - started < 5
            with pytest.raises(StorageUnavailable, match="storage"):
                await storage.put("k", b"lost")
            with pytest.raises(StorageUnavailable):
                await storage.list("")
            up.start()
            assert (
                await eventually(lambda: storage.get("k")) == b"v"
            )  # the refused write: not applied
            await storage.put("k", b"w")
            assert await storage.get("k") == b"w"
        finally:
            await storage.close()

    run(scenario())


def test_opening_while_the_server_is_down_is_not_an_error(up: PgCluster, run: Run) -> None:
    table = fresh_table()
    up.stop()

    async def scenario() -> None:
        storage = await open_on(url(up), table, retry_timeout=0.3)
        try:
            with pytest.raises(StorageUnavailable):
                await storage.get("k")
            await asyncio.to_thread(up.start)
            await storage.put("k", b"v")  # the schema is created at the first contact
            assert await storage.get("k") == b"v"
        finally:
            await storage.close()

    run(scenario())


@pytest.mark.parametrize("forwarded", [True, False], ids=["server-committed", "never-sent"])
def test_a_lost_commit_answer_is_never_reported_as_success(
    up: PgCluster, run: Run, forwarded: bool
) -> None:
    proxy = TcpProxy("127.0.0.1", up.port).start()
    table = fresh_table()

    async def scenario() -> None:
        storage = await open_on(url(up, proxy.port), table, max_idle_connections=1)
        try:
            await storage.put("k", b"old")
            proxy.drop_after(b"COMMIT", forward=forwarded)
            with pytest.raises(StorageUnavailable, match="outcome unknown"):
                await storage.put("k", b"new")
            assert proxy.dropped.is_set()
            # the outcome really was unknown to us: the server did or did not apply it
            expected = b"new" if forwarded else b"old"
            stored = up.query(f"SELECT value FROM {table} WHERE name = 'k'")  # noqa: S608 (test-made table names)
            assert [bytes(row[0]) for row in stored] == [expected]
            assert await storage.get("k") == expected  # and the next call works again
        finally:
            await storage.close()

    try:
        run(scenario())
    finally:
        proxy.stop()


def test_cut_connections_are_retried(up: PgCluster, run: Run) -> None:
    proxy = TcpProxy("127.0.0.1", up.port).start()

    async def scenario() -> None:
        storage = await open_on(url(up, proxy.port), fresh_table())
        try:
            await storage.put("k", b"v")
            for _ in range(5):
                proxy.cut()
                assert await storage.get("k") == b"v"
                assert await storage.list("") == ["k"]
        finally:
            await storage.close()

    try:
        run(scenario())
    finally:
        proxy.stop()
