"""``storage "postgresql"``: the physical backend for several nodes on one database.

What it trusts: PostgreSQL for durability and isolation (a write returns only after its
COMMIT returned), and nothing else: values arrive barrier-encrypted and leave as they came.
It never logs a value, a key's contents or the connection URL (which holds a password).

Reads and writes go through a :mod:`psycopg_pool` pool of autocommit connections
(``max_parallel`` connections at most, ``max_idle_connections`` kept open). Layout and SQL
are in :mod:`strongroom.storage._pgschema`; the schema is created and migrated at the first
successful connection unless ``skip_create_table`` is set (then the operator creates it).

Faults. A read that fails because the server restarted, a connection dropped or a backend
was terminated is retried with exponential backoff (50 ms doubling to 1 s) until
``retry_timeout`` has passed, then raises :class:`~strongroom.errors.StorageUnavailable`
(503, naming storage). A write runs in two round trips: first ``BEGIN`` and every statement
(pipelined), whose failure is known to have written nothing and is retried like a read; then
``COMMIT`` alone. If the COMMIT's answer is lost, the write's outcome is unknown: it is
reported as ``StorageUnavailable("storage write outcome unknown …")``, never as success, and
not retried blindly. An unreachable server at start is not an error: :meth:`open` returns,
and every call tries again.

Guards (``StorageOp(check=True)``) lock the row (``SELECT … FOR UPDATE``) and compare the
stored bytes inside the write's transaction; a guard that the key is absent makes any put of
that key in the transaction insert-only, so two racing creators cannot both win. Any failed
guard rolls the whole transaction back and raises
:class:`~strongroom.errors.StorageConflict`. Keys are written in sorted order, so two
transactions over the same keys cannot deadlock.

High availability (``ha_enabled``): this class is also the
:class:`~strongroom.storage.ha.HABackend` and :class:`~strongroom.storage.ha.ChangeFeed` of
:mod:`strongroom.storage.ha`. The lock is one row of ``ha_table`` (its term grows at every
acquisition, expiry judged by the database's clock). Every write transaction ends by
updating the feed row (``<table>_feed``): ``last_idx + 1 WHERE term = <our term>``, then
appends ``(idx, keys)`` to ``<table>_changes`` and ``pg_notify``s; the row stays locked until
COMMIT, so indexes become visible in order. Taking the lock writes the new term onto that
row too, which waits for the writes in flight; a write that comes after re-checks the term
on the new row version and fails with :class:`~strongroom.errors.Fenced`. Because the feed
row is held through each COMMIT, concurrent writes of the active are group-committed (one
transaction, a savepoint per write, one feed append and one flush): see :meth:`_write`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
import psycopg.errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from strongroom.errors import (
    Fenced,
    InternalError,
    InvalidRequest,
    StorageConflict,
    StorageUnavailable,
)
from strongroom.logical import StorageOp
from strongroom.storage._pgschema import SCHEMA_VERSION, Statements, check_table_name
from strongroom.storage.ha import ChangeBatch, FeedGap, LockHolder
from strongroom.storage.memory import check_key, check_prefix, split_key, to_bytes

__all__ = ["DEFAULT_HA_TABLE", "DEFAULT_TABLE", "PostgreSQLStorage", "check_table_name"]

log = logging.getLogger("strongroom.storage.postgresql")

DEFAULT_TABLE = "vault_kv_store"
DEFAULT_HA_TABLE = "vault_ha_locks"
DEFAULT_MAX_PARALLEL = 128
DEFAULT_MAX_IDLE = 2
DEFAULT_RETRY_TIMEOUT = 5.0
_CONNECTION_WAIT = 1.5
FEED_KEEP = 50_000
"""Changes kept in the feed; a reader further behind gets :class:`FeedGap`."""
_TRIM_EVERY = 1024

_T = TypeVar("_T")
_Conn = psycopg.AsyncConnection[TupleRow]

# Errors after which nothing was committed and trying again may succeed: the connection or
# the server went away, or the server rolled the transaction back (deadlock, serialization,
# a read-only replica during a failover, too many connections).
_RETRYABLE_STATES = frozenset({"40001", "40P01", "25006", "53300", "57P01", "57P02", "57P03"})


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, PoolTimeout | psycopg.OperationalError | psycopg.InterfaceError):
        return True
    if isinstance(exc, psycopg.Error):
        state = exc.sqlstate or ""
        return state in _RETRYABLE_STATES or state.startswith("08")
    return False


@dataclass(frozen=True, slots=True)
class _Put:
    parent: str
    name: str
    value: bytes | None  # None: delete
    insert_only: bool = False


_Writes = list[_Put]
_Checks = list[tuple[str, str, bytes | None]]  # parent, name, expected value
_Keys = list[str]

_GROUP = 32  # most writes committed together (each its own savepoint: a subtransaction)


@dataclass(slots=True)
class _Queued:
    """A write waiting for the group committer (HA: see :meth:`PostgreSQLStorage._write`)."""

    writes: _Writes
    checks: _Checks
    keys: _Keys
    term: int | None  # the fencing term when the write was asked for: it commits under it
    done: asyncio.Future[None]


_Group = list[_Queued]
_Outcomes = list[BaseException | None]
_Cursor = psycopg.AsyncCursor[TupleRow]
_Guards = list[tuple[_Cursor, bytes | None]]  # a guard's SELECT … FOR UPDATE, expected value
_Creates = list[_Cursor]  # an insert-only write's INSERT … ON CONFLICT DO NOTHING


class PostgreSQLStorage:
    """A :class:`~strongroom.logical.Storage` on one PostgreSQL table; build it with
    :meth:`open`."""

    def __init__(
        self,
        connection_url: str,
        *,
        table: str = DEFAULT_TABLE,
        ha_table: str = DEFAULT_HA_TABLE,
        ha_enabled: bool = False,
        max_parallel: int = DEFAULT_MAX_PARALLEL,
        max_idle_connections: int = DEFAULT_MAX_IDLE,
        skip_create_table: bool = False,
        retry_timeout: float = DEFAULT_RETRY_TIMEOUT,
    ) -> None:
        """Prefer :meth:`open`. Raises :class:`InvalidRequest` for unusable settings."""
        if not connection_url:
            raise InvalidRequest('storage "postgresql": connection_url is required')
        check_table_name(table, 'storage "postgresql": table')
        check_table_name(ha_table, 'storage "postgresql": ha_table')
        if max_parallel < 1:
            raise InvalidRequest('storage "postgresql": max_parallel must be at least 1')
        if max_idle_connections < 0:
            raise InvalidRequest('storage "postgresql": max_idle_connections must not be negative')
        if retry_timeout < 0:
            raise InvalidRequest('storage "postgresql": retry_timeout must not be negative')
        self.table = table
        self.ha_table = ha_table
        self.ha_enabled = ha_enabled
        self.sql = Statements.build(table, ha_table)
        self._skip_create = skip_create_table
        self._retry_timeout = retry_timeout
        self._url = connection_url
        self._pool: AsyncConnectionPool[_Conn] = AsyncConnectionPool(
            connection_url,
            min_size=min(max_idle_connections, max_parallel),
            max_size=max_parallel,
            kwargs=_connection_kwargs(connection_url),
            open=False,
            timeout=max(retry_timeout, 0.1),
            # the pool's own reconnection backs off without bound (1 s, 2 s, 4 s … for
            # reconnect_timeout): give up fast instead, and let demand start a fresh attempt,
            # so service resumes within about a second of the server coming back
            reconnect_timeout=1.0,
            name=f"strongroom-{table}",
        )
        self._ready = False
        self._checking: asyncio.Task[None] | None = None
        self._ready_lock = asyncio.Lock()
        self._closed = False
        # set by the HA layer (strongroom.storage.pgha): the fencing term, and whether every
        # write appends to the change feed
        self._fenced = False
        self._term: int | None = None
        self._feed = ha_enabled
        self.feed_keep = FEED_KEEP
        self._listener: asyncio.Task[None] | None = None
        self._listening = False
        self._wakeups = 0
        self._wakeup = asyncio.Event()
        self._background: set[asyncio.Task[None]] = set()
        self.commits = 0
        # HA group commit: writes waiting, and the task committing them
        self._queue: list[_Queued] = []
        self._committer: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, connection_url: str, **options: Any) -> PostgreSQLStorage:
        """Open the pool and, if the server answers, create or migrate the schema.

        An unreachable server is not an error here (the server must start and retry): the
        schema step is tried again by the first call that reaches the database.

        Raises:
            InvalidRequest: unusable settings.
            InternalError: the server answered but the schema cannot be used (written by a
                newer version, missing with ``skip_create_table``, not UTF-8, no permission).
        """
        storage = cls(connection_url, **options)
        await storage._pool.open(wait=False)
        try:
            await storage._ensure_ready()
        except StorageUnavailable:
            log.warning("PostgreSQL storage is unreachable; will keep trying")
        except BaseException:
            await storage.close()
            raise
        return storage

    def __repr__(self) -> str:
        return f"PostgreSQLStorage(table={self.table!r}, closed={self._closed})"

    # -- the Storage protocol -----------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        check_key(key)
        parent, name = split_key(key)

        async def read(conn: _Conn) -> bytes | None:
            cur = await conn.execute(self.sql.get, (parent, name))
            row = await cur.fetchone()
            return None if row is None else bytes(row[0])

        return await self._with_retry(read)

    async def list(self, prefix: str) -> list[str]:
        check_prefix(prefix)
        if prefix:
            args: dict[str, Any] = {"p": prefix, "n": len(prefix), "hi": prefix[:-1] + "0"}
            statement = self.sql.list_folder
        else:
            args, statement = {}, self.sql.list_root

        async def read(conn: _Conn) -> list[str]:
            cur = await conn.execute(statement, args or None)
            return [str(row[0]) for row in await cur.fetchall()]

        return sorted(await self._with_retry(read))

    async def put(self, key: str, value: bytes) -> None:
        await self.transaction([StorageOp(key, to_bytes(value))])

    async def delete(self, key: str) -> None:
        await self.transaction([StorageOp(key)])

    async def transaction(self, ops: Sequence[StorageOp]) -> None:
        guards: dict[str, bytes | None] = {}
        final: dict[str, bytes | None] = {}
        for op in ops:  # validate everything first: a bad op leaves storage untouched
            check_key(op.key)
            value = None if op.value is None else to_bytes(op.value)
            if op.check:
                if op.key in guards and guards[op.key] != value:
                    raise StorageConflict("storage guard failed: the value changed")
                guards[op.key] = value
            else:
                final[op.key] = value  # a later op on the same key wins
        if not final and not guards:
            return
        if self._fenced and self._term is None:
            raise Fenced("this node is not the active node: storage writes are fenced")
        writes = [
            _Put(*split_key(key), value, key in guards and guards[key] is None)
            for key, value in sorted(final.items())
        ]
        checks = [(*split_key(key), value) for key, value in sorted(guards.items())]
        await self._write(writes, checks, sorted(final))

    async def close(self) -> None:
        """Close every connection. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(BaseException):
                await self._listener
        for task in list(self._background):
            with contextlib.suppress(BaseException):
                await task
        if self._checking is not None:
            with contextlib.suppress(BaseException):
                await self._checking
        await self._pool.close()

    # -- HABackend (the leader lock and fencing) ------------------------------------------------

    async def try_acquire(
        self, node_id: str, api_addr: str, cluster_addr: str, ttl: float
    ) -> int | None:
        """Take the lock if it is free, lapsed (by the database's clock) or was ours (a
        restarted process reusing its node ID still gets a new term)."""
        args = {"node": node_id, "api": api_addr, "cluster": cluster_addr, "ttl": ttl}

        async def take(conn: _Conn) -> int | None:
            cur = await conn.execute(self.sql.acquire, args)
            row = await cur.fetchone()
            return None if row is None else int(row[0])

        return await self._with_retry(take, budget=self._lock_budget(ttl))

    async def renew(self, node_id: str, term: int, ttl: float) -> bool:
        async def extend(conn: _Conn) -> bool:
            cur = await conn.execute(self.sql.renew, (ttl, node_id, term))
            return cur.rowcount == 1

        return await self._with_retry(extend, budget=self._lock_budget(ttl))

    async def release(self, node_id: str, term: int) -> None:
        async def give_up(conn: _Conn) -> None:
            await conn.execute(self.sql.release, (node_id, term))

        await self._with_retry(give_up, budget=self._lock_budget(None))

    async def holder(self) -> LockHolder | None:
        async def read(conn: _Conn) -> LockHolder | None:
            cur = await conn.execute(self.sql.holder)
            row = await cur.fetchone()
            if row is None:
                return None
            return LockHolder(str(row[0]), str(row[1]), str(row[2]), int(row[3]), float(row[4]))

        return await self._with_retry(read, budget=self._lock_budget(None))

    def fence(self, term: int | None) -> None:
        """Every later write checks ``term`` in its own transaction; ``None`` refuses every
        write. With the change feed on (HA), the check is part of the feed row's UPDATE
        (``… WHERE term = %(term)s``): a taker writes its new term onto that row, waiting
        for every write in flight (each holds the row until COMMIT), and a write that gets
        the row after the taker re-checks the term on the new row version and is refused.
        Without the feed, the check is ``SELECT term … FOR SHARE`` on the lock row."""
        self._fenced = True
        self._term = term

    def _lock_budget(self, ttl: float | None) -> float:
        # a lock call must answer well within a TTL: the caller decides what a failure means
        bound = 1.0 if ttl is None else max(ttl / 3, 0.1)
        return min(self._retry_timeout, bound)

    # -- ChangeFeed -------------------------------------------------------------------------------

    async def current_index(self) -> int:
        async def read(conn: _Conn) -> int:
            cur = await conn.execute(self.sql.current_index)
            row = await cur.fetchone()
            return int(row[0]) if row else 0

        return await self._with_retry(read)

    async def changes_since(self, index: int, limit: int = 10_000) -> ChangeBatch:
        async def read(conn: _Conn) -> ChangeBatch:
            async with conn.transaction():
                await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                cur = await conn.execute(self.sql.feed_state)
                row = await cur.fetchone()
                last, trimmed = (int(row[0]), int(row[1])) if row else (0, 0)
                if index > last or index < trimmed:  # restored to an older store, or trimmed
                    raise FeedGap(last)
                if index == last:
                    return ChangeBatch(index=index, keys=())
                cur = await conn.execute(self.sql.changes_since, (index, max(limit, 1)))
                rows = await cur.fetchall()
            if not rows or int(rows[0][0]) != index + 1:
                raise FeedGap(last)
            keys: dict[str, None] = {}
            for _idx, changed in rows:
                for key in changed:
                    keys[str(key)] = None
            return ChangeBatch(index=int(rows[-1][0]), keys=tuple(keys))

        return await self._with_retry(read)

    async def wait(self, index: int, timeout: float) -> None:
        """Return once the feed is past ``index`` or after ``timeout``: woken by NOTIFY on a
        dedicated LISTEN connection (polling every 100 ms while that connection is down)."""
        deadline = time.monotonic() + max(timeout, 0.0)
        self._start_listening()
        while True:
            woken = self._wakeups
            if await self.current_index() > index:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                return
            step = left if self._listening else min(left, 0.1)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(step):
                    while self._wakeups == woken:
                        await self._wakeup.wait()

    async def trim_feed(self, upto: int) -> None:
        """Forget the changes with index ``<= upto`` (readers behind it get a FeedGap)."""

        async def trim(conn: _Conn) -> None:
            async with conn.transaction():
                await conn.execute(self.sql.set_trimmed, (upto,))
                await conn.execute(self.sql.trim, (upto,))

        await self._with_retry(trim)

    def _trim_later(self, upto: int) -> None:
        task = asyncio.get_running_loop().create_task(self.trim_feed(upto))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        task.add_done_callback(_swallow)

    def _start_listening(self) -> None:
        if self._listener is None and not self._closed:
            self._listener = asyncio.get_running_loop().create_task(self._listen())

    async def _listen(self) -> None:
        delay = 0.1
        while not self._closed:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self._url, **_connection_kwargs(self._url)
                )
            except psycopg.Error:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            try:
                await conn.execute(self.sql.listen)
                self._listening = True
                delay = 0.1
                self._wake()  # anything committed before LISTEN: let waiters look again
                async for _notify in conn.notifies():
                    self._wake()
            except psycopg.Error:
                pass
            finally:
                self._listening = False
                self._wake()
                with contextlib.suppress(psycopg.Error):
                    await conn.close()

    def _wake(self) -> None:
        self._wakeups += 1
        event, self._wakeup = self._wakeup, asyncio.Event()
        event.set()

    # -- bulk access for snapshots and migration ---------------------------------------------

    async def count(self) -> int:
        async def read(conn: _Conn) -> int:
            cur = await conn.execute(self.sql.count)
            row = await cur.fetchone()
            return int(row[0]) if row else 0

        return await self._with_retry(read)

    async def items(self, batch: int = 1000) -> AsyncIterator[tuple[str, bytes]]:
        """Every (key, value), in key order, from one consistent snapshot of the table."""
        await self._ensure_ready()
        try:
            async with self._pool.connection() as conn, conn.transaction():
                await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                async with conn.cursor(name="strongroom_dump") as cur:
                    cur.itersize = batch
                    await cur.execute(self.sql.dump)
                    async for parent, name, value in cur:
                        yield str(parent) + str(name), bytes(value)
        except Exception as exc:
            if _transient(exc):
                raise StorageUnavailable("storage unavailable: PostgreSQL read failed") from exc
            raise

    # -- internals -----------------------------------------------------------------------------

    async def _ensure_ready(self) -> None:
        if self._ready:
            return
        async with self._ready_lock:
            if self._ready:
                return
            await self._with_retry(self._migrate, ready=False)
            self._ready = True

    async def _migrate(self, conn: _Conn) -> None:
        cur = await conn.execute("SELECT current_setting('server_encoding')")
        row = await cur.fetchone()
        if row is None or str(row[0]).upper() not in ("UTF8", "UTF-8"):
            raise InternalError("PostgreSQL storage needs a UTF8 database")
        if self._skip_create:
            try:
                cur = await conn.execute(self.sql.version)
            except psycopg.errors.UndefinedTable:
                raise InternalError(
                    "PostgreSQL storage tables are missing and skip_create_table is set"
                ) from None
            row = await cur.fetchone()
            self._check_version(row[0] if row else 0)
            return
        try:
            async with conn.transaction():
                # one node migrates at a time; the others wait and find it done
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                    ("strongroom-schema:" + self.table,),
                )
                for statement in self.sql.create:
                    await conn.execute(statement)
                cur = await conn.execute(self.sql.version)
                row = await cur.fetchone()
                version = int(row[0]) if row else 0
                self._check_version(version)
                if version < SCHEMA_VERSION:
                    await conn.execute(self.sql.set_version, (SCHEMA_VERSION,))
        except psycopg.errors.InsufficientPrivilege:
            raise InternalError(
                "PostgreSQL storage cannot create its tables (permission denied); create them"
                " and set skip_create_table, or grant CREATE"
            ) from None

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise InternalError("PostgreSQL storage was written by a newer version")

    async def _with_retry(
        self,
        call: Callable[[_Conn], Awaitable[_T]],
        ready: bool = True,
        budget: float | None = None,
    ) -> _T:
        """Run ``call`` on a pooled connection; retry transient failures with backoff for
        ``budget`` seconds (default ``retry_timeout``)."""
        if self._closed:
            raise InternalError("storage is closed")
        deadline = time.monotonic() + (self._retry_timeout if budget is None else budget)
        delay = 0.05
        while True:
            try:
                if ready and not self._ready:
                    await self._ensure_ready()
                # a short wait per attempt: when the pool's own reconnection gives up, only a
                # new request for a connection starts another, so never wait on it for long
                wait = min(max(deadline - time.monotonic(), 0.05), _CONNECTION_WAIT)
                async with self._pool.connection(timeout=wait) as conn:
                    return await call(conn)
            except StorageUnavailable:
                raise
            except Exception as exc:
                if not _transient(exc):
                    raise
                if time.monotonic() + delay > deadline:
                    log.warning("PostgreSQL storage unavailable: %s", _describe(exc))
                    raise StorageUnavailable(
                        "storage unavailable: cannot reach the PostgreSQL backend"
                    ) from exc
                # a restart or a cut breaks every pooled connection at once: weed out the
                # dead ones now rather than meet them one retry at a time
                self._check_pool()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    def _check_pool(self) -> None:
        """Ping the idle pooled connections in the background, discarding dead ones (never
        cancelled midway: the pool holds them aside while it checks)."""
        if self._checking is not None and not self._checking.done():
            return
        task = asyncio.get_running_loop().create_task(self._pool.check())
        task.add_done_callback(_swallow)
        self._checking = task

    async def _write(self, writes: _Writes, checks: _Checks, keys: _Keys) -> None:
        """Commit one write. With the change feed on (HA), every write holds the feed row
        from its feed append until its COMMIT returned (so indexes become visible in order,
        and a taker's term waits for it: the fence), which would serialise the writes of
        the active one WAL flush each; so concurrent writes are **group-committed**: one
        task commits whatever is queued in one transaction, each write in its own
        savepoint (a failed guard rolls back that write alone), with one feed append for
        all of them, one fence check and one flush. Every write of a group gets the
        group's outcome: committed, ``Fenced``, or ``StorageUnavailable`` (outcome unknown)."""
        if not self._feed:
            term = self._term
            await self._with_retry(lambda conn: self._commit(conn, writes, checks, keys, term))
            return
        loop = asyncio.get_running_loop()
        queued = _Queued(writes, checks, keys, self._term, loop.create_future())
        self._queue.append(queued)
        if self._committer is None:
            self._committer = loop.create_task(self._commit_queued())
        await queued.done

    async def _commit_queued(self) -> None:
        group: _Group = []
        try:
            while self._queue:
                group = [q for q in self._queue[:_GROUP] if not q.done.done()]
                del self._queue[:_GROUP]
                outcomes = await self._commit_outcomes(group)
                for queued, outcome in zip(group, outcomes, strict=True):
                    if queued.done.done():  # the writer was cancelled meanwhile
                        continue
                    if outcome is None:
                        queued.done.set_result(None)
                    else:
                        queued.done.set_exception(outcome)
        finally:
            self._committer = None
            for queued in [*group, *self._queue]:  # cancelled: fail these, never hang them
                if not queued.done.done():
                    queued.done.set_exception(StorageUnavailable("storage is closing"))
            self._queue.clear()

    async def _commit_outcomes(self, group: _Group) -> _Outcomes:
        """Commit ``group``; each write's outcome (``None``: committed). A write asked for
        under another term than the current one (the node stepped down, or took the lock
        again, meanwhile) is refused: it may rest on what this node read as the old term's
        holder, and commits only under the term it was asked for."""
        term = self._term
        if self._fenced:
            stale = [q for q in group if q.term is None or q.term != term]
            for queued in stale:
                if not queued.done.done():
                    queued.done.set_exception(
                        Fenced("this node's leadership term is no longer current: write refused")
                    )
            group[:] = [q for q in group if q not in stale]
        if not group:
            return []
        try:
            if len(group) == 1:
                one = group[0]
                await self._with_retry(
                    lambda conn: self._commit(conn, one.writes, one.checks, one.keys, term)
                )
                return [None]
            return await self._with_retry(lambda conn: self._commit_group(conn, group, term))
        except Exception as exc:
            return [exc] * len(group)

    async def _commit(
        self, conn: _Conn, writes: _Writes, checks: _Checks, keys: _Keys, term: int | None
    ) -> None:
        """One write in one transaction (BEGIN and every statement pipelined, then COMMIT)."""
        await self._finish(conn, lambda: self._statements(conn, writes, checks, keys, term))

    async def _commit_group(self, conn: _Conn, group: _Group, term: int | None) -> _Outcomes:
        """Several writes in one transaction, each in a savepoint; then one feed append
        (the fence) and one COMMIT. Returns each write's outcome (``None``: committed)."""
        outcomes: _Outcomes = []

        async def statements() -> int:
            changed: dict[str, None] = {}
            opening = ["BEGIN", "SAVEPOINT w"]
            for queued in group:
                try:
                    await self._apply(conn, queued.writes, queued.checks, opening)
                except (StorageConflict, psycopg.Error) as exc:
                    if _transient(exc):
                        raise
                    await conn.execute("ROLLBACK TO SAVEPOINT w")
                    outcomes.append(exc)
                    opening = []  # the savepoint is still there, and empty again
                    continue
                outcomes.append(None)
                changed.update(dict.fromkeys(queued.keys))
                opening = ["RELEASE SAVEPOINT w", "SAVEPOINT w"]
            if not changed:
                return 0
            async with conn.pipeline():
                feed = await self._append_feed(conn, list(changed), term)
            return await self._feed_index(feed)

        await self._finish(conn, statements)
        return outcomes

    async def _finish(self, conn: _Conn, statements: Callable[[], Awaitable[int]]) -> None:
        """Run ``statements`` (which BEGINs), then COMMIT; roll back on failure. A lost
        COMMIT answer is reported as an unknown outcome, never retried."""
        committing = False
        try:
            index = await statements()
            committing = True
            await conn.execute("COMMIT")
        except BaseException as exc:
            if committing:
                if isinstance(exc, Exception) and _transient(exc):
                    log.warning("PostgreSQL COMMIT outcome unknown: %s", _describe(exc))
                    raise StorageUnavailable(
                        "storage write outcome unknown: the PostgreSQL connection was"
                        " lost during COMMIT; the write may or may not have been applied"
                    ) from exc
                raise
            if not conn.closed:
                with contextlib.suppress(psycopg.Error):
                    await conn.execute("ROLLBACK")
            raise
        self.commits += 1
        if index and index % _TRIM_EVERY == 0 and index > self.feed_keep:
            self._trim_later(index - self.feed_keep)

    async def _statements(
        self,
        conn: _Conn,
        writes: _Writes,
        checks: _Checks,
        keys: _Keys,
        term: int | None,
    ) -> int:
        """BEGIN and every statement, pipelined; raises (after which we roll back) on a
        failed fence or guard. Returns the change-feed index taken (0: none)."""
        feed = None
        async with conn.pipeline():
            await conn.execute("BEGIN")
            # with the feed on, the fence is checked on the feed row (below); without it
            # (fencing a plain backend), by a share lock on the lock row
            fence = await conn.execute(self.sql.fence) if self._fenced and not self._feed else None
            results = await self._queue_statements(conn, writes, checks)
            if self._feed and keys:
                feed = await self._append_feed(conn, keys, term)
        if fence is not None:
            row = await fence.fetchone()
            if row is None or term is None or int(row[0]) != term:
                raise Fenced("this node's leadership term is no longer current: write refused")
        await _check_results(*results)
        return 0 if feed is None else await self._feed_index(feed)

    async def _apply(
        self, conn: _Conn, writes: _Writes, checks: _Checks, opening: Sequence[str]
    ) -> None:
        """``opening`` statements, then one write's guards and statements, pipelined; raises
        StorageConflict on a failed guard."""
        async with conn.pipeline():
            for statement in opening:
                await conn.execute(statement)
            results = await self._queue_statements(conn, writes, checks)
        await _check_results(*results)

    async def _queue_statements(
        self, conn: _Conn, writes: _Writes, checks: _Checks
    ) -> tuple[_Guards, _Creates]:
        sql = self.sql
        guards = [(await conn.execute(sql.lock_value, (p, n)), v) for p, n, v in checks]
        creates = []
        for write in writes:
            if write.value is None:
                await conn.execute(sql.delete, (write.parent, write.name))
            else:
                statement = sql.insert_new if write.insert_only else sql.upsert
                cur = await conn.execute(statement, (write.parent, write.name, write.value))
                if write.insert_only:
                    creates.append(cur)
        return guards, creates

    async def _append_feed(self, conn: _Conn, keys: _Keys, term: int | None) -> _Cursor:
        """The feed append, conditional on ``term`` (the term the write was asked for, never
        re-read here: a node fenced to ``None`` meanwhile must not send "no check")."""
        if self._fenced and term is None:
            raise Fenced("this node is not the active node: storage writes are fenced")
        args = {"keys": keys, "channel": self.sql.channel, "term": term if self._fenced else None}
        return await conn.execute(self.sql.append_feed, args)

    @staticmethod
    async def _feed_index(feed: _Cursor) -> int:
        row = await feed.fetchone()
        if row is None:  # the feed row's term is not ours: another node took over
            raise Fenced("this node's leadership term is no longer current: write refused")
        return int(row[0])


async def _check_results(
    guards: list[tuple[_Cursor, bytes | None]], creates: list[_Cursor]
) -> None:
    for cur, expected in guards:
        row = await cur.fetchone()
        stored = None if row is None else bytes(row[0])
        if stored != expected:
            raise StorageConflict("storage guard failed: the value changed")
    for cur in creates:
        if cur.rowcount != 1:
            raise StorageConflict("storage guard failed: the key was created meanwhile")


# libpq settings we default (the URL may set its own): notice a dead peer within ~15 s
# instead of the kernel's two hours, and never wait forever for a connection
_CONNECTION_DEFAULTS = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 15000,
}


def _connection_kwargs(url: str) -> dict[str, Any]:
    try:
        given = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        raise InvalidRequest('storage "postgresql": connection_url cannot be parsed') from None
    kwargs: dict[str, Any] = {"autocommit": True}
    if str(given.get("host") or "").startswith("/"):  # a unix socket: no TCP settings
        return kwargs
    kwargs.update({k: v for k, v in _CONNECTION_DEFAULTS.items() if k not in given})
    return kwargs


def _swallow(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: a failed check is the pool's to log


def _describe(exc: BaseException) -> str:
    """The error's class and SQLSTATE, never its message (which may quote a value)."""
    state = getattr(exc, "sqlstate", None)
    return f"{type(exc).__name__}" + (f" ({state})" if state else "")
