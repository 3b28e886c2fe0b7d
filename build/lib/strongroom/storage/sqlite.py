"""The default physical backend: one SQLite file in WAL mode, written by one thread.

Durability: ``put``/``delete``/``transaction`` return only once their data is committed with
``synchronous=FULL`` in WAL mode, i.e. the WAL has been fsynced. The event loop never waits on
that sync: every write is queued to a single writer thread, which drains the whole queue,
applies it in one SQLite transaction (a savepoint per caller, so one failing write does not
fail its neighbours), commits once and only then resolves every caller's future. Under
concurrency many writes share one fsync (group commit).

Reads run on the event loop thread through a second, read-only connection. They never sync,
and WAL lets them proceed while the writer commits. A read that starts after a write's future
resolved sees that write: the commit is complete before the future is resolved, and each read
is its own autocommit transaction, so it takes a fresh WAL snapshot.

Layout: ``entries(parent, name, value)`` holds each key split at its last ``/`` (``a/b/c`` →
``a/b/`` + ``c``); ``folders(parent, name, children)`` holds one row per non-empty folder
(``a/b/`` → ``a/`` + ``b/``) with its number of direct children, maintained by the writer.
``list(prefix)`` is then two primary-key range scans, O(children) whatever lies deeper.

The file, its ``-wal`` and ``-shm`` are mode 0600 (we create the database file 0600 before
SQLite touches it, and SQLite gives its side files the database's mode); a missing parent
directory is created 0700. An exclusive ``flock`` on the database file keeps a second server
(or a second storage object in this process) from sharing it, since each would trust its own
read cache.

Shared mode (``shared=True``: HA or worker processes): every opener takes a *shared* flock
instead (so a non-shared server and shared ones still exclude each other), and the storage
is an :class:`~strongroom.storage.ha.HABackend` and :class:`~strongroom.storage.ha.ChangeFeed`
(see :mod:`strongroom.storage._sqlite_ha`): the writer checks the fencing term inside each
write transaction and appends the changed keys to the change log in that same transaction;
readers poll ``PRAGMA data_version`` to notice other processes' commits cheaply.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import queue
import sqlite3
import stat
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from strongroom.errors import (
    InternalError,
    StorageConflict,
    StorageUnavailable,
    StrongroomError,
)
from strongroom.logical import StorageOp
from strongroom.storage import _sqlite_ha as ha
from strongroom.storage.ha import ChangeBatch, LockHolder
from strongroom.storage.memory import (
    check_key,
    check_prefix,
    parent_folders,
    split_key,
    to_bytes,
)

__all__ = ["SQLiteStorage"]

T = TypeVar("T")

_SCHEMA_VERSION = 2  # 2: the HA lock and change-log tables
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS entries ("
    " parent TEXT NOT NULL, name TEXT NOT NULL, value BLOB NOT NULL,"
    " PRIMARY KEY (parent, name))",
    "CREATE TABLE IF NOT EXISTS folders ("
    " parent TEXT NOT NULL, name TEXT NOT NULL, children INTEGER NOT NULL CHECK (children > 0),"
    " PRIMARY KEY (parent, name)) WITHOUT ROWID",
    *ha.HA_SCHEMA,
)
_GET = "SELECT value FROM entries WHERE parent = ? AND name = ?"
_LIST = (
    "SELECT name FROM entries WHERE parent = ?1"
    " UNION ALL SELECT name FROM folders WHERE parent = ?1 ORDER BY name"
)
_UPDATE = "UPDATE entries SET value = ? WHERE parent = ? AND name = ?"
_INSERT = "INSERT INTO entries (parent, name, value) VALUES (?, ?, ?)"
_DELETE = "DELETE FROM entries WHERE parent = ? AND name = ?"
_FOLDER_COUNT = "SELECT children FROM folders WHERE parent = ? AND name = ?"
_FOLDER_ADD = "UPDATE folders SET children = children + 1 WHERE parent = ? AND name = ?"
_FOLDER_SUB = "UPDATE folders SET children = children - 1 WHERE parent = ? AND name = ?"
_FOLDER_NEW = "INSERT INTO folders (parent, name, children) VALUES (?, ?, 1)"
_FOLDER_DROP = "DELETE FROM folders WHERE parent = ? AND name = ?"

_BUSY_TIMEOUT_S = 5.0
_POLL_S = 0.005  # how often wait() looks for another process's commit
_SIDE_FILES = ("-wal", "-shm", "-journal")

# (parent, name, value or None for a delete, guard?): a guard compares, writes nothing
_Op = tuple[str, str, bytes | None, bool]
_Ops = list[_Op]
_Rows = list[tuple[object, ...]]
# a caller's future and how it ends: None for success
_Outcome = tuple["asyncio.Future[None]", BaseException | None]
_Outcomes = list[_Outcome]
_Failures = list[BaseException | None]


@dataclass(slots=True)
class _Write:
    ops: list[_Op] = field(repr=False)
    future: asyncio.Future[None]
    loop: asyncio.AbstractEventLoop


_Batch = list[_Write]


class _Stop:
    pass


_STOP = _Stop()


class _Unfenced:
    pass


_UNFENCED = _Unfenced()


class SQLiteStorage:
    """A :class:`~strongroom.logical.Storage` on one SQLite file. Build it with :meth:`open`.

    Use it from one event loop thread (reads run on that thread); writes may come from any
    task. A write whose caller is cancelled may still be committed.
    """

    def __init__(self, path: str, *, max_batch: int = 4096, shared: bool = False) -> None:
        """Prefer :meth:`open`, which also starts the writer and opens the files."""
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._path = path
        self._max_batch = max_batch
        self._shared = shared
        # read by the writer thread at the start of each transaction
        self._fence: int | _Unfenced | None = _UNFENCED
        self._ha_conn: sqlite3.Connection | None = None
        self._ha_lock = threading.Lock()
        self._queue: queue.SimpleQueue[_Write | _Stop] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._reader: sqlite3.Connection | None = None
        self._closed = False
        self._broken: BaseException | None = None
        self._commits = 0
        self._writes = 0

    @classmethod
    async def open(cls, path: str, *, max_batch: int = 4096, shared: bool = False) -> SQLiteStorage:
        """Open (creating if needed) the database at ``path`` and start its writer thread.

        Args:
            path: the database file; its parent directory is created (0700) if missing.
            max_batch: most writes committed together; 1 turns group commit off.
            shared: let other shared openers (processes) use the file at the same time,
                with the HA lock, fencing and the change feed (see the module docs).

        Raises:
            InternalError: the file cannot be created, locked, opened or migrated.

        Returns:
            The open storage; close it with :meth:`close`.
        """
        storage = cls(path, max_batch=max_batch, shared=shared)
        await storage._start()
        return storage

    def __repr__(self) -> str:
        return f"SQLiteStorage(path={self._path!r}, shared={self._shared}, closed={self._closed})"

    @property
    def path(self) -> str:
        return self._path

    @property
    def shared(self) -> bool:
        return self._shared

    @property
    def commit_count(self) -> int:
        """Transactions committed by the writer (each one fsync), for tests and benchmarks."""
        return self._commits

    @property
    def write_count(self) -> int:
        """Writes (put, delete or transaction calls) committed so far."""
        return self._writes

    async def get(self, key: str) -> bytes | None:
        check_key(key)
        rows = self._read(_GET, split_key(key))
        if not rows:
            return None
        value = rows[0][0]
        if not isinstance(value, bytes):  # only a hand-edited file holds anything else
            raise InternalError("malformed storage entry")
        return value

    async def list(self, prefix: str) -> list[str]:
        check_prefix(prefix)
        return [str(row[0]) for row in self._read(_LIST, (prefix,))]

    async def put(self, key: str, value: bytes) -> None:
        check_key(key)
        parent, name = split_key(key)
        await self._submit([(parent, name, to_bytes(value), False)])

    async def delete(self, key: str) -> None:
        check_key(key)
        parent, name = split_key(key)
        await self._submit([(parent, name, None, False)])

    async def transaction(self, ops: Sequence[StorageOp]) -> None:
        batch: _Ops = []
        for op in ops:
            check_key(op.key)
            parent, name = split_key(op.key)
            value = None if op.value is None else to_bytes(op.value)
            batch.append((parent, name, value, op.check))
        # guards first: they see the values as they were before this transaction's writes
        batch.sort(key=_is_write)
        if batch:
            await self._submit(batch)

    # -- HABackend and ChangeFeed (shared mode) -----------------------------------------------

    async def try_acquire(
        self, node_id: str, api_addr: str, cluster_addr: str, ttl: float
    ) -> int | None:
        return await self._ha_call(ha.acquire, node_id, api_addr, cluster_addr, ttl)

    async def renew(self, node_id: str, term: int, ttl: float) -> bool:
        return await self._ha_call(ha.renew, node_id, term, ttl)

    async def release(self, node_id: str, term: int) -> None:
        await self._ha_call(ha.release, node_id, term)

    async def holder(self) -> LockHolder | None:
        return await self._ha_call(ha.read_holder)

    def fence(self, term: int | None) -> None:
        self._fence = term

    async def current_index(self) -> int:
        return self._reading(ha.current_index)

    async def changes_since(self, index: int, limit: int = 10_000) -> ChangeBatch:
        return self._reading(ha.changes_since, index, limit)

    async def wait(self, index: int, timeout: float) -> None:
        reader = self._reader
        if reader is None:
            raise InternalError("storage is closed")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen = -1
        while True:
            # data_version changes whenever any connection (ours or another process's)
            # commits: a cheap pragma most polls, the index query only after a commit
            version = self._reading(_data_version)
            if version != seen:
                seen = version
                if self._reading(ha.current_index) > index:
                    return
            left = deadline - loop.time()
            if left <= 0:
                return
            await asyncio.sleep(min(_POLL_S, left))

    async def items(self, batch: int = 1000) -> AsyncIterator[tuple[str, bytes]]:
        """Every (key, value) from one consistent read snapshot, on a connection of its own
        (off the event loop), so the server's own reads keep seeing fresh data meanwhile."""
        if self._closed:
            raise InternalError("storage is closed")

        def start() -> tuple[sqlite3.Connection, sqlite3.Cursor]:
            conn = sqlite3.connect(
                self._path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA query_only = ON")
            conn.execute("BEGIN")  # one snapshot for the whole walk
            return conn, conn.execute("SELECT parent, name, value FROM entries")

        try:
            conn, cursor = await asyncio.to_thread(start)
        except sqlite3.Error as exc:
            raise InternalError("storage read failed") from exc
        try:
            while rows := await asyncio.to_thread(cursor.fetchmany, batch):
                for parent, name, value in rows:
                    yield str(parent) + str(name), bytes(value)
        except sqlite3.Error as exc:
            raise InternalError("storage read failed") from exc
        finally:
            await asyncio.to_thread(conn.close)

    async def close(self) -> None:
        """Finish every queued write, then close both connections. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        with self._ha_lock:
            if self._ha_conn is not None:
                self._ha_conn.close()
                self._ha_conn = None
        thread = self._thread
        if thread is not None:
            self._queue.put(_STOP)
            await asyncio.to_thread(thread.join)

    # -- event loop side ---------------------------------------------------------------------

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        self._thread = threading.Thread(
            target=self._writer_main,
            args=(loop, ready),
            name="strongroom-sqlite-writer",
            daemon=True,  # acknowledged writes are already durable; don't hang exit
        )
        self._thread.start()
        try:
            await ready
        except BaseException:
            self._closed = True
            await asyncio.to_thread(self._thread.join)
            raise
        try:
            reader = sqlite3.connect(self._path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
            reader.execute("PRAGMA query_only = ON")
        except sqlite3.Error as exc:
            await self.close()
            raise InternalError("cannot open SQLite storage for reading", str(exc)) from exc
        self._reader = reader

    def _reading(self, call: Callable[..., T], *args: object) -> T:
        reader = self._reader
        if reader is None:
            raise InternalError("storage is closed")
        try:
            return call(reader, *args)
        except sqlite3.Error as exc:
            raise InternalError("storage read failed") from exc

    async def _ha_call(self, call: Callable[..., T], *args: object) -> T:
        """Run a lock operation on its own connection, off the event loop (it may wait on
        another process's write lock)."""
        if self._closed:
            raise InternalError("storage is closed")
        if not self._shared:
            raise InternalError("the HA lock needs SQLite storage opened in shared mode")

        def run() -> T:
            with self._ha_lock:
                if self._closed:
                    raise InternalError("storage is closed")
                if self._ha_conn is None:
                    self._ha_conn = sqlite3.connect(
                        self._path,
                        timeout=_BUSY_TIMEOUT_S,
                        isolation_level=None,
                        check_same_thread=False,
                    )
                try:
                    return call(self._ha_conn, *args)
                except sqlite3.Error as exc:
                    raise StorageUnavailable("storage lock operation failed") from exc

        return await asyncio.to_thread(run)

    def _read(self, sql: str, args: tuple[str, ...]) -> _Rows:
        reader = self._reader
        if reader is None:
            raise InternalError("storage is closed")
        try:
            # fetchall steps the statement to completion, which ends its read transaction:
            # the next read takes a fresh snapshot and sees every acknowledged write
            rows: _Rows = reader.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise InternalError("storage read failed") from exc
        return rows

    async def _submit(self, ops: _Ops) -> None:
        if self._closed or self._thread is None:
            raise InternalError("storage is closed")
        if self._broken is not None:
            raise InternalError("storage writer has stopped") from self._broken
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._queue.put(_Write(ops, future, loop))
        await future

    # -- writer thread -------------------------------------------------------------------------

    def _writer_main(self, loop: asyncio.AbstractEventLoop, ready: asyncio.Future[None]) -> None:
        lock_fd = -1
        conn: sqlite3.Connection | None = None
        try:
            lock_fd = _prepare_file(self._path, self._shared)
            conn = _connect_writer(self._path)
        except BaseException as exc:
            if conn is not None:
                conn.close()
            if lock_fd >= 0:
                os.close(lock_fd)
            error = exc if isinstance(exc, InternalError) else _open_error(exc)
            _notify(loop, [(ready, error)])
            return
        _notify(loop, [(ready, None)])
        try:
            self._serve(conn)
        except BaseException as exc:  # a bug: fail fast rather than leave callers hanging
            self._broken = exc
            self._fail_queued(exc)
        finally:
            conn.close()
            os.close(lock_fd)

    def _serve(self, conn: sqlite3.Connection) -> None:
        while True:
            item = self._queue.get()
            if isinstance(item, _Stop):
                return
            batch = [item]
            stop = False
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if isinstance(item, _Stop):
                    stop = True
                    break
                batch.append(item)
            self._commit(conn, batch)
            if stop:
                return

    def _commit(self, conn: sqlite3.Connection, batch: _Batch) -> None:
        failures: _Failures = [None] * len(batch)
        savepoints = len(batch) > 1
        try:
            conn.execute("BEGIN IMMEDIATE")
            fence = self._fence
            if not isinstance(fence, _Unfenced):
                # under the file's write lock, held until COMMIT: the term cannot change
                # between this check and the commit
                ha.check_fence(conn, fence)
            for index, write in enumerate(batch):
                if savepoints:
                    conn.execute("SAVEPOINT w")
                try:
                    _apply(conn, write.ops)
                except (sqlite3.Error, StrongroomError) as exc:
                    if not savepoints:
                        raise
                    conn.execute("ROLLBACK TO w")  # if this fails, the whole batch fails
                    failures[index] = exc
                if savepoints:
                    conn.execute("RELEASE w")
            if self._shared:
                changed = [
                    parent + name
                    for write, failure in zip(batch, failures, strict=True)
                    if failure is None
                    for parent, name, _, check in write.ops
                    if not check
                ]
                if changed:
                    ha.append_changes(conn, changed)
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            failures = [exc] * len(batch)
        else:
            self._commits += 1
            self._writes += failures.count(None)
        self._resolve(batch, failures)

    def _resolve(self, batch: _Batch, failures: _Failures) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, _Outcomes] = {}
        for write, error in zip(batch, failures, strict=True):
            outcome = None if error is None else _write_error(error)
            by_loop.setdefault(write.loop, []).append((write.future, outcome))
        for loop, outcomes in by_loop.items():
            _notify(loop, outcomes)

    def _fail_queued(self, exc: BaseException) -> None:
        pending: _Batch = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _Write):
                pending.append(item)
        self._resolve(pending, [exc] * len(pending))


def _is_write(op: _Op) -> bool:
    return not op[3]


def _apply(conn: sqlite3.Connection, ops: _Ops) -> None:
    """Apply one caller's ops (guards sorted first) inside the writer's open transaction.

    Raises:
        StorageConflict: a guard did not match; the caller rolls back what was applied.
    """
    for parent, name, value, guard in ops:
        if guard:
            rows = conn.execute(_GET, (parent, name)).fetchall()
            if (rows[0][0] if rows else None) != value:
                raise StorageConflict("storage guard failed: the value changed")
        elif value is None:
            if conn.execute(_DELETE, (parent, name)).rowcount:
                _unlink(conn, parent)
        elif not conn.execute(_UPDATE, (value, parent, name)).rowcount:
            conn.execute(_INSERT, (parent, name, value))
            _link(conn, parent)


def _link(conn: sqlite3.Connection, parent: str) -> None:
    """Count one new child in folder ``parent``, creating it (and its ancestors) if new."""
    for grand, folder in parent_folders(parent):
        if conn.execute(_FOLDER_ADD, (grand, folder)).rowcount:
            return
        conn.execute(_FOLDER_NEW, (grand, folder))


def _unlink(conn: sqlite3.Connection, parent: str) -> None:
    """Uncount one child of folder ``parent``, dropping it (and its ancestors) once empty."""
    for grand, folder in parent_folders(parent):
        rows = conn.execute(_FOLDER_COUNT, (grand, folder)).fetchall()
        if not rows:
            raise InternalError("storage folder index is inconsistent")
        if rows[0][0] > 1:
            conn.execute(_FOLDER_SUB, (grand, folder))
            return
        conn.execute(_FOLDER_DROP, (grand, folder))


def _make_private_dirs(directory: str) -> None:
    """Create each missing level 0700 (os.makedirs gives only the last one its mode, and
    that filtered by the umask)."""
    missing: list[str] = []
    current = directory
    while current and not os.path.isdir(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for level in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(level, 0o700)
        os.chmod(level, 0o700)


def _prepare_file(path: str, shared: bool) -> int:
    """Create the directory (0700) and database file (0600), lock it (shared or exclusive);
    return the lock's fd."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        _make_private_dirs(directory)
    flags = os.O_RDWR | os.O_CLOEXEC
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o600)
        created = True
    except FileExistsError:
        fd = os.open(path, flags)
        created = False
    try:
        # the database, its WAL and its shared-memory index hold ciphertexts and key
        # metadata: owner-only, whatever the umask or an earlier run left behind
        if stat.S_IMODE(os.fstat(fd).st_mode) != 0o600:
            os.fchmod(fd, 0o600)
        for suffix in _SIDE_FILES:
            with contextlib.suppress(FileNotFoundError):
                os.chmod(path + suffix, 0o600)
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InternalError(
                "SQLite storage is in use by another server or storage object"
                + (" not in HA/workers mode" if shared else ""),
                path,
            ) from None
        if created:
            _fsync_directory(directory)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _connect_writer(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(
        path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, cached_statements=64
    )
    try:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchall()[0][0]
        if str(mode).lower() != "wal":
            raise InternalError("SQLite storage cannot use WAL mode", path)
        # FULL in WAL mode: every commit syncs the WAL before it returns
        conn.execute("PRAGMA synchronous = FULL")
        # overwrite deleted content when it costs no extra I/O
        conn.execute("PRAGMA secure_delete = FAST")
        conn.execute("PRAGMA journal_size_limit = 67108864")
        version = conn.execute("PRAGMA user_version").fetchall()[0][0]
        if version > _SCHEMA_VERSION:
            raise InternalError("SQLite storage was written by a newer version", path)
        if version < _SCHEMA_VERSION:
            conn.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
            conn.execute("COMMIT")
        for suffix in _SIDE_FILES:
            with contextlib.suppress(FileNotFoundError):
                os.chmod(path + suffix, 0o600)
    except BaseException:
        conn.close()
        raise
    return conn


def _data_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA data_version").fetchone()[0])


def _fsync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _open_error(exc: BaseException) -> InternalError:
    error = InternalError("cannot open SQLite storage", str(exc))
    error.__cause__ = exc
    return error


def _write_error(exc: BaseException) -> BaseException:
    if isinstance(exc, StrongroomError):  # InternalError, StorageConflict, Fenced
        return exc
    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
        busy = StorageUnavailable("storage is busy; the write was not applied")
        busy.__cause__ = exc
        return busy
    error = InternalError("storage write failed")
    error.__cause__ = exc
    return error


def _notify(loop: asyncio.AbstractEventLoop, outcomes: _Outcomes) -> None:
    """From the writer thread: settle futures on their own loop's thread."""
    try:
        loop.call_soon_threadsafe(_settle, outcomes)
    except RuntimeError:
        pass  # the loop is closed: nobody is left waiting


def _settle(outcomes: _Outcomes) -> None:
    for future, error in outcomes:
        if future.done():  # the caller was cancelled
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
