"""config/, reset/, rotate-root/ and roles/ (definitions), against a real PostgreSQL cluster."""

from __future__ import annotations

import orjson
import pytest

from strongroom.errors import InternalError, InvalidRequest
from strongroom.logical import Operation
from tests.engines.conftest import MemoryStorage
from tests.engines.database.conftest import Admin, MakeDb, role_exists
from tests.pg import PgCluster

pytestmark = pytest.mark.anyio

CREATE = "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'"


def stored(storage: MemoryStorage, key: str) -> dict:
    return orjson.loads(storage.data[key])


def no_secret_in(value: object, *secrets: str) -> bool:
    text = orjson.dumps(value).decode()
    return not any(secret in text for secret in secrets)


async def test_config_write_read_list_delete(
    make_db: MakeDb, pg_cluster: PgCluster, admin: Admin, storage: MemoryStorage
):
    db = await make_db()
    assert await db.backend.exists(db_request(db, "config/pg")) is False
    assert (
        await db.configure(pg_cluster, admin, allowed_roles="a,b", max_connection_lifetime="5m")
        is None
    )
    assert await db.backend.exists(db_request(db, "config/pg")) is True
    read = await db.read("config/pg")
    assert read is not None
    assert read.data == {
        "plugin_name": "postgresql-database-plugin",
        "plugin_version": "",
        "connection_details": {
            "connection_url": pg_cluster.template_url(),
            "username": admin.name,
            "max_open_connections": 4,
            "max_idle_connections": 4,
            "max_connection_lifetime": "300s",
        },
        "allowed_roles": ["a", "b"],
        "root_credentials_rotate_statements": [],
        "password_policy": "",
        "verify_connection": True,
    }
    assert no_secret_in(read.data, admin.password)

    # an update keeps what it does not mention, including the password
    await db.write("config/pg", {"allowed_roles": ["*"], "verify_connection": True})
    again = await db.read("config/pg")
    assert again is not None and again.data["allowed_roles"] == ["*"]
    assert stored(storage, "config/pg")["password"] == admin.password

    await db.configure(pg_cluster, admin, name="second")
    listed = await db.list("config")
    assert listed is not None and listed.data == {"keys": ["pg", "second"]}
    await db.delete("config/second")
    assert await db.read("config/second") is None
    listed = await db.list("config/")
    assert listed is not None and listed.data == {"keys": ["pg"]}


def db_request(db, path: str):
    from strongroom.logical import Request

    return Request(operation=Operation.UPDATE, path=path, storage=db.storage)


async def test_literal_password_in_url_is_masked(make_db: MakeDb, pg_cluster: PgCluster, admin):
    db = await make_db()
    url = pg_cluster.dsn(admin.name, admin.password)
    await db.write(
        "config/literal",
        {"plugin_name": "postgresql-database-plugin", "connection_url": url},
    )
    read = await db.read("config/literal")
    assert read is not None and no_secret_in(read.data, admin.password)
    assert f"{admin.name}:xxxxx@" in read.data["connection_details"]["connection_url"]


async def test_config_validation(make_db: MakeDb, pg_cluster: PgCluster, admin: Admin):
    db = await make_db()
    with pytest.raises(InvalidRequest, match='unsupported plugin_name "mysql-database-plugin"'):
        await db.configure(pg_cluster, admin, plugin_name="mysql-database-plugin")
    with pytest.raises(InvalidRequest, match="empty plugin name"):
        await db.write("config/x", {"connection_url": pg_cluster.template_url()})
    with pytest.raises(InvalidRequest, match="connection_url is required"):
        await db.write("config/x", {"plugin_name": "postgresql-database-plugin"})
    with pytest.raises(InvalidRequest, match="error creating database object") as raised:
        await db.configure(pg_cluster, admin, password="wrong-password-123")
    assert "wrong-password-123" not in str(raised.value)
    assert "password authentication failed" in str(raised.value)
    assert await db.read("config/pg") is None  # nothing stored


async def test_verify_connection_false_stores_a_config_for_a_down_database(
    make_db: MakeDb, admin: Admin
):
    db = await make_db()
    url = "postgresql://{{username}}:{{password}}@127.0.0.1:9/postgres?sslmode=disable"
    with pytest.raises(InvalidRequest, match="error creating database object"):
        await db.write(
            "config/down",
            {
                "plugin_name": "postgresql-database-plugin",
                "connection_url": url,
                "username": admin.name,
                "password": admin.password,
            },
        )
    response = await db.write(
        "config/down",
        {
            "plugin_name": "postgresql-database-plugin",
            "connection_url": url,
            "username": admin.name,
            "password": admin.password,
            "verify_connection": False,
            "allowed_roles": "*",
        },
    )
    assert response is None
    read = await db.read("config/down")
    assert read is not None and read.data["verify_connection"] is False
    await db.write("roles/r", {"db_name": "down", "creation_statements": CREATE})
    with pytest.raises(InternalError) as raised:
        await db.read("creds/r")
    assert admin.password not in str(raised.value)
    with pytest.raises(InvalidRequest, match="no database configuration"):
        await db.write("reset/nope")


async def test_rotate_root_locks_out_the_old_password(
    make_db: MakeDb, pg_cluster: PgCluster, admin: Admin, storage: MemoryStorage
):
    db = await make_db()
    await db.configure(pg_cluster, admin)
    await db.write("roles/r", {"db_name": "pg", "creation_statements": CREATE})
    assert await db.write("rotate-root/pg") is None
    new_password = stored(storage, "config/pg")["password"]
    assert new_password != admin.password and len(new_password) == 20
    assert not pg_cluster.can_login(admin.name, admin.password)
    assert pg_cluster.can_login(admin.name, new_password)
    read = await db.read("config/pg")
    assert read is not None and no_secret_in(read.data, new_password, admin.password)
    creds = await db.read("creds/r")  # the engine connects with the new password
    assert creds is not None and role_exists(pg_cluster, creds.data["username"])
    await db.lease(Operation.REVOKE, creds.secret)
    assert await db.write("reset/pg") is None
    assert await db.write("rotate-root/pg") is None
    assert not pg_cluster.can_login(admin.name, new_password)


async def test_rotate_root_needs_a_templated_url_and_username(
    make_db: MakeDb, pg_cluster: PgCluster, admin: Admin
):
    db = await make_db()
    await db.write(
        "config/literal",
        {
            "plugin_name": "postgresql-database-plugin",
            "connection_url": pg_cluster.dsn(admin.name, admin.password),
        },
    )
    with pytest.raises(InvalidRequest, match="no username"):
        await db.write("rotate-root/literal")
    await db.write("config/literal", {"username": admin.name})
    with pytest.raises(InvalidRequest, match=r"\{\{password\}\} template"):
        await db.write("rotate-root/literal")
    assert pg_cluster.can_login(admin.name, admin.password)


async def test_rotate_root_with_failing_statements_changes_nothing(
    make_db: MakeDb, pg_cluster: PgCluster, admin: Admin, storage: MemoryStorage
):
    db = await make_db()
    await db.configure(
        pg_cluster,
        admin,
        root_rotation_statements=["ALTER ROLE nobody_here PASSWORD '{{password}}'"],
    )
    with pytest.raises(InvalidRequest, match="rotation statements failed"):
        await db.write("rotate-root/pg")
    record = stored(storage, "config/pg")
    assert record["password"] == admin.password and record["pending_password"] == ""
    assert pg_cluster.can_login(admin.name, admin.password)


async def test_interrupted_root_rotation_is_recovered(
    make_db: MakeDb, pg_cluster: PgCluster, admin: Admin, storage: MemoryStorage
):
    db = await make_db()
    await db.configure(pg_cluster, admin)
    await db.write("roles/r", {"db_name": "pg", "creation_statements": CREATE})
    # as if a rotation stored its pending password, changed the database, then crashed
    pending = "Pending-Passw0rd-xyz"
    record = stored(storage, "config/pg")
    record["pending_password"] = pending
    storage.data["config/pg"] = orjson.dumps(record)
    pg_cluster.query(f"ALTER ROLE \"{admin.name}\" PASSWORD '{pending}'")
    fresh = await make_db()  # a restarted engine: no live connections
    creds = await fresh.read("creds/r")
    assert creds is not None
    record = stored(storage, "config/pg")
    assert record["password"] == pending and record["pending_password"] == ""
    await fresh.lease(Operation.REVOKE, creds.secret)


async def test_roles_definitions(make_db: MakeDb):
    db = await make_db()
    assert await db.list("roles") is None
    await db.write(
        "roles/app",
        {
            "db_name": "pg",
            "creation_statements": (
                'CREATE ROLE "{{name}}"; GRANT SELECT, INSERT ON t TO "{{name}}"'
            ),
            "default_ttl": "1h",
            "max_ttl": 7200,
        },
    )
    read = await db.read("roles/app")
    assert read is not None and read.data == {
        "db_name": "pg",
        "creation_statements": ['CREATE ROLE "{{name}}"; GRANT SELECT, INSERT ON t TO "{{name}}"'],
        "revocation_statements": [],
        "rollback_statements": [],
        "renew_statements": [],
        "default_ttl": 3600,
        "max_ttl": 7200,
        "credential_type": "password",
    }
    await db.write("roles/app", {"renew_statements": ["SELECT 1"]})  # merge
    read = await db.read("roles/app")
    assert read is not None and read.data["default_ttl"] == 3600
    assert read.data["renew_statements"] == ["SELECT 1"]
    listed = await db.list("roles/")
    assert listed is not None and listed.data == {"keys": ["app"]}

    with pytest.raises(InvalidRequest, match="empty database name"):
        await db.write("roles/x", {"creation_statements": "SELECT 1"})
    with pytest.raises(InvalidRequest, match="creation_statements are required"):
        await db.write("roles/x", {"db_name": "pg"})
    with pytest.raises(InvalidRequest, match="ttl cannot be greater than max_ttl"):
        await db.write(
            "roles/x",
            {"db_name": "pg", "creation_statements": "x", "default_ttl": 10, "max_ttl": 5},
        )
    with pytest.raises(InvalidRequest, match="credential_type"):
        await db.write(
            "roles/x",
            {"db_name": "pg", "creation_statements": "x", "credential_type": "rsa_private_key"},
        )
    with pytest.raises(InvalidRequest, match="list of strings"):
        await db.write("roles/x", {"db_name": "pg", "creation_statements": {"a": 1}})
    await db.delete("roles/app")
    assert await db.read("roles/app") is None


async def test_rotate_root_while_postgres_is_down(
    make_db: MakeDb, pg_cluster: PgCluster, admin: Admin, storage: MemoryStorage
):
    db = await make_db()
    await db.configure(pg_cluster, admin)
    await db.write("roles/r", {"db_name": "pg", "creation_statements": CREATE})
    pg_cluster.stop()
    try:
        with pytest.raises(InternalError) as raised:
            await db.write("rotate-root/pg")
        assert admin.password not in str(raised.value)
        assert stored(storage, "config/pg")["pending_password"] != ""  # outcome unknown
    finally:
        pg_cluster.start()
    creds = await db.read("creds/r")  # settles it: the database kept the old password
    assert creds is not None
    record = stored(storage, "config/pg")
    assert record["password"] == admin.password and record["pending_password"] == ""
    await db.lease(Operation.REVOKE, creds.secret)
