"""static-roles/, static-creds/, rotate-role/ and scheduled rotation, against real PostgreSQL."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from psycopg import sql

from strongroom.errors import InvalidRequest, PermissionDenied
from tests.engines.conftest import MemoryStorage
from tests.engines.database.conftest import Admin, MakeDb, unique
from tests.pg import PgCluster

pytestmark = pytest.mark.anyio


def make_user(pg: PgCluster, password: str = "initial-pw-1") -> str:
    name = unique("app_user")
    with pg.admin() as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(name), sql.Literal(password)
            )
        )
    return name


async def static_creds(db) -> dict:
    response = await db.read("static-creds/app")
    assert response is not None and response.secret is None
    return dict(response.data)


async def test_static_role_rotates_on_create_and_on_demand(
    make_db: MakeDb, pg_cluster: PgCluster, admin: Admin, clock
):
    db = await make_db()
    await db.configure(pg_cluster, admin)
    user = make_user(pg_cluster)
    await db.write("static-roles/app", {"db_name": "pg", "username": user, "rotation_period": "1h"})
    assert not pg_cluster.can_login(user, "initial-pw-1")
    first = await static_creds(db)
    assert first["username"] == user and first["rotation_period"] == 3600
    assert first["ttl"] == 3600 and first["last_vault_rotation"].endswith("Z")
    assert pg_cluster.can_login(user, first["password"])

    clock.advance(100)
    assert (await static_creds(db))["ttl"] == 3500
    assert await db.write("rotate-role/app") is None
    second = await static_creds(db)
    assert second["password"] != first["password"] and second["ttl"] == 3600
    assert not pg_cluster.can_login(user, first["password"])
    assert pg_cluster.can_login(user, second["password"])

    read = await db.read("static-roles/app")
    assert read is not None and "password" not in read.data
    assert read.data["username"] == user and read.data["rotation_period"] == 3600
    assert read.data["last_vault_rotation"] == second["last_vault_rotation"]
    listed = await db.list("static-roles")
    assert listed is not None and listed.data == {"keys": ["app"]}


async def test_scheduled_rotation_by_the_background_task(
    make_db: MakeDb, pg_cluster: PgCluster, admin: Admin, clock
):
    db = await make_db(tick=0.02)
    await db.configure(pg_cluster, admin)
    user = make_user(pg_cluster)
    await db.write(
        "static-roles/app",
        {
            "db_name": "pg",
            "username": user,
            "rotation_period": 5,
            "rotation_statements": "ALTER ROLE \"{{name}}\" WITH PASSWORD '{{password}}'",
        },
    )
    before = await static_creds(db)
    await asyncio.sleep(0.1)
    assert (await static_creds(db))["password"] == before["password"]  # not due yet
    clock.advance(5)
    for _ in range(200):
        after = await static_creds(db)
        if after["password"] != before["password"]:
            break
        await asyncio.sleep(0.02)
    assert after["password"] != before["password"] and after["ttl"] == 5
    assert pg_cluster.can_login(user, after["password"])
    assert not pg_cluster.can_login(user, before["password"])


async def test_a_restarted_engine_resumes_the_schedule(
    make_db: MakeDb, pg_cluster: PgCluster, admin: Admin, clock, storage: MemoryStorage
):
    db = await make_db()
    await db.configure(pg_cluster, admin)
    user = make_user(pg_cluster)
    await db.write("static-roles/app", {"db_name": "pg", "username": user, "rotation_period": 60})
    await db.backend.cleanup()
    # a rotation cut short: the pending password is stored, the database never changed
    record = orjson.loads(storage.data["static-role/app"])
    record["pending_password"] = "Never-Applied-123"
    storage.data["static-role/app"] = orjson.dumps(record)
    fresh = await make_db(tick=0.02)
    for _ in range(200):
        after = await static_creds(fresh)
        if after["password"] != record["password"]:
            break
        await asyncio.sleep(0.02)
    assert after["password"] not in (record["password"], "Never-Applied-123")
    assert pg_cluster.can_login(user, after["password"])
    assert orjson.loads(storage.data["static-role/app"])["pending_password"] == ""


async def test_static_role_validation(make_db: MakeDb, pg_cluster: PgCluster, admin: Admin):
    db = await make_db()
    await db.configure(pg_cluster, admin, allowed_roles="other")
    user = make_user(pg_cluster)
    base = {"db_name": "pg", "username": user, "rotation_period": 60}
    with pytest.raises(InvalidRequest, match="5 seconds or more"):
        await db.write("static-roles/app", {**base, "rotation_period": 4})
    with pytest.raises(InvalidRequest, match="rotation_period is required"):
        await db.write("static-roles/app", {"db_name": "pg", "username": user})
    with pytest.raises(InvalidRequest, match="username is a required field"):
        await db.write("static-roles/app", {"db_name": "pg", "rotation_period": 60})
    with pytest.raises(InvalidRequest, match="no database configuration"):
        await db.write("static-roles/app", {**base, "db_name": "nope"})
    with pytest.raises(InvalidRequest, match="rotation statements failed"):
        await db.write("static-roles/app", {**base, "username": "no_such_user_here"})
    assert await db.read("static-roles/app") is None  # a failed first rotation keeps nothing
    with pytest.raises(InvalidRequest, match="without quotes"):
        await db.write(
            "static-roles/app",
            {**base, "username": 'evil"user', "rotation_statements": 'ALTER ROLE "{{name}}"'},
        )

    await db.write("static-roles/app", base)
    with pytest.raises(InvalidRequest, match="already managed"):
        await db.write("static-roles/app2", base)
    with pytest.raises(InvalidRequest, match="cannot update static role username"):
        await db.write("static-roles/app", {"username": "someone_else"})
    with pytest.raises(InvalidRequest, match="names must be unique"):
        await db.write("roles/app", {"db_name": "pg", "creation_statements": "SELECT 1"})
    await db.write("static-roles/app", {"rotation_period": "2h"})
    read = await db.read("static-roles/app")
    assert read is not None and read.data["rotation_period"] == 7200
    with pytest.raises(PermissionDenied, match='"app" is not an allowed role'):
        await db.read("static-creds/app")
    with pytest.raises(InvalidRequest, match="no static role found"):
        await db.write("rotate-role/nope")
    with pytest.raises(InvalidRequest, match="unknown role"):
        await db.read("static-creds/nope")

    await db.delete("static-roles/app")
    assert await db.read("static-roles/app") is None
    assert pg_cluster.can_login(user, "initial-pw-1") is False  # the user itself stays as it was
