"""The PostgreSQL plugin: connections, and the user operations the engine asks for.

One :class:`PostgresPlugin` per database configuration holds a small pool of psycopg
``AsyncConnection``s (the event loop never blocks on the network): connections open on
demand up to ``max_open_connections``, are reused, and are replaced when they break (a
pooled connection found dead — the server restarted — is retried once on a fresh one).
Every connection uses a 5-second connect timeout and every operation a 30-second limit.

What the plugin trusts: the statements it is handed are the operator's, executed as
written after ``{{placeholder}}`` substitution; the values substituted come from our own
generators (see ``_templates`` and ``_passwords``) or are checked by the caller. The
statements we write ourselves quote identifiers with ``sql.Identifier`` and values with
``sql.Literal``/parameters.

What it promises: no password and no connection string ever appears in an exception or log
line. psycopg's own message text is not used (it quotes the failing SQL, which may hold a
password); we keep the server's primary message and SQLSTATE and mask every known secret.
Connection failures raise :class:`~strongroom.errors.UpstreamError`, an InternalError whose
masked message the client sees, as Vault shows the driver's error (so a revocation is
retried); a failing statement raises :class:`~strongroom.errors.InvalidRequest`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import random
import re
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar

import psycopg
from psycopg import pq, sql

from strongroom.engines.database._templates import expand_statements, render_statement
from strongroom.errors import InvalidRequest, UpstreamError

__all__ = [
    "CONNECT_TIMEOUT",
    "PLUGIN_NAME",
    "ConnectionSettings",
    "PostgresPlugin",
    "format_expiration",
    "mask_url",
]

PLUGIN_NAME = "postgresql-database-plugin"
CONNECT_TIMEOUT = 5
OPERATION_TIMEOUT = 30.0
log = logging.getLogger("strongroom.engines.database")

_T = TypeVar("_T")
_Op = Callable[[psycopg.AsyncConnection[Any]], Awaitable[_T]]


def format_expiration(epoch: float) -> str:
    """``VALID UNTIL`` text in UTC: ``2024-01-02 03:04:05+00``."""
    moment = datetime.datetime.fromtimestamp(int(epoch), datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S+00")


_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^@\s]*)(?=@)", re.I)
_KV_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|\S+)", re.I)


def mask_url(url: str) -> str:
    """The URL with any literal password replaced by ``xxxxx`` (templates are kept)."""

    def hide(match: re.Match[str]) -> str:
        pw = match.group("pw")
        return match.group("head") + (pw if pw in ("{{password}}", "") else "xxxxx")

    return _KV_PASSWORD.sub(hide, _URL_PASSWORD.sub(hide, url))


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """What a plugin needs to connect. ``password`` never appears in repr."""

    connection_url: str = field(repr=False)  # may hold a literal password
    username: str = ""
    password: str = field(default="", repr=False)
    disable_escaping: bool = False
    max_open_connections: int = 4
    max_connection_lifetime: int = 0

    def conninfo(self) -> str:
        """The connection string with ``{{username}}``/``{{password}}`` filled in; values are
        percent-escaped (libpq decodes them) unless ``disable_escaping`` is set."""
        user, password = self.username, self.password
        if not self.disable_escaping:
            user = urllib.parse.quote(user, safe="")
            password = urllib.parse.quote(password, safe="")
        return render_statement(
            self.connection_url, {"username": user, "name": user, "password": password}
        )

    def secrets(self) -> list[str]:
        """Every form of a password this connection may show: the root password (plain and
        escaped) and a literal password written into ``connection_url``."""
        values = [self.password, urllib.parse.quote(self.password, safe="")]
        for pattern in (_URL_PASSWORD, _KV_PASSWORD):
            for match in pattern.finditer(self.connection_url):
                literal = match.group("pw").strip("'")
                if literal != "{{password}}":
                    values += [literal, urllib.parse.unquote(literal)]
        return [v for v in values if len(v) >= 3]


class _Masker:
    """Describes a psycopg error with every secret value and connection string masked."""

    def __init__(self, settings: ConnectionSettings, extra: Iterable[str] = ()) -> None:
        self.secrets = [*settings.secrets(), *(v for v in extra if len(v) >= 3)]
        self.url = settings.conninfo()

    def describe(self, exc: BaseException) -> str:
        if isinstance(exc, psycopg.Error) and exc.diag.message_primary:
            text = exc.diag.message_primary
            if exc.sqlstate:
                text += f" (SQLSTATE {exc.sqlstate})"
        elif isinstance(exc, psycopg.Error):
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        elif isinstance(exc, TimeoutError):
            text = "timed out"
        else:
            text = type(exc).__name__
        return self.mask(text)

    def mask(self, text: str) -> str:
        if self.url:
            text = text.replace(self.url, "[connection_url]")
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, "[password]")
        return mask_url(text)


# What is granted to a role (%(role)s), by kind: relations (TABLE covers views; sequences
# by name), schemas, functions in this database, and databases of the whole cluster.
_GRANTED_OBJECTS = """
WITH r AS (SELECT oid FROM pg_roles WHERE rolname = %(role)s)
SELECT DISTINCT CASE c.relkind WHEN 'S' THEN 'sequence' ELSE 'table' END, n.nspname, c.relname
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a, r
 WHERE a.grantee = r.oid
UNION
SELECT DISTINCT 'table', n.nspname, c.relname
  FROM pg_attribute t JOIN pg_class c ON c.oid = t.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(t.attacl) a, r
 WHERE a.grantee = r.oid
UNION
SELECT DISTINCT 'schema', '', n.nspname FROM pg_namespace n, aclexplode(n.nspacl) a, r
 WHERE a.grantee = r.oid
UNION
SELECT DISTINCT 'function', '', p.oid::regprocedure::text FROM pg_proc p, aclexplode(p.proacl) a, r
 WHERE a.grantee = r.oid
UNION
SELECT DISTINCT 'database', '', d.datname FROM pg_database d, aclexplode(d.datacl) a, r
 WHERE a.grantee = r.oid
"""


_ATTEMPTS = 6


def retryable(exc: psycopg.Error) -> bool:
    """A conflict between concurrent sessions, not a fault of the statements: serialization
    failures, deadlocks, and "tuple concurrently updated" (concurrent GRANT/REVOKE on one
    object update the same catalog row and the loser errors out instead of waiting)."""
    if exc.sqlstate in ("40001", "40P01"):
        return True
    return exc.sqlstate == "XX000" and "concurrently" in (exc.diag.message_primary or "")


def _broken(conn: psycopg.AsyncConnection[Any]) -> bool:
    return conn.closed or conn.broken


class _Pool:
    """Up to ``size`` connections; a slot is held for a whole operation (transactions never
    interleave on one connection)."""

    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings
        self._slots = asyncio.Semaphore(max(1, settings.max_open_connections))
        self._idle: list[tuple[psycopg.AsyncConnection[Any], float]] = []
        self._generation = 0

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        async with asyncio.timeout(CONNECT_TIMEOUT + 1):
            return await psycopg.AsyncConnection.connect(
                self.settings.conninfo(),
                autocommit=True,
                prepare_threshold=None,
                connect_timeout=CONNECT_TIMEOUT,
            )

    async def _acquire(self, fresh: bool) -> tuple[psycopg.AsyncConnection[Any], float, bool]:
        lifetime = self.settings.max_connection_lifetime
        while self._idle and not fresh:
            conn, born = self._idle.pop()
            if _broken(conn) or (lifetime > 0 and time.monotonic() - born > lifetime):
                await _close_quietly(conn)
                continue
            return conn, born, True
        return await self._connect(), time.monotonic(), False

    async def _release(self, conn: psycopg.AsyncConnection[Any], born: float, gen: int) -> None:
        idle = conn.info.transaction_status == pq.TransactionStatus.IDLE
        if _broken(conn) or not idle or gen != self._generation:
            await _close_quietly(conn)
        else:
            self._idle.append((conn, born))

    async def run(self, op: _Op[_T]) -> _T:
        async with self._slots:
            for attempt in (0, 1):
                gen = self._generation
                conn, born, reused = await self._acquire(fresh=attempt == 1)
                try:
                    async with asyncio.timeout(OPERATION_TIMEOUT):
                        result = await op(conn)
                except psycopg.Error:
                    stale = _broken(conn)
                    await self._release(conn, born, gen)
                    if stale and reused and attempt == 0:
                        await self.drain()  # the others are likely dead too
                        continue
                    raise
                except BaseException:
                    # cancelled or timed out mid-operation: the session state is unknown
                    await _close_quietly(conn)
                    raise
                await self._release(conn, born, gen)
                return result
        raise AssertionError("unreachable")  # pragma: no cover

    async def drain(self) -> None:
        idle, self._idle = self._idle, []
        for conn, _born in idle:
            await _close_quietly(conn)

    async def close(self) -> None:
        self._generation += 1  # in-flight connections close when released
        await self.drain()


async def _close_quietly(conn: psycopg.AsyncConnection[Any]) -> None:
    with contextlib.suppress(Exception):
        await conn.close()


async def _execute(conn: psycopg.AsyncConnection[Any], queries: Sequence[str]) -> None:
    for query in queries:
        # a rendered operator statement, executed as written (no parameters, so no % parsing)
        await conn.execute(query.encode())


class PostgresPlugin:
    """The user operations of Vault's postgresql-database-plugin, for one configuration."""

    def __init__(self, name: str, settings: ConnectionSettings) -> None:
        self.name = name
        self.settings = settings
        self._pool = _Pool(settings)

    def __repr__(self) -> str:
        return f"PostgresPlugin(name={self.name!r})"

    async def close(self) -> None:
        await self._pool.close()

    async def verify(self) -> None:
        """Open (or reuse) a connection and run ``SELECT 1``."""

        async def op(conn: psycopg.AsyncConnection[Any]) -> None:
            await conn.execute("SELECT 1")

        await self._run("connect", op)

    async def create_user(
        self,
        *,
        statements: Sequence[str],
        rollback_statements: Sequence[str],
        username: str,
        password: str,
        expiration: str,
    ) -> None:
        """Run the creation statements in one transaction. If they fail, the transaction is
        rolled back and the rollback statements run (best effort) before the error is raised."""
        values = {"name": username, "username": username, "password": password}
        values["expiration"] = expiration
        creation = [render_statement(q, values) for q in expand_statements(statements)]
        rollback = [render_statement(q, values) for q in expand_statements(rollback_statements)]
        if not creation:
            raise InvalidRequest("empty creation statements")
        masker = _Masker(self.settings, (password,))

        async def op(conn: psycopg.AsyncConnection[Any]) -> None:
            try:
                async with conn.transaction():
                    await _execute(conn, creation)
            except psycopg.Error as failure:
                if rollback and not _broken(conn) and not retryable(failure):
                    try:
                        async with conn.transaction():
                            await _execute(conn, rollback)
                    except psycopg.Error as exc:
                        log.warning(
                            'database "%s": rollback statements failed: %s',
                            self.name,
                            masker.describe(exc),
                        )
                raise

        await self._run("creation statements", op, masker)

    async def renew_user(
        self, *, username: str, statements: Sequence[str], expiration: str
    ) -> None:
        """Move the user's expiry (``VALID UNTIL``) to ``expiration``."""
        values = {"name": username, "username": username, "expiration": expiration}
        queries: list[str | sql.Composed] = [
            render_statement(q, values) for q in expand_statements(statements)
        ]
        if not queries:
            queries = [
                sql.SQL("ALTER ROLE {} VALID UNTIL {}").format(
                    sql.Identifier(username), sql.Literal(expiration)
                )
            ]

        async def op(conn: psycopg.AsyncConnection[Any]) -> None:
            async with conn.transaction():
                for query in queries:
                    await conn.execute(query.encode() if isinstance(query, str) else query)

        await self._run("renew statements", op)

    async def set_password(
        self, *, username: str, password: str, statements: Sequence[str]
    ) -> None:
        """Change a user's password in one transaction (root and static-role rotation)."""
        values = {"name": username, "username": username, "password": password}
        queries: list[str | sql.Composed] = [
            render_statement(q, values) for q in expand_statements(statements)
        ]
        if not queries:
            queries = [
                sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(
                    sql.Identifier(username), sql.Literal(password)
                )
            ]
        masker = _Masker(self.settings, (password,))

        async def op(conn: psycopg.AsyncConnection[Any]) -> None:
            async with conn.transaction():
                for query in queries:
                    await conn.execute(query.encode() if isinstance(query, str) else query)

        await self._run("rotation statements", op, masker)

    async def revoke_user(self, *, username: str, statements: Sequence[str]) -> None:
        """Remove a user. Idempotent: a user that no longer exists is already revoked, and
        its statements (the operator's or ours) are not run again.

        Default revocation: refuse new logins, end the user's sessions, hand what it owns to
        the connecting user and drop its privileges, then ``DROP ROLE IF EXISTS``.
        """
        values = {"name": username, "username": username}
        custom = [render_statement(q, values) for q in expand_statements(statements)]

        async def op(conn: psycopg.AsyncConnection[Any]) -> None:
            cur = await conn.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s)", (username,)
            )
            row = await cur.fetchone()
            if not row or not row[0]:
                return
            if custom:
                async with conn.transaction():
                    await _execute(conn, custom)
            else:
                await self._default_revoke(conn, username)

        await self._run("revocation statements", op)

    async def _default_revoke(self, conn: psycopg.AsyncConnection[Any], username: str) -> None:
        role = sql.Identifier(username)

        async def tolerant(
            *queries: sql.SQL | sql.Composed, params: tuple[Any, ...] | None = None
        ) -> bool:
            # Like Vault, remove as much access as possible and let DROP ROLE have the last
            # word; a step we lack the privilege for (a CREATEROLE admin that is not a
            # member of the role) is skipped.
            try:
                async with conn.transaction():
                    for query in queries:
                        await conn.execute(query, params)
                return True
            except psycopg.Error as exc:
                if _broken(conn) or retryable(exc):
                    raise
                log.info('database "%s": revocation step skipped: %s', self.name, exc.sqlstate)
                return False

        await tolerant(sql.SQL("ALTER ROLE {} NOLOGIN").format(role))
        await tolerant(
            sql.SQL(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE usename = %s AND pid <> pg_backend_pid()"
            ),
            params=(username,),
        )
        owned = await tolerant(
            sql.SQL("REASSIGN OWNED BY {} TO CURRENT_USER").format(role),
            sql.SQL("DROP OWNED BY {}").format(role),
        )
        if not owned:
            await self._revoke_grants(conn, role, username, tolerant)
        async with conn.transaction():
            await conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(role))

    async def _revoke_grants(
        self,
        conn: psycopg.AsyncConnection[Any],
        role: sql.Identifier,
        username: str,
        tolerant: Callable[..., Awaitable[bool]],
    ) -> None:
        """Revoke, object by object, what the catalogs say was granted to the user (a
        schema-wide ``REVOKE … ON ALL TABLES`` fails outright on the first table the admin
        has no rights on). Revoking a table's privileges revokes its column privileges too."""
        cur = await conn.execute(_GRANTED_OBJECTS, {"role": username})
        for kind, schema, name in await cur.fetchall():
            target: sql.Composable
            if kind == "function":
                # regprocedure text is PostgreSQL's own quoting of the signature
                target = sql.SQL(name)
            elif kind in ("schema", "database"):
                target = sql.Identifier(name)
            else:
                target = sql.Identifier(schema, name)
            keyword = sql.SQL(kind.upper())
            await tolerant(sql.SQL("REVOKE ALL ON {} {} FROM {}").format(keyword, target, role))

    async def _run(self, what: str, op: _Op[_T], masker: _Masker | None = None) -> _T:
        masker = masker or _Masker(self.settings)
        for attempt in range(_ATTEMPTS):
            try:
                return await self._pool.run(op)
            except psycopg.Error as exc:
                if not retryable(exc) or attempt == _ATTEMPTS - 1:
                    self._fail(what, exc, masker)
            except TimeoutError:
                log.warning('database "%s": %s timed out', self.name, what)
                raise UpstreamError(f'database "{self.name}": {what} timed out') from None
            # Two sessions changed the same catalog row (GRANTs on one table): every
            # operation here is one transaction or idempotent, so run it again.
            await asyncio.sleep(random.uniform(0, 0.005 * 2**attempt))  # noqa: S311 (jitter)
        raise AssertionError("unreachable")  # pragma: no cover

    def _fail(self, what: str, exc: psycopg.Error, masker: _Masker) -> NoReturn:
        detail = masker.describe(exc)
        if isinstance(exc, psycopg.OperationalError) and exc.sqlstate is None:
            log.warning('database "%s": connection failed: %s', self.name, detail)
            raise UpstreamError(f'database "{self.name}": connection failed: {detail}') from None
        if exc.sqlstate and exc.sqlstate[:2] in ("08", "57"):
            log.warning('database "%s": connection lost: %s', self.name, detail)
            raise UpstreamError(f'database "{self.name}": connection lost: {detail}') from None
        raise InvalidRequest(f'database "{self.name}": {what} failed: {detail}') from None
