"""The PostgreSQL backend's tables, their creation and migration, and its SQL statements.

Tables (``T`` is the configured ``table``, ``H`` the ``ha_table``)::

    T          (parent, name, value)   one row per key, split at its last "/" like SQLite's
                                       layout; PRIMARY KEY (parent, name), COLLATE "C" so the
                                       index order is byte (= code point) order
    T_schema   (version)               one row: the schema version we last migrated to
    T_changes  (idx, keys)             the change feed: one row per committed write (HA only)
    T_feed     (last_idx, trimmed_to, term)
                                       one row: the feed's counter, how far it was trimmed,
                                       and the current term (version 2), for fencing
    H          (name, node_id, api_addr, cluster_addr, term, expires_at)
                                       the leader lock; ``term`` grows at every acquisition

``list(prefix)`` needs no folder table: immediate leaves are the rows whose ``parent`` equals
the prefix, and immediate folders are found by a loose index scan (a recursive query that
jumps from one child folder to the next with one index probe each), so a LIST costs
O(children * log n) however many keys lie deeper, and writes never touch shared counters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from psycopg import sql

from strongroom.errors import InvalidRequest

__all__ = ["SCHEMA_VERSION", "Statements", "check_table_name"]

SCHEMA_VERSION = 2

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
_MAX_IDENTIFIER = 63 - len("_changes")  # PostgreSQL truncates identifiers at 63 bytes


def check_table_name(name: str, what: str) -> None:
    """``name`` is ``table`` or ``schema.table`` made of letters, digits and underscores.

    Raises:
        InvalidRequest: anything else (we quote identifiers, but refuse surprises early).
    """
    if not _NAME.match(name) or len(name.rpartition(".")[2]) > _MAX_IDENTIFIER:
        raise InvalidRequest(
            f"{what} must be a table name (letters, digits, _; optionally schema.table) "
            f"of at most {_MAX_IDENTIFIER} characters"
        )


def _ident(name: str, suffix: str = "") -> sql.Identifier:
    schema, dot, table = name.rpartition(".")
    return sql.Identifier(schema, table + suffix) if dot else sql.Identifier(table + suffix)


def _channel(name: str) -> str:
    return (name.replace(".", "_") + "_changes")[:63]


@dataclass(frozen=True, slots=True)
class Statements:
    """Every statement the backend runs, composed once for its table names."""

    create: tuple[sql.Composed, ...]
    version: sql.Composed
    set_version: sql.Composed
    get: sql.Composed
    upsert: sql.Composed
    insert_new: sql.Composed
    delete: sql.Composed
    lock_value: sql.Composed
    list_folder: sql.Composed
    list_root: sql.Composed
    count: sql.Composed
    dump: sql.Composed
    truncate: sql.Composed
    # HA: the lock
    fence: sql.Composed
    acquire: sql.Composed
    renew: sql.Composed
    release: sql.Composed
    holder: sql.Composed
    # HA: the change feed
    append_feed: sql.Composed
    current_index: sql.Composed
    feed_state: sql.Composed
    changes_since: sql.Composed
    trim: sql.Composed
    set_trimmed: sql.Composed
    reset_feed: sql.Composed
    listen: sql.Composed
    channel: str

    @classmethod
    def build(cls, table: str, ha_table: str) -> Statements:
        t = _ident(table)
        schema = _ident(table, "_schema")
        changes = _ident(table, "_changes")
        feed = _ident(table, "_feed")
        h = _ident(ha_table)
        channel = _channel(table)
        q = sql.SQL
        return cls(
            create=(
                q(
                    "CREATE TABLE IF NOT EXISTS {} ("
                    ' parent TEXT COLLATE "C" NOT NULL, name TEXT COLLATE "C" NOT NULL,'
                    " value BYTEA NOT NULL, PRIMARY KEY (parent, name))"
                ).format(t),
                # ciphertext does not compress: store it out of line as-is
                q("ALTER TABLE {} ALTER COLUMN value SET STORAGE EXTERNAL").format(t),
                q(
                    "CREATE TABLE IF NOT EXISTS {} ("
                    " id BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id), version INTEGER NOT NULL)"
                ).format(schema),
                q(
                    "CREATE TABLE IF NOT EXISTS {} ( idx BIGINT PRIMARY KEY, keys TEXT[] NOT NULL)"
                ).format(changes),
                q(
                    "CREATE TABLE IF NOT EXISTS {} ("
                    " id BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),"
                    " last_idx BIGINT NOT NULL, trimmed_to BIGINT NOT NULL)"
                ).format(feed),
                # version 2: the current term lives on the feed row too (see acquire)
                q("ALTER TABLE {} ADD COLUMN IF NOT EXISTS term BIGINT NOT NULL DEFAULT 0").format(
                    feed
                ),
                q(
                    "INSERT INTO {} (id, last_idx, trimmed_to) VALUES (TRUE, 0, 0)"
                    " ON CONFLICT (id) DO NOTHING"
                ).format(feed),
                q(
                    "CREATE TABLE IF NOT EXISTS {} ("
                    " name TEXT PRIMARY KEY, node_id TEXT NOT NULL, api_addr TEXT NOT NULL,"
                    " cluster_addr TEXT NOT NULL, term BIGINT NOT NULL,"
                    " expires_at DOUBLE PRECISION NOT NULL)"
                ).format(h),
            ),
            version=q("SELECT version FROM {}").format(schema),
            set_version=q(
                "INSERT INTO {} (id, version) VALUES (TRUE, %s)"
                " ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version"
            ).format(schema),
            get=q("SELECT value FROM {} WHERE parent = %s AND name = %s").format(t),
            upsert=q(
                "INSERT INTO {} (parent, name, value) VALUES (%s, %s, %s)"
                " ON CONFLICT (parent, name) DO UPDATE SET value = EXCLUDED.value"
            ).format(t),
            insert_new=q(
                "INSERT INTO {} (parent, name, value) VALUES (%s, %s, %s)"
                " ON CONFLICT (parent, name) DO NOTHING"
            ).format(t),
            delete=q("DELETE FROM {} WHERE parent = %s AND name = %s").format(t),
            lock_value=q("SELECT value FROM {} WHERE parent = %s AND name = %s FOR UPDATE").format(
                t
            ),
            # %(p)s: the prefix, %(n)s: its length in characters, %(hi)s: the first string
            # after every string starting with the prefix (the prefix ends in "/": its last
            # character becomes "0", the next code point)
            list_folder=q(
                "SELECT name FROM {t} WHERE parent = %(p)s"
                " UNION ALL ("
                " WITH RECURSIVE f(parent) AS ("
                "  (SELECT parent FROM {t} WHERE parent > %(p)s AND parent < %(hi)s"
                "   ORDER BY parent LIMIT 1)"
                "  UNION ALL"
                "  SELECT (SELECT c.parent FROM {t} c"
                "   WHERE c.parent >= %(p)s || split_part(substr(f.parent, %(n)s + 1), '/', 1)"
                "    || '0' AND c.parent < %(hi)s ORDER BY c.parent LIMIT 1)"
                "  FROM f WHERE f.parent IS NOT NULL)"
                " SELECT split_part(substr(parent, %(n)s + 1), '/', 1) || '/' FROM f"
                " WHERE parent IS NOT NULL)"
            ).format(t=t),
            list_root=q(
                "SELECT name FROM {t} WHERE parent = ''"
                " UNION ALL ("
                " WITH RECURSIVE f(parent) AS ("
                "  (SELECT parent FROM {t} WHERE parent > '' ORDER BY parent LIMIT 1)"
                "  UNION ALL"
                "  SELECT (SELECT c.parent FROM {t} c"
                "   WHERE c.parent >= split_part(f.parent, '/', 1) || '0'"
                "   ORDER BY c.parent LIMIT 1)"
                "  FROM f WHERE f.parent IS NOT NULL)"
                " SELECT split_part(parent, '/', 1) || '/' FROM f WHERE parent IS NOT NULL)"
            ).format(t=t),
            count=q("SELECT count(*) FROM {}").format(t),
            dump=q("SELECT parent, name, value FROM {} ORDER BY parent, name").format(t),
            truncate=q("TRUNCATE {}").format(t),
            fence=q("SELECT term FROM {} WHERE name = 'leader' FOR SHARE").format(h),
            # taking the lock also writes the new term onto the feed row: that UPDATE waits
            # for every write in flight (each holds the feed row until COMMIT), and a write
            # that gets the row after it re-checks the term against the new row version
            acquire=q(
                "WITH l AS ("
                "INSERT INTO {h} AS l (name, node_id, api_addr, cluster_addr, term, expires_at)"
                " VALUES ('leader', %(node)s, %(api)s, %(cluster)s, 1,"
                "  extract(epoch FROM clock_timestamp()) + %(ttl)s)"
                " ON CONFLICT (name) DO UPDATE SET node_id = EXCLUDED.node_id,"
                "  api_addr = EXCLUDED.api_addr, cluster_addr = EXCLUDED.cluster_addr,"
                "  term = l.term + 1, expires_at = EXCLUDED.expires_at"
                " WHERE l.node_id = '' OR l.node_id = EXCLUDED.node_id"
                " OR l.expires_at < extract(epoch FROM clock_timestamp())"
                " RETURNING term)"
                " UPDATE {feed} AS f SET term = l.term FROM l WHERE f.id RETURNING l.term"
            ).format(h=h, feed=feed),
            renew=q(
                "UPDATE {} SET expires_at = extract(epoch FROM clock_timestamp()) + %s"
                " WHERE name = 'leader' AND node_id = %s AND term = %s"
            ).format(h),
            release=q(
                "UPDATE {} SET node_id = '', expires_at = 0"
                " WHERE name = 'leader' AND node_id = %s AND term = %s"
            ).format(h),
            holder=q(
                "SELECT node_id, api_addr, cluster_addr, term, expires_at FROM {}"
                " WHERE name = 'leader' AND node_id <> ''"
                " AND expires_at >= extract(epoch FROM clock_timestamp())"
            ).format(h),
            # the feed row's lock is taken last and held to COMMIT, so indexes become
            # visible in order: a reader never sees index i+1 before i
            # %(term)s: the fencing term (NULL: not fenced); no row back means fenced off
            append_feed=q(
                "WITH n AS (UPDATE {feed} SET last_idx = last_idx + 1 WHERE id"
                " AND (%(term)s::bigint IS NULL OR term = %(term)s::bigint)"
                " RETURNING last_idx),"
                " a AS (INSERT INTO {changes} (idx, keys) SELECT last_idx, %(keys)s FROM n"
                " RETURNING idx)"
                " SELECT idx, pg_notify(%(channel)s, idx::text) FROM a"
            ).format(feed=feed, changes=changes),
            current_index=q("SELECT last_idx FROM {} WHERE id").format(feed),
            feed_state=q("SELECT last_idx, trimmed_to FROM {} WHERE id").format(feed),
            changes_since=q("SELECT idx, keys FROM {} WHERE idx > %s ORDER BY idx LIMIT %s").format(
                changes
            ),
            trim=q("DELETE FROM {} WHERE idx <= %s").format(changes),
            set_trimmed=q("UPDATE {} SET trimmed_to = GREATEST(trimmed_to, %s) WHERE id").format(
                feed
            ),
            reset_feed=q(
                "UPDATE {} SET last_idx = last_idx + 1, trimmed_to = last_idx + 1 WHERE id"
                " RETURNING last_idx"
            ).format(feed),
            listen=q("LISTEN {}").format(sql.Identifier(channel)),
            channel=channel,
        )
