"""Fixtures for the database engine, against a real PostgreSQL cluster (tests/pg.py).

Each test gets its own admin role (the engine's "root" user), so rotating its password or
stopping the cluster in one test cannot break another. The engine runs on a FakeClock that
starts at the real time: ``VALID UNTIL`` timestamps are judged by PostgreSQL's own clock.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from psycopg import sql

from strongroom.clock import FakeClock
from strongroom.engines import database
from strongroom.logical import BackendConfig, Operation, Request, Response, Secret, TokenInfo
from tests.engines.conftest import Caller, FakeSystem, MemoryStorage
from tests.pg import PgCluster, pg_cluster_fixture


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    yield from pg_cluster_fixture()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=float(int(time.time())))


def unique(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


@dataclasses.dataclass
class Admin:
    """A database role the engine connects as (its "root" user)."""

    name: str
    password: str


def create_admin(pg: PgCluster, *, superuser: bool = True) -> Admin:
    admin = Admin(unique("vault_admin"), "adm-" + secrets.token_hex(12))
    attrs = sql.SQL("SUPERUSER" if superuser else "CREATEROLE")
    with pg.admin() as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN {} PASSWORD {}").format(
                sql.Identifier(admin.name), attrs, sql.Literal(admin.password)
            )
        )
    return admin


@pytest.fixture
def admin(pg_cluster: PgCluster) -> Admin:
    return create_admin(pg_cluster)


@dataclasses.dataclass
class DbCaller(Caller):
    """A Caller that can also send core's lease operations."""

    async def lease(
        self, operation: Operation, secret: Secret, *, increment: int = 0, issue_time: float = 0
    ) -> Response | None:
        lease = dataclasses.replace(secret, increment=increment, issue_time=issue_time)
        request = Request(
            operation=operation,
            path="creds/" + str(secret.internal_data.get("role", "")),
            storage=self.storage,
            secret=lease,
        )
        return await self.backend.handle(request)

    async def revoke(self, secret: Secret) -> None:
        await self.lease(Operation.REVOKE, secret)

    async def renew(self, secret: Secret, **kwargs: Any) -> Response | None:
        return await self.lease(Operation.RENEW, secret, **kwargs)

    async def configure(
        self, pg: PgCluster, admin: Admin, name: str = "pg", **fields: Any
    ) -> Response | None:
        data: dict[str, Any] = {
            "plugin_name": "postgresql-database-plugin",
            "connection_url": pg.template_url(),
            "username": admin.name,
            "password": admin.password,
            "allowed_roles": "*",
        }
        data.update(fields)
        return await self.write(f"config/{name}", data)


MakeDb = Callable[..., Awaitable[DbCaller]]


@pytest.fixture
async def make_db(clock: FakeClock, storage: MemoryStorage) -> AsyncIterator[MakeDb]:
    backends: list[Any] = []

    async def make(display_name: str = "token", tick: float = 0.05) -> DbCaller:
        config = BackendConfig(
            mount_type="database",
            mount_point="database/",
            mount_accessor="database_1234",
            options={},
            system=FakeSystem(clock),
            storage=storage,
        )
        backend = database.build(config, tick=tick)
        await backend.initialize()
        backends.append(backend)
        token = TokenInfo(accessor="acc", policies=("root",), display_name=display_name)
        return DbCaller(backend, storage, token)

    yield make
    for backend in backends:
        await backend.cleanup()


def role_exists(pg: PgCluster, name: str) -> bool:
    return bool(pg.query("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)))


def valid_until(pg: PgCluster, name: str) -> float:
    rows = pg.query(
        "SELECT extract(epoch FROM rolvaliduntil) FROM pg_roles WHERE rolname = %s", (name,)
    )
    assert rows and rows[0][0] is not None, f"{name} has no VALID UNTIL"
    return float(rows[0][0])
