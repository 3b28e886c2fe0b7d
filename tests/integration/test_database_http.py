"""The database secrets engine through HTTP with hvac, against a real PostgreSQL cluster."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator

import httpx
import hvac
import hvac.exceptions
import psycopg
import pytest
from psycopg import sql

from tests.pg import PgCluster, pg_cluster_fixture


@pytest.fixture(scope="module")
def pg() -> Iterator[PgCluster]:
    yield from pg_cluster_fixture()


@pytest.fixture(scope="module")
def admin(pg: PgCluster) -> tuple[str, str]:
    name, password = "vault_http_admin", "adm-" + secrets.token_hex(12)
    with pg.admin() as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}").format(
                sql.Identifier(name), sql.Literal(password)
            )
        )
        conn.execute("CREATE TABLE IF NOT EXISTS http_widgets (id int)")
        conn.execute("INSERT INTO http_widgets VALUES (1), (2)")
    return name, password


@pytest.fixture(scope="module")
def mount(dev_server, pg: PgCluster, admin: tuple[str, str]) -> str:
    client = dev_server.client(dev_server.root_token)
    client.sys.enable_secrets_engine("database", path="pgdb")
    client.secrets.database.configure(
        name="pg",
        plugin_name="postgresql-database-plugin",
        allowed_roles=["ro", "static-app"],
        connection_url=pg.template_url(),
        username=admin[0],
        password=admin[1],
        mount_point="pgdb",
    )
    return "pgdb"


def test_generate_credentials_and_log_in(
    root_client: hvac.Client, mount: str, pg: PgCluster, admin: tuple[str, str]
) -> None:
    db = root_client.secrets.database
    db.create_role(
        name="ro",
        db_name="pg",
        creation_statements=[
            "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' "
            "VALID UNTIL '{{expiration}}';",
            'GRANT SELECT ON http_widgets TO "{{name}}";',
        ],
        default_ttl="1h",
        max_ttl="24h",
        mount_point=mount,
    )
    assert db.read_role("ro", mount_point=mount)["data"]["default_ttl"] == 3600
    assert db.list_roles(mount_point=mount)["data"]["keys"] == ["ro"]

    creds = db.generate_credentials("ro", mount_point=mount)
    assert creds["lease_duration"] == 3600 and creds["renewable"] is True
    username, password = creds["data"]["username"], creds["data"]["password"]
    assert re.fullmatch(r"v-root-ro-[A-Za-z0-9]{20}-\d{10}", username)
    with psycopg.connect(pg.dsn(username, password)) as conn:
        assert conn.execute("SELECT count(*) FROM http_widgets").fetchone() == (2,)

    connection = db.read_connection("pg", mount_point=mount)["data"]
    assert connection["plugin_name"] == "postgresql-database-plugin"
    assert admin[1] not in str(connection)

    db.create_role(name="rw", db_name="pg", creation_statements=["SELECT 1"], mount_point=mount)
    with pytest.raises(hvac.exceptions.Forbidden, match="not an allowed role"):
        db.generate_credentials("rw", mount_point=mount)


def test_static_role_and_root_rotation(
    root_client: hvac.Client, mount: str, pg: PgCluster, admin: tuple[str, str]
) -> None:
    db = root_client.secrets.database
    with pg.admin() as conn:
        conn.execute("CREATE ROLE http_static_user LOGIN PASSWORD 'before-rotation'")
    db.create_static_role(
        name="static-app",
        db_name="pg",
        username="http_static_user",
        rotation_statements=["ALTER ROLE \"{{name}}\" WITH PASSWORD '{{password}}'"],
        rotation_period=3600,
        mount_point=mount,
    )
    creds = db.get_static_credentials("static-app", mount_point=mount)["data"]
    assert creds["username"] == "http_static_user" and creds["rotation_period"] == 3600
    assert pg.can_login("http_static_user", creds["password"])
    assert not pg.can_login("http_static_user", "before-rotation")

    with pytest.raises(hvac.exceptions.InvalidRequest, match="unsupported plugin_name"):
        db.configure(
            name="mysql",
            plugin_name="mysql-database-plugin",
            connection_url="x",
            mount_point=mount,
        )

    db.rotate_root_credentials("pg", mount_point=mount)
    assert not pg.can_login(*admin)
    again = db.generate_credentials("ro", mount_point=mount)["data"]  # still connects
    assert pg.can_login(again["username"], again["password"])


def test_password_policy_shapes_generated_passwords(
    root_client: hvac.Client, dev_server, pg: PgCluster
) -> None:
    http = dev_server.http(dev_server.root_token)
    admin = ("vault_policy_admin", "adm-" + secrets.token_hex(12))
    with pg.admin() as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}").format(
                sql.Identifier(admin[0]), sql.Literal(admin[1])
            )
        )
    policy = 'length = 30\nrule "charset" {\n  charset = "abcdef0123456789"\n  min-chars = 3\n}\n'
    assert http.put("/v1/sys/policies/password/dbhex", json={"policy": policy}).status_code == 204
    quoted = 'length = 12\nrule "charset" {\n  charset = "a\'"\n  min-chars = 6\n}\n'
    assert http.put("/v1/sys/policies/password/quoted", json={"policy": quoted}).status_code == 204
    client = root_client
    client.sys.enable_secrets_engine("database", path="pgpol")
    for name, policy_name in (("hex", "dbhex"), ("quote", "quoted")):
        client.secrets.database.configure(
            name=name,
            plugin_name="postgresql-database-plugin",
            allowed_roles=[f"r-{name}"],
            connection_url=pg.template_url(),
            username=admin[0],
            password=admin[1],
            password_policy=policy_name,
            mount_point="pgpol",
        )
        client.secrets.database.create_role(
            name=f"r-{name}",
            db_name=name,
            creation_statements=[
                "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' "
                "VALID UNTIL '{{expiration}}';",
            ],
            default_ttl="1h",
            mount_point="pgpol",
        )
    creds = client.secrets.database.generate_credentials("r-hex", mount_point="pgpol")["data"]
    assert re.fullmatch(r"[a-f0-9]{30}", creds["password"])
    with psycopg.connect(pg.dsn(creds["username"], creds["password"])) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    # a policy whose passwords could close the statement's quotes is refused, not pasted
    resp = http.get("/v1/pgpol/creds/r-quote")
    assert resp.status_code == 400 and "cannot be substituted" in resp.json()["errors"][0]


def test_lease_count_quota_refuses_new_leases_past_the_limit(
    root_client: hvac.Client, dev_server, pg: PgCluster
) -> None:
    import concurrent.futures

    http = dev_server.http(dev_server.root_token)
    admin = ("vault_quota_admin", "adm-" + secrets.token_hex(12))
    with pg.admin() as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}").format(
                sql.Identifier(admin[0]), sql.Literal(admin[1])
            )
        )
    root_client.sys.enable_secrets_engine("database", path="pgq")
    root_client.secrets.database.configure(
        name="q",
        plugin_name="postgresql-database-plugin",
        allowed_roles=["r"],
        connection_url=pg.template_url(),
        username=admin[0],
        password=admin[1],
        mount_point="pgq",
    )
    root_client.secrets.database.create_role(
        name="r",
        db_name="q",
        creation_statements=["CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}';"],
        default_ttl="1h",
        mount_point="pgq",
    )
    resp = http.post("/v1/sys/quotas/lease-count/pgq", json={"max_leases": 3, "path": "pgq/"})
    assert resp.status_code == 204
    try:

        def creds(_: int) -> httpx.Response:
            with dev_server.http(dev_server.root_token) as client:
                return client.get("/v1/pgq/creds/r")

        # a concurrent burst cannot overshoot the limit
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(creds, range(8)))
        granted = [a for a in answers if a.status_code == 200]
        refused = [a for a in answers if a.status_code == 429]
        assert len(granted) == 3 and len(refused) == 5
        assert "lease count quota exceeded" in refused[0].json()["errors"][0]
        listed = http.request("LIST", "/v1/sys/leases/lookup/pgq/creds/r/").json()["data"]["keys"]
        assert len(listed) == 3
        # revoking one frees a slot
        http.put("/v1/sys/leases/revoke", json={"lease_id": granted[0].json()["lease_id"]})
        assert creds(0).status_code == 200
        assert creds(0).status_code == 429
    finally:
        http.delete("/v1/sys/quotas/lease-count/pgq")
