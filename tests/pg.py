"""A throwaway PostgreSQL cluster for tests that need a real database.

``PgCluster().start()`` runs ``initdb`` into a fresh temporary directory and starts the server
on a free 127.0.0.1 port, with its unix socket inside that directory. Host (TCP) connections
need a password (scram-sha-256), as a production server would; the local socket trusts
everyone, so the test itself can administer the cluster without one (``admin()``).

When the test process runs as root, PostgreSQL (which refuses to run as root) runs as the
``postgres`` OS user, and the directory is handed to that user. Any test directory can use it::

    @pytest.fixture(scope="session")
    def pg_cluster() -> Iterator[PgCluster]:
        yield from pg_cluster_fixture()
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

__all__ = ["PgCluster", "PgReplica", "PgUnavailable", "find_bindir", "pg_cluster_fixture"]

SUPERUSER = "postgres"
SUPERUSER_PASSWORD = "pg-test-superuser-pw"  # a test cluster on 127.0.0.1 only
INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl) were not found under "
    "/usr/lib/postgresql/*/bin or on PATH: install the `postgresql` package "
    "(apt-get install postgresql) to run the database tests"
)


class PgUnavailable(RuntimeError):
    """initdb/pg_ctl are missing, or the cluster would not start."""


def _version_key(path: str) -> tuple[int, ...]:
    parts = Path(path).parts
    for part in parts:
        if part.replace(".", "").isdigit():
            return tuple(int(p) for p in part.split("."))
    return (0,)


def find_bindir() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding initdb and pg_ctl (or PATH)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    for candidate in candidates:
        if all(os.access(Path(candidate, tool), os.X_OK) for tool in ("initdb", "pg_ctl")):
            return Path(candidate)
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl and Path(initdb).parent == Path(pg_ctl).parent:
        return Path(initdb).parent
    raise PgUnavailable(INSTALL_HINT)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgCluster:
    """One PostgreSQL server in a temporary directory; ``stop``/``start`` keep data and port."""

    def __init__(self, *, bindir: Path | None = None) -> None:
        self.bindir = bindir or find_bindir()
        self.root: Path | None = None
        self.port = 0
        self.superuser = SUPERUSER
        self.superuser_password = SUPERUSER_PASSWORD
        self._as_postgres = os.geteuid() == 0

    # -- paths ------------------------------------------------------------------------------

    @property
    def datadir(self) -> Path:
        return self._root / "data"

    @property
    def sockdir(self) -> Path:
        return self._root / "sock"

    @property
    def logfile(self) -> Path:
        return self._root / "postgres.log"

    @property
    def _root(self) -> Path:
        if self.root is None:
            raise RuntimeError("the cluster was never started")
        return self.root

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> PgCluster:
        """initdb on first call, then start the server and wait until it accepts connections."""
        if self.root is None:
            self._init()
        last_error = ""
        for _attempt in range(3):
            if not self.port:
                self.port = _free_port()
            result = self._pg_ctl(
                "start",
                "-w",
                "-t",
                "30",
                "-l",
                str(self.logfile),
                "-o",
                f"-p {self.port} -k {self.sockdir} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
                check=False,
            )
            if result.returncode == 0:
                self._wait_ready()
                return self
            last_error = result.stdout + result.stderr + self.log_tail()
            if "could not bind" not in last_error and "in use" not in last_error:
                break
            self.port = 0  # a port race: pick another
        raise PgUnavailable(f"PostgreSQL did not start:\n{last_error}")

    def stop(self) -> None:
        if self.root is not None and (self.datadir / "postmaster.pid").exists():
            self._pg_ctl("stop", "-w", "-m", "fast", check=False)

    def restart(self) -> None:
        self.stop()
        self.start()

    def destroy(self) -> None:
        self.stop()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> PgCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    # -- connecting -------------------------------------------------------------------------

    def dsn(self, user: str, password: str, dbname: str = "postgres") -> str:
        """A TCP (password-checked) connection URL for ``user``."""
        quote = urllib.parse.quote
        return (
            f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}"
            f"@127.0.0.1:{self.port}/{quote(dbname, safe='')}?sslmode=disable"
        )

    def template_url(self, dbname: str = "postgres") -> str:
        """A Vault-style templated ``connection_url`` for the database secrets engine."""
        return f"postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{self.port}/{dbname}?sslmode=disable"

    def admin_conninfo(self, dbname: str = "postgres") -> str:
        """Over the unix socket, trusted: for the test's own setup and inspection."""
        return f"host={self.sockdir} port={self.port} user={self.superuser} dbname={dbname}"

    def admin(self, dbname: str = "postgres") -> psycopg.Connection[Any]:
        return psycopg.connect(self.admin_conninfo(dbname), autocommit=True)

    def query(self, text: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement as the superuser and return its rows (if any)."""
        with self.admin() as conn:
            cur = conn.execute(text.encode(), params or None)
            return cur.fetchall() if cur.description else []

    def can_login(self, user: str, password: str, dbname: str = "postgres") -> bool:
        try:
            with psycopg.connect(self.dsn(user, password, dbname), connect_timeout=5):
                return True
        except psycopg.OperationalError:
            return False

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # -- internals --------------------------------------------------------------------------

    def _init(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="strongroom-pg-"))
        self.sockdir.mkdir()
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.superuser_password + "\n")
        if self._as_postgres:
            entry = pwd.getpwnam("postgres")
            for path in (self.root, self.sockdir, pwfile):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self.root.chmod(0o700)
        result = self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.datadir),
            "-U",
            self.superuser,
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--no-sync",
            check=False,
        )
        pwfile.unlink()
        if result.returncode != 0:
            raise PgUnavailable(f"initdb failed:\n{result.stdout}{result.stderr}")

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with self.admin() as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise PgUnavailable(f"PostgreSQL is not ready:\n{self.log_tail()}") from None
                time.sleep(0.05)

    def _pg_ctl(self, *args: str, check: bool) -> subprocess.CompletedProcess[str]:
        return self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), *args, check=check)

    def _run(self, *cmd: str, check: bool) -> subprocess.CompletedProcess[str]:
        full = ["runuser", "-u", "postgres", "--", *cmd] if self._as_postgres else list(cmd)
        return subprocess.run(full, capture_output=True, text=True, check=check, timeout=120)


class PgReplica(PgCluster):
    """A streaming replica of ``primary`` (``pg_basebackup -R`` over the primary's trusted
    unix socket), on its own port; :meth:`promote` makes it a primary (a failover)."""

    def __init__(self, primary: PgCluster) -> None:
        super().__init__(bindir=primary.bindir)
        self.primary = primary

    def _init(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="strongroom-pg-replica-"))
        self.sockdir.mkdir()
        if self._as_postgres:
            entry = pwd.getpwnam("postgres")
            for path in (self.root, self.sockdir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self.root.chmod(0o700)
        result = self._run(
            str(self.bindir / "pg_basebackup"),
            "-D",
            str(self.datadir),
            "-h",
            str(self.primary.sockdir),
            "-p",
            str(self.primary.port),
            "-U",
            self.primary.superuser,
            "-R",  # standby.signal and primary_conninfo: start as a streaming replica
            "-X",
            "stream",
            "--no-sync",
            check=False,
        )
        if result.returncode != 0:
            raise PgUnavailable(f"pg_basebackup failed:\n{result.stdout}{result.stderr}")

    def _wait_ready(self, timeout: float = 30.0) -> None:
        super()._wait_ready(timeout)
        deadline = time.monotonic() + timeout
        while not self.primary.query("SELECT 1 FROM pg_stat_replication WHERE state = 'streaming'"):
            if time.monotonic() > deadline:
                raise PgUnavailable(f"the replica is not streaming:\n{self.log_tail()}")
            time.sleep(0.05)

    def promote(self) -> None:
        """``pg_ctl promote``: from now on it accepts writes."""
        self._pg_ctl("promote", "-w", "-t", "30", check=True)


def pg_cluster_fixture() -> Iterator[PgCluster]:
    """The body of a session fixture: fails (never skips) when PostgreSQL is unavailable."""
    import pytest  # only test sessions use this helper

    try:
        cluster = PgCluster().start()
    except PgUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield cluster
    finally:
        cluster.destroy()
