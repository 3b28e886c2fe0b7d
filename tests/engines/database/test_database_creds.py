"""creds/<role> and the creds lease type, against a real PostgreSQL cluster."""
# ruff: noqa: S608 (tests compose SQL from their own fixed, random-suffixed names)

from __future__ import annotations

import re

import psycopg
import pytest
from psycopg import sql

from strongroom.errors import InternalError, InvalidRequest, PermissionDenied
from strongroom.logical import Operation, Response, Secret
from tests.engines.database.conftest import (
    Admin,
    MakeDb,
    create_admin,
    role_exists,
    unique,
    valid_until,
)
from tests.pg import PgCluster

pytestmark = pytest.mark.anyio

CREATE_TEMPLATE = (
    "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"
    ' GRANT SELECT ON <table> TO "{{name}}";'
)


def create(table: str) -> str:
    return CREATE_TEMPLATE.replace("<table>", table)


def make_table(pg: PgCluster, owner: str | None = None) -> str:
    table = unique("widgets")
    with pg.admin() as conn:
        conn.execute(sql.SQL("CREATE TABLE {} (id int)").format(sql.Identifier(table)))
        conn.execute(sql.SQL("INSERT INTO {} VALUES (1), (2), (3)").format(sql.Identifier(table)))
        if owner:
            conn.execute(
                sql.SQL("ALTER TABLE {} OWNER TO {}").format(
                    sql.Identifier(table), sql.Identifier(owner)
                )
            )
    return table


async def issue(db, role: str = "ro") -> tuple[Response, Secret]:
    response = await db.read(f"creds/{role}")
    assert response is not None and response.secret is not None
    return response, response.secret


async def test_creds_log_in_run_the_grant_and_revoke_drops_them(
    make_db: MakeDb, pg_cluster: PgCluster, admin: Admin
):
    db = await make_db()
    await db.configure(pg_cluster, admin)
    table = make_table(pg_cluster)
    await db.write(
        "roles/ro",
        {"db_name": "pg", "creation_statements": create(table), "default_ttl": "1h"},
    )
    response, secret = await issue(db)
    username, password = response.data["username"], response.data["password"]
    assert re.fullmatch(r"v-token-ro-[A-Za-z0-9]{20}-\d{10}", username)
    assert len(password) == 20
    assert secret.type == "creds" and secret.renewable and secret.ttl == 3600
    assert secret.max_ttl == 2764800
    assert dict(secret.internal_data) == {
        "username": username,
        "role": "ro",
        "db_name": "pg",
        "revocation_statements": [],
    }

    session = await psycopg.AsyncConnection.connect(pg_cluster.dsn(username, password))
    cur = await session.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
    assert await cur.fetchone() == (3,)

    await db.revoke(secret)
    assert not role_exists(pg_cluster, username)
    assert not pg_cluster.can_login(username, password)
    with pytest.raises(psycopg.OperationalError):  # its open session was ended too
        await session.execute("SELECT 1")
    await session.close()

    await db.revoke(secret)  # idempotent: already gone is revoked


async def test_renew_extends_valid_until_within_max_ttl(
    make_db: MakeDb, pg_cluster: PgCluster, admin: Admin, clock
):
    db = await make_db()
    await db.configure(pg_cluster, admin)
    await db.write(
        "roles/short",
        {
            "db_name": "pg",
            "creation_statements": create("pg_class"),
            "default_ttl": 600,
            "max_ttl": "2h",
        },
    )
    response, secret = await issue(db, "short")
    username = response.data["username"]
    issued = clock.now()
    assert secret.ttl == 600 and secret.max_ttl == 7200
    assert valid_until(pg_cluster, username) == issued + 600 + 5

    clock.advance(300)
    renewed = await db.renew(secret, increment=3600, issue_time=issued)
    assert renewed is not None and renewed.secret is not None
    assert renewed.secret.ttl == 3600 and renewed.secret.max_ttl == 7200
    assert renewed.secret.internal_data == secret.internal_data
    assert valid_until(pg_cluster, username) == issued + 300 + 3600 + 5

    clock.advance(3000)  # 3300 s in: only 3900 s remain of the 2 h maximum
    capped = await db.renew(secret, increment=86400, issue_time=issued)
    assert capped is not None and capped.secret is not None and capped.secret.ttl == 3900
    assert valid_until(pg_cluster, username) == issued + 7200 + 5

    clock.advance(3900)
    with pytest.raises(InvalidRequest, match="past the max TTL"):
        await db.renew(secret, increment=60, issue_time=issued)
    # renewal without an increment uses the role's default_ttl
    clock.advance(-3900)
    default = await db.renew(secret, issue_time=issued)
    assert default is not None and default.secret is not None and default.secret.ttl == 600
    await db.revoke(secret)


async def test_custom_renew_and_revocation_statements(
    make_db: MakeDb, pg_cluster: PgCluster, admin: Admin, clock
):
    db = await make_db()
    await db.configure(pg_cluster, admin)
    log_table = make_table(pg_cluster)
    await db.write(
        "roles/custom",
        {
            "db_name": "pg",
            "creation_statements": [create("pg_class")],
            "renew_statements": [
                "ALTER ROLE \"{{name}}\" VALID UNTIL '{{expiration}}'",
                f"INSERT INTO {log_table} VALUES (42)",
            ],
            "revocation_statements": [
                'REVOKE ALL ON pg_class FROM "{{name}}"; DROP ROLE "{{name}}"'
            ],
        },
    )
    response, secret = await issue(db, "custom")
    await db.renew(secret, increment=100, issue_time=clock.now())
    assert pg_cluster.query(f"SELECT count(*) FROM {log_table} WHERE id = 42") == [(1,)]
    await db.delete("roles/custom")  # the lease keeps its revocation statements
    await db.revoke(secret)
    assert not role_exists(pg_cluster, response.data["username"])
    await db.revoke(secret)  # a plain DROP ROLE is not run again for a user already gone
    with pytest.raises(InvalidRequest, match="could not find role"):
        await db.renew(secret, increment=100)


async def test_revoke_fails_while_postgres_is_down_then_succeeds(
    make_db: MakeDb, pg_cluster: PgCluster, admin: Admin
):
    db = await make_db()
    await db.configure(pg_cluster, admin)
    await db.write("roles/ro", {"db_name": "pg", "creation_statements": create("pg_class")})
    response, secret = await issue(db)
    pg_cluster.stop()
    try:
        with pytest.raises(InternalError) as raised:
            await db.revoke(secret)
        assert admin.password not in str(raised.value)
    finally:
        pg_cluster.start()
    await db.revoke(secret)  # the pooled connection died with the server: a fresh one is used
    assert not role_exists(pg_cluster, response.data["username"])


async def test_revoke_reassigns_owned_objects(make_db: MakeDb, pg_cluster: PgCluster, admin: Admin):
    db = await make_db()
    await db.configure(pg_cluster, admin)
    schema = unique("app")
    pg_cluster.query(f"CREATE SCHEMA {schema}")
    await db.write(
        "roles/owner",
        {
            "db_name": "pg",
            "creation_statements": create("pg_class")
            + f' GRANT USAGE, CREATE ON SCHEMA {schema} TO "{{{{name}}}}";',
        },
    )
    response, secret = await issue(db, "owner")
    with psycopg.connect(pg_cluster.dsn(response.data["username"], response.data["password"])) as c:
        c.execute(f"CREATE TABLE {schema}.made_by_user (id int)")
        c.commit()
    await db.revoke(secret)
    assert not role_exists(pg_cluster, response.data["username"])
    owner = pg_cluster.query(
        "SELECT tableowner FROM pg_tables WHERE schemaname = %s AND tablename = 'made_by_user'",
        (schema,),
    )
    assert owner == [(admin.name,)]


async def test_non_superuser_admin_can_issue_and_revoke(make_db: MakeDb, pg_cluster: PgCluster):
    admin = create_admin(pg_cluster, superuser=False)
    table = make_table(pg_cluster, owner=admin.name)
    db = await make_db()
    await db.configure(pg_cluster, admin)
    await db.write("roles/ro", {"db_name": "pg", "creation_statements": create(table)})
    response, secret = await issue(db)
    assert pg_cluster.can_login(response.data["username"], response.data["password"])
    await db.revoke(secret)
    assert not role_exists(pg_cluster, response.data["username"])


async def test_rollback_statements_run_when_creation_fails(
    make_db: MakeDb, pg_cluster: PgCluster, admin: Admin
):
    db = await make_db()
    await db.configure(pg_cluster, admin)
    log_table = unique("rollback_log")
    pg_cluster.query(f"CREATE TABLE {log_table} (name text)")
    await db.write(
        "roles/broken",
        {
            "db_name": "pg",
            "creation_statements": [
                "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}'",
                "SELECT '{{password}}'::int",
            ],
            "rollback_statements": f"INSERT INTO {log_table} VALUES ('{{{{name}}}}')",
        },
    )
    with pytest.raises(InvalidRequest) as raised:
        await db.read("creds/broken")
    message = str(raised.value)
    assert "creation statements failed" in message and "[password]" in message
    assert "invalid input syntax for type integer" in message
    rows = pg_cluster.query(f"SELECT name FROM {log_table}")
    assert len(rows) == 1 and rows[0][0].startswith("v-token-broken-")
    assert not role_exists(pg_cluster, rows[0][0])  # the transaction was rolled back


async def test_username_template(make_db: MakeDb, pg_cluster: PgCluster, admin: Admin):
    db = await make_db(display_name="token-alice")
    await db.configure(
        pg_cluster,
        admin,
        username_template=(
            '{{ .RoleName | uppercase }}_{{ .DisplayName | replace "-" "_" | truncate 9 }}'
            "_{{ random 6 | lowercase }}_{{ unix_time }}"
        ),
    )
    await db.write("roles/app-ro", {"db_name": "pg", "creation_statements": create("pg_class")})
    response, secret = await issue(db, "app-ro")
    assert re.fullmatch(r"APP-RO_token_ali_[a-z0-9]{6}_\d{10}", response.data["username"])
    assert pg_cluster.can_login(response.data["username"], response.data["password"])
    await db.revoke(secret)

    with pytest.raises(InvalidRequest, match="username template"):
        await db.configure(pg_cluster, admin, username_template="{{ .Nope }}")


async def test_allowed_roles(make_db: MakeDb, pg_cluster: PgCluster, admin: Admin):
    db = await make_db()
    await db.configure(pg_cluster, admin, allowed_roles=["ro-*", "exact"])
    statements = create("pg_class")
    for role in ("ro-1", "exact", "rw"):
        await db.write(f"roles/{role}", {"db_name": "pg", "creation_statements": statements})
    for role in ("ro-1", "exact"):
        _response, secret = await issue(db, role)
        await db.revoke(secret)
    with pytest.raises(PermissionDenied, match='"rw" is not an allowed role'):
        await db.read("creds/rw")
    await db.configure(pg_cluster, admin, allowed_roles="")
    with pytest.raises(PermissionDenied):
        await db.read("creds/ro-1")


async def test_creds_errors(make_db: MakeDb, pg_cluster: PgCluster, admin: Admin):
    db = await make_db()
    with pytest.raises(InvalidRequest, match="unknown role: nope"):
        await db.read("creds/nope")
    await db.write("roles/orphan", {"db_name": "missing", "creation_statements": "SELECT 1"})
    with pytest.raises(InvalidRequest, match='no database configuration named "missing"'):
        await db.read("creds/orphan")
    bogus = Secret(type="creds", internal_data={"role": "x"})
    with pytest.raises(InvalidRequest, match="missing username"):
        await db.lease(Operation.REVOKE, bogus)
    with pytest.raises(InvalidRequest, match="no secret type"):
        await db.lease(Operation.REVOKE, Secret(type="other"))
    gone = Secret(
        type="creds", internal_data={"username": "u", "role": "gone", "db_name": "missing"}
    )
    with pytest.raises(InternalError, match="does not exist"):
        await db.revoke(gone)  # core keeps the lease and retries


async def test_concurrent_issue_and_revoke(make_db: MakeDb, pg_cluster: PgCluster, admin: Admin):
    import asyncio

    db = await make_db()
    await db.configure(pg_cluster, admin, max_open_connections=3)
    await db.write("roles/ro", {"db_name": "pg", "creation_statements": create("pg_class")})
    issued = await asyncio.gather(*(issue(db) for _ in range(20)))
    names = {response.data["username"] for response, _secret in issued}
    assert len(names) == 20 and all(role_exists(pg_cluster, name) for name in names)
    await asyncio.gather(*(db.revoke(secret) for _response, secret in issued))
    assert not any(role_exists(pg_cluster, name) for name in names)
