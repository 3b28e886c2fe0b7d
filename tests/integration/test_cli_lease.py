"""``strongroom lease …`` end to end against the session dev server, with a real database lease
(PostgreSQL credentials) for lookup, renew and revoke."""

from __future__ import annotations

import io
import json
import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import hvac
import pytest
from psycopg import sql

from strongroom.cli.main import run
from tests.pg import PgCluster, pg_cluster_fixture
from tests.serverproc import ServerProcess


@dataclass
class Result:
    code: int
    out: str
    err: str

    def ok(self) -> Result:
        assert self.code == 0, self
        return self


Lease = Callable[..., Result]  # the CLI runner: cli("lease", "lookup", ID) -> Result


@pytest.fixture
def cli(dev_server: ServerProcess, tmp_path: Path) -> Lease:
    env = {
        "STRONGROOM_ADDR": dev_server.addr,
        "STRONGROOM_TOKEN": dev_server.root_token,
        "HOME": str(tmp_path),
    }

    def invoke(*argv: str) -> Result:
        out, err = io.StringIO(), io.StringIO()
        code = run(list(argv), env, out, err, stdin=io.StringIO(""))
        return Result(code, out.getvalue(), err.getvalue())

    return invoke


@pytest.fixture(scope="module")
def pg() -> Iterator[PgCluster]:
    yield from pg_cluster_fixture()


@pytest.fixture(scope="module")
def db_mount(dev_server: ServerProcess, pg: PgCluster) -> Iterator[str]:
    """A database engine on a unique mount of the dev server, with a role ``ro``."""
    name, password = f"cli_lease_{uuid.uuid4().hex[:8]}", secrets.token_hex(12)
    with pg.admin() as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}").format(
                sql.Identifier(name), sql.Literal(password)
            )
        )
    mount = f"db{uuid.uuid4().hex[:8]}"
    client: hvac.Client = dev_server.client(dev_server.root_token)
    client.sys.enable_secrets_engine("database", path=mount)
    client.secrets.database.configure(
        name="pg",
        plugin_name="postgresql-database-plugin",
        allowed_roles=["*"],
        connection_url=pg.template_url(),
        username=name,
        password=password,
        mount_point=mount,
    )
    client.secrets.database.create_role(
        name="ro",
        db_name="pg",
        creation_statements=[
            "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' "
            "VALID UNTIL '{{expiration}}';"
        ],
        default_ttl="1h",
        max_ttl="2h",
        mount_point=mount,
    )
    try:
        yield mount
    finally:
        client.sys.revoke_prefix(mount)
        client.sys.disable_secrets_engine(mount)


def _role_exists(pg: PgCluster, username: str) -> bool:
    return bool(pg.query("SELECT 1 FROM pg_roles WHERE rolname = %s", (username,)))


def test_lookup_of_a_missing_lease_exits_2(cli: Lease) -> None:
    result = cli("lease", "lookup", f"nowhere/{uuid.uuid4().hex}")
    assert result.code == 2, result
    assert "Error looking up lease id nowhere/" in result.err
    assert "invalid lease" in result.err
    assert result.out == ""


def test_revoke_prefix_on_an_empty_prefix_succeeds(cli: Lease) -> None:
    prefix = f"empty{uuid.uuid4().hex[:8]}/creds"
    result = cli("lease", "revoke", "-prefix", "-sync", prefix).ok()
    assert result.out == f"Success! Revoked any leases with prefix: {prefix}\n"
    result = cli("lease", "revoke", "-prefix", "-force", prefix).ok()
    assert result.out == f"Success! Force revoked any leases with prefix: {prefix}\n"


def test_force_without_prefix_is_a_usage_error(cli: Lease) -> None:
    result = cli("lease", "revoke", "-force", "some/lease/id")
    assert result.code == 1, result
    assert "Specifying -force requires also specifying -prefix" in result.err


def test_list_of_an_empty_prefix_exits_2(cli: Lease) -> None:
    result = cli("lease", "list", f"empty{uuid.uuid4().hex[:8]}/")
    assert result.code == 2, result
    assert "No leases found" in result.err


def test_real_lease_list_lookup_renew_revoke(
    cli: Lease, dev_server: ServerProcess, db_mount: str, pg: PgCluster
) -> None:
    client: hvac.Client = dev_server.client(dev_server.root_token)
    creds = client.secrets.database.generate_credentials("ro", mount_point=db_mount)
    lease_id, user = creds["lease_id"], creds["data"]["username"]
    assert lease_id.startswith(f"{db_mount}/creds/ro/")
    assert _role_exists(pg, user)

    listed = json.loads(cli("lease", "list", "-format=json", f"{db_mount}/creds/ro").ok().out)
    assert lease_id.rsplit("/", 1)[1] in listed

    table = cli("lease", "lookup", lease_id).ok().out
    assert table.splitlines()[0].split() == ["Key", "Value"]
    assert f"id              {lease_id}" in table
    looked = json.loads(cli("lease", "lookup", "-format=json", lease_id).ok().out)["data"]
    assert looked["id"] == lease_id and looked["renewable"] is True
    assert 3500 < looked["ttl"] <= 3600

    # The renewal answers with the lease (never an empty 204), and lookup sees it.
    result = cli("lease", "renew", "-increment=90m", "-format=json", lease_id).ok()
    renewed = json.loads(result.out)
    assert renewed["lease_id"] == lease_id and renewed["renewable"] is True
    after = json.loads(cli("lease", "lookup", "-format=json", lease_id).ok().out)["data"]
    assert after["last_renewal"] and after["ttl"] > 3600
    assert cli("lease", "renew", "-increment=later", lease_id).code == 1

    result = cli("lease", "revoke", "-sync", lease_id).ok()
    assert result.out == f"Success! Revoked lease: {lease_id}\n"
    assert not _role_exists(pg, user)
    assert cli("lease", "lookup", lease_id).code == 2


def test_renew_without_warnings_prints_the_lease(
    cli: Lease, dev_server: ServerProcess, db_mount: str
) -> None:
    client: hvac.Client = dev_server.client(dev_server.root_token)
    lease_id = client.secrets.database.generate_credentials("ro", mount_point=db_mount)["lease_id"]
    try:
        result = cli("lease", "renew", "-increment=60", lease_id).ok()
        assert f"lease_id           {lease_id}" in result.out
    finally:
        cli("lease", "revoke", "-sync", lease_id).ok()
