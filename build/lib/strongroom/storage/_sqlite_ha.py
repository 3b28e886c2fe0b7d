"""SQLite's side of :mod:`strongroom.storage.ha`: the leader lock, fencing and the change feed.

Several processes of one node (the worker processes, or servers started with
``ha_enabled``) share one database file. SQLite has one writer at a time per file, so the
lock and feed need no more than two small tables:

- ``ha_lock``: one row (``id = 1``) naming the holder, its term and when its hold lapses.
  The row is never deleted: releasing only expires it, so the term keeps growing across
  holders and restarts. ``expires_at`` is wall-clock time, which every process of one host
  shares.
- ``changes``: ``idx INTEGER PRIMARY KEY AUTOINCREMENT`` and the keys one commit changed
  (NUL-separated: a storage key may hold any character but NUL). SQLite commits one writer
  at a time and AUTOINCREMENT never reuses an index, so indexes are consecutive and
  committed in order: a reader that sees index *i* has seen every index below it.

The writer checks the fence right after ``BEGIN IMMEDIATE``, which holds the file's write
lock until COMMIT: nobody can take the lock (and bump the term) between that check and the
commit, which is what makes a former holder's in-flight write fail.

The functions here run on whichever thread owns ``conn``; none of them sees a value.
"""

from __future__ import annotations

import sqlite3
import time

from strongroom.errors import Fenced
from strongroom.storage.ha import ChangeBatch, FeedGap, LockHolder

__all__ = [
    "FEED_KEEP",
    "HA_SCHEMA",
    "acquire",
    "append_changes",
    "changes_since",
    "check_fence",
    "current_index",
    "read_holder",
    "release",
    "renew",
]

FEED_KEEP = 50_000
"""Commits kept in the change log; a reader further behind gets :class:`FeedGap`."""
_TRIM_EVERY = 1024

HA_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS ha_lock ("
    " id INTEGER PRIMARY KEY CHECK (id = 1), node_id TEXT NOT NULL, api_addr TEXT NOT NULL,"
    " cluster_addr TEXT NOT NULL, term INTEGER NOT NULL, expires_at REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS changes ("
    " idx INTEGER PRIMARY KEY AUTOINCREMENT, keys TEXT NOT NULL)",
)

_HOLDER = "SELECT node_id, api_addr, cluster_addr, term, expires_at FROM ha_lock WHERE id = 1"
_TERM = "SELECT term FROM ha_lock WHERE id = 1"
_TAKE = (
    "INSERT INTO ha_lock (id, node_id, api_addr, cluster_addr, term, expires_at)"
    " VALUES (1, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET node_id = excluded.node_id,"
    " api_addr = excluded.api_addr, cluster_addr = excluded.cluster_addr,"
    " term = excluded.term, expires_at = excluded.expires_at"
)
_RENEW = "UPDATE ha_lock SET expires_at = ? WHERE id = 1 AND term = ? AND node_id = ?"
_RELEASE = "UPDATE ha_lock SET expires_at = 0 WHERE id = 1 AND term = ? AND node_id = ?"
_APPEND = "INSERT INTO changes (keys) VALUES (?)"
_TRIM = "DELETE FROM changes WHERE idx <= ?"
_CURRENT = "SELECT seq FROM sqlite_sequence WHERE name = 'changes'"
_OLDEST = "SELECT min(idx) FROM changes"
_SINCE = "SELECT idx, keys FROM changes WHERE idx > ? ORDER BY idx LIMIT ?"


def acquire(
    conn: sqlite3.Connection, node_id: str, api_addr: str, cluster_addr: str, ttl: float
) -> int | None:
    """Take the lock if nobody holds an unexpired hold; the new term, or ``None``."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute(_HOLDER).fetchone()
        now = time.time()
        if row is not None and float(row[4]) > now and str(row[0]) != node_id:
            conn.execute("ROLLBACK")
            return None
        # a node that takes the lock again (a restarted process reusing its ID) still gets
        # a new term: whatever its former incarnation had in flight is fenced off
        term = (int(row[3]) if row is not None else 0) + 1
        conn.execute(_TAKE, (node_id, api_addr, cluster_addr, term, now + ttl))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return term


def renew(conn: sqlite3.Connection, node_id: str, term: int, ttl: float) -> bool:
    cursor = conn.execute(_RENEW, (time.time() + ttl, term, node_id))
    return cursor.rowcount == 1


def release(conn: sqlite3.Connection, node_id: str, term: int) -> None:
    conn.execute(_RELEASE, (term, node_id))


def read_holder(conn: sqlite3.Connection) -> LockHolder | None:
    row = conn.execute(_HOLDER).fetchone()
    if row is None or float(row[4]) <= time.time():
        return None
    return LockHolder(
        node_id=str(row[0]),
        api_addr=str(row[1]),
        cluster_addr=str(row[2]),
        term=int(row[3]),
        expires_at=float(row[4]),
    )


def check_fence(conn: sqlite3.Connection, term: int | None) -> None:
    """Inside the writer's open transaction: raise Fenced unless ``term`` is current."""
    if term is None:
        raise Fenced("this node is a standby: writes go to the active node")
    row = conn.execute(_TERM).fetchone()
    if row is None or int(row[0]) != term:
        raise Fenced("this node's leadership term is over: another node is active")


def append_changes(conn: sqlite3.Connection, keys: list[str]) -> None:
    """Inside the writer's open transaction: log the keys this commit changes."""
    cursor = conn.execute(_APPEND, ("\x00".join(keys),))
    index = cursor.lastrowid or 0
    if index % _TRIM_EVERY == 0 and index > FEED_KEEP:
        conn.execute(_TRIM, (index - FEED_KEEP,))


def current_index(conn: sqlite3.Connection) -> int:
    row = conn.execute(_CURRENT).fetchone()
    return int(row[0]) if row is not None else 0


def changes_since(conn: sqlite3.Connection, index: int, limit: int) -> ChangeBatch:
    """The keys changed after ``index``, in one read transaction (a consistent snapshot)."""
    conn.execute("BEGIN")
    try:
        current = current_index(conn)
        if index > current:  # the store was replaced by an older one (a restore)
            raise FeedGap(current)
        if index == current:
            return ChangeBatch(index=index, keys=())
        oldest = conn.execute(_OLDEST).fetchone()[0]
        if oldest is None or int(oldest) > index + 1:  # trimmed past what we need
            raise FeedGap(current)
        rows = conn.execute(_SINCE, (index, max(limit, 1))).fetchall()
    finally:
        conn.execute("COMMIT")
    keys: dict[str, None] = {}
    for _, joined in rows:
        for key in str(joined).split("\x00"):
            keys[key] = None
    return ChangeBatch(index=int(rows[-1][0]), keys=tuple(keys))
