"""Leases over HTTP with real PostgreSQL credentials: lookup, renew, revoke, revoke-prefix,
token revocation, expiry on time, expiry across a restart, and retry while the database
is down."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import hvac
import hvac.exceptions
import psycopg
import pytest
from psycopg import sql

from tests.pg import PgCluster, pg_cluster_fixture
from tests.serverproc import ServerProcess, free_port

CONFIG = """
storage "sqlite" { path = "data/strongroom.db" }
listener "tcp" {
  address = "127.0.0.1:{port}"
  tls_disable = true
}
"""


@pytest.fixture(scope="module")
def pg() -> Iterator[PgCluster]:
    yield from pg_cluster_fixture()


@pytest.fixture(scope="module")
def admin(pg: PgCluster) -> tuple[str, str]:
    name, password = "lease_admin", "adm-" + secrets.token_hex(12)
    with pg.admin() as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}").format(
                sql.Identifier(name), sql.Literal(password)
            )
        )
    return name, password


class Node:
    """A restartable sqlite-backed server with one key share."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        (workdir / "server.hcl").write_text(CONFIG.replace("{port}", str(self.port)))
        self.server = self._start()
        init = self.server.client().sys.initialize(secret_shares=1, secret_threshold=1)
        self.key, self.token = init["keys"][0], init["root_token"]
        self.unseal()

    def _start(self) -> ServerProcess:
        return ServerProcess(
            [f"-config={self.workdir / 'server.hcl'}"], self.port, self.workdir
        ).start()

    def unseal(self) -> None:
        self.server.client().sys.submit_unseal_key(self.key)

    def restart(self) -> None:
        self.server.stop()
        self.server = self._start()

    @property
    def client(self) -> hvac.Client:
        return self.server.client(self.token)


@pytest.fixture(scope="module")
def node(
    tmp_path_factory: pytest.TempPathFactory, pg: PgCluster, admin: tuple[str, str]
) -> Iterator[Node]:
    node = Node(tmp_path_factory.mktemp("leases"))
    client = node.client
    client.sys.enable_secrets_engine("database", path="db")
    client.secrets.database.configure(
        name="pg",
        plugin_name="postgresql-database-plugin",
        allowed_roles=["*"],
        connection_url=pg.template_url(),
        username=admin[0],
        password=admin[1],
        mount_point="db",
    )
    for role, ttl in (("ro", "1h"), ("short", "2s")):
        client.secrets.database.create_role(
            name=role,
            db_name="pg",
            creation_statements=[
                "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' "
                "VALID UNTIL '{{expiration}}';"
            ],
            default_ttl=ttl,
            max_ttl="2h",
            mount_point="db",
        )
    try:
        yield node
    finally:
        node.server.stop()


def _can_login(pg: PgCluster, username: str, password: str) -> bool:
    try:
        with psycopg.connect(pg.dsn(username, password), connect_timeout=5):
            return True
    except psycopg.OperationalError:
        return False


def _role_exists(pg: PgCluster, username: str) -> bool:
    return bool(pg.query("SELECT 1 FROM pg_roles WHERE rolname = %s", (username,)))


def _wait_gone(pg: PgCluster, username: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _role_exists(pg, username):
            return True
        time.sleep(0.1)
    return False


def test_lookup_renew_revoke(node: Node, pg: PgCluster) -> None:
    client = node.client
    creds = client.secrets.database.generate_credentials("ro", mount_point="db")
    lease_id = creds["lease_id"]
    user, password = creds["data"]["username"], creds["data"]["password"]
    assert lease_id.startswith("db/creds/ro/")
    assert _can_login(pg, user, password)
    looked = client.sys.read_lease(lease_id)["data"]
    assert looked["id"] == lease_id and looked["renewable"] is True and looked["ttl"] > 3500
    before = pg.query("SELECT rolvaliduntil FROM pg_roles WHERE rolname = %s", (user,))[0][0]
    renewed = client.sys.renew_lease(lease_id, increment=7200)
    assert renewed["lease_id"] == lease_id and renewed["lease_duration"] > 3600
    after = pg.query("SELECT rolvaliduntil FROM pg_roles WHERE rolname = %s", (user,))[0][0]
    assert after > before
    client.sys.revoke_lease(lease_id)
    assert not _can_login(pg, user, password)
    assert not _role_exists(pg, user)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        client.sys.read_lease(lease_id)


def test_revoke_prefix_and_list(node: Node, pg: PgCluster) -> None:
    client = node.client
    users = [
        client.secrets.database.generate_credentials("ro", mount_point="db")["data"]["username"]
        for _ in range(3)
    ]
    listed = client.sys.list_leases("db/creds/ro/")["data"]["keys"]
    assert len(listed) >= 3
    client.sys.revoke_prefix("db/creds/ro")
    assert not any(_role_exists(pg, user) for user in users)


def test_revoking_the_token_revokes_its_leases(node: Node, pg: PgCluster) -> None:
    child = node.client.auth.token.create(ttl="1h")["auth"]["client_token"]
    grandchild = node.server.client(child).auth.token.create(ttl="1h")["auth"]["client_token"]
    creds = node.server.client(grandchild).secrets.database.generate_credentials(
        "ro", mount_point="db"
    )
    user = creds["data"]["username"]
    assert _role_exists(pg, user)
    node.client.auth.token.revoke(child)  # revoking the parent revokes the child's leases
    assert not _role_exists(pg, user)


def test_expiry_happens_on_time(node: Node, pg: PgCluster) -> None:
    creds = node.client.secrets.database.generate_credentials("short", mount_point="db")
    assert creds["lease_duration"] == 2
    user = creds["data"]["username"]
    assert _role_exists(pg, user)
    assert _wait_gone(pg, user, 8), "the expired lease's user was not dropped"


def test_expiry_survives_a_restart(node: Node, pg: PgCluster) -> None:
    creds = node.client.secrets.database.generate_credentials("short", mount_point="db")
    user = creds["data"]["username"]
    node.server.stop()
    time.sleep(2.5)  # the lease expires while the server is down
    assert _role_exists(pg, user)
    node.restart()
    node.unseal()
    assert _wait_gone(pg, user, 8), "a lease that expired while down was not revoked at unseal"


def test_revocation_retried_while_database_down(node: Node, pg: PgCluster) -> None:
    creds = node.client.secrets.database.generate_credentials("short", mount_point="db")
    lease_id, user = creds["lease_id"], creds["data"]["username"]
    pg.stop()
    try:
        deadline = time.monotonic() + 10
        attempts = 0
        while time.monotonic() < deadline and not attempts:
            time.sleep(0.3)
            attempts = node.client.sys.read_lease(lease_id)["data"].get("revoke_attempts", 0)
        assert attempts >= 1, "a failed revocation should be visible on the lease"
    finally:
        pg.start()
    assert _wait_gone(pg, user, 15), "revocation was not retried after the database came back"


def test_a_token_lease_revokes_the_tree_and_its_leases(node: Node, pg: PgCluster) -> None:
    """Tokens are leases: revoking one through sys/leases revokes its children and the
    secret leases they created."""
    client = node.client

    def token_leases() -> set[str]:
        try:
            keys = client.sys.list_leases("auth/token/create/")["data"]["keys"]
        except hvac.exceptions.InvalidPath:
            return set()
        return {f"auth/token/create/{key}" for key in keys}

    before = token_leases()
    parent = client.auth.token.create(ttl="1h")["auth"]
    (lease,) = token_leases() - before
    looked = client.sys.read_lease(lease)["data"]
    assert looked["id"] == lease and 3590 <= looked["ttl"] <= 3600
    assert looked["renewable"] is True and looked["expire_time"]
    child = node.server.client(parent["client_token"]).auth.token.create(ttl="1h")["auth"]
    user = node.server.client(child["client_token"]).secrets.database.generate_credentials(
        "ro", mount_point="db"
    )["data"]["username"]
    assert _role_exists(pg, user)
    client.sys.revoke_lease(lease)
    for token in (parent, child):
        with pytest.raises(hvac.exceptions.Forbidden):
            node.server.client(token["client_token"]).auth.token.lookup_self()
    assert not _role_exists(pg, user)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        client.sys.read_lease(lease)
    assert lease not in token_leases()


@pytest.mark.parametrize("round_", range(6))
def test_renewals_racing_a_revocation_do_not_resurrect_the_lease(
    node: Node, pg: PgCluster, round_: int
) -> None:
    """Lease renewal is a guarded read-modify-write: a renewal that read the lease before
    a concurrent revocation deleted it must not write it back."""
    from tests.integration.burst import burst

    creds = node.client.secrets.database.generate_credentials("ro", mount_point="db")
    lease_id, user = creds["lease_id"], creds["data"]["username"]
    token = node.token

    def act(index: int, client: httpx.Client) -> int:
        headers = {"X-Vault-Token": token}
        if index == 0:
            return client.put(
                "/v1/sys/leases/revoke", json={"lease_id": lease_id}, headers=headers
            ).status_code
        return client.put(
            "/v1/sys/leases/renew", json={"lease_id": lease_id, "increment": 600}, headers=headers
        ).status_code

    codes = burst(12, act, base_url=node.server.addr)
    assert codes[0] == 204
    with pytest.raises(hvac.exceptions.InvalidRequest):
        node.client.sys.read_lease(lease_id)
    assert not _role_exists(pg, user)


@pytest.mark.parametrize("round_", range(3))
def test_leases_minted_while_their_token_is_revoked_do_not_survive(
    node: Node, pg: PgCluster, round_: int
) -> None:
    """Threads create database credentials with a token while root revokes it: every
    lease registered for the token goes with it (a lease stored after the revocation
    listed the token's leases is revoked on the spot and the request refused)."""
    import threading

    token = node.client.auth.token.create(ttl="1h")["auth"]["client_token"]
    users: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    started = threading.Barrier(5)

    def mint() -> None:
        with httpx.Client(base_url=node.server.addr, timeout=60) as client:
            started.wait(timeout=30)
            while not stop.is_set():
                answer = client.get("/v1/db/creds/ro", headers={"X-Vault-Token": token})
                if answer.status_code != 200:
                    return
                with lock:
                    users.append(answer.json()["data"]["username"])

    threads = [threading.Thread(target=mint) for _ in range(4)]
    for thread in threads:
        thread.start()
    started.wait(timeout=30)
    deadline = time.monotonic() + 10
    while len(users) < 8 and time.monotonic() < deadline:
        time.sleep(0.01)
    node.client.auth.token.revoke(token)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    assert users
    assert [user for user in users if _role_exists(pg, user)] == []
