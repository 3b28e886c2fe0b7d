"""`strongroom operator migrate` end to end: a real server on SQLite, the real CLI, then a real
server on PostgreSQL that reads every secret back."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pg import PgCluster, pg_cluster_fixture
from tests.serverproc import ServerProcess, free_port, start_config_server

SQLITE_CONFIG = """
storage "sqlite" {{
  path = "{path}"
}}
listener "tcp" {{
  address = "127.0.0.1:{{port}}"
  tls_disable = true
}}
"""
PG_CONFIG = """
storage "postgresql" {{
  connection_url = "{url}"
  table = "{table}"
}}
listener "tcp" {{
  address = "127.0.0.1:{{port}}"
  tls_disable = true
}}
"""
MIGRATE = """
storage_source "sqlite" {{
  path = "{path}"
}}
storage_destination "postgresql" {{
  connection_url = "{url}"
  table = "{table}"
}}
cluster_addr = "https://127.0.0.1:8201"
"""


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[PgCluster]:
    yield from pg_cluster_fixture()


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "strongroom.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def test_migrate_sqlite_to_postgresql_then_serve_every_secret(
    pg_cluster: PgCluster, tmp_path: Path
) -> None:
    db = tmp_path / "data" / "strongroom.db"
    url = pg_cluster.dsn(pg_cluster.superuser, pg_cluster.superuser_password)
    server = start_config_server(tmp_path, SQLITE_CONFIG.format(path=db))
    try:
        client = server.client()
        init = client.sys.initialize(secret_shares=1, secret_threshold=1)
        key, root = init["keys_base64"][0], init["root_token"]
        client.sys.submit_unseal_key(key)
        client = server.client(root)
        client.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
        client.sys.enable_secrets_engine("kv", path="v1", options={"version": "1"})
        secrets = {f"team/{i % 4}/app{i}": {"password": f"pw-{i}"} for i in range(20)}
        for path, data in secrets.items():
            client.secrets.kv.v2.create_or_update_secret(path, secret=data)
        client.secrets.kv.v1.create_or_update_secret("plain", secret={"v": "1"}, mount_point="v1")
        client.sys.create_or_update_policy("readers", 'path "secret/*" { capabilities = ["read"] }')
        child = client.auth.token.create(policies=["readers"], ttl="2h")["auth"]["client_token"]
    finally:
        server.stop()

    (tmp_path / "migrate.hcl").write_text(MIGRATE.format(path=db, url=url, table="migrated"))
    result = cli("operator", "migrate", "-config=migrate.hcl", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Success! All of the keys have been migrated" in result.stdout
    assert url not in result.stdout + result.stderr
    # again: the destination is now initialized, so a second run is refused
    again = cli("operator", "migrate", "-config=migrate.hcl", cwd=tmp_path)
    assert again.returncode == 2 and "already initialized" in again.stderr

    server = start_config_server(tmp_path, PG_CONFIG.format(url=url, table="migrated"), "pg.hcl")
    try:
        status = server.client().sys.read_seal_status()
        assert status["initialized"] and status["storage_type"] == "postgresql"
        server.client().sys.submit_unseal_key(key)
        client = server.client(root)
        for path, data in secrets.items():
            read = client.secrets.kv.v2.read_secret_version(path, raise_on_deleted_version=True)
            assert read["data"]["data"] == data
        assert client.secrets.kv.v1.read_secret("plain", mount_point="v1")["data"] == {"v": "1"}
        reader = server.client(child)
        assert reader.secrets.kv.v2.read_secret_version(
            "team/1/app1", raise_on_deleted_version=True
        )["data"]["data"] == {"password": "pw-1"}
    finally:
        server.stop()


def test_a_server_refuses_storage_under_migration(tmp_path: Path) -> None:
    import asyncio

    from strongroom.storage import SQLiteStorage
    from strongroom.storage.bulk import MIGRATION_LOCK

    db = tmp_path / "locked.db"

    async def lock() -> None:
        storage = await SQLiteStorage.open(str(db))
        await storage.put(MIGRATION_LOCK, b"{}")
        await storage.close()

    asyncio.run(lock())
    port = free_port()
    config = tmp_path / "s.hcl"
    config.write_text(SQLITE_CONFIG.format(path=db).replace("{port}", str(port)))
    server = ServerProcess([f"-config={config}"], port, tmp_path)
    with pytest.raises(RuntimeError, match="exited early"):
        server.start(timeout=20)
    assert "storage migration is in progress" in server.log()
    (tmp_path / "m.hcl").write_text(
        f'storage_source "sqlite" {{\n path = "{db}"\n}}\n'
        f'storage_destination "sqlite" {{\n path = "{tmp_path / "other.db"}"\n}}\n'
    )
    reset = cli("operator", "migrate", "-config=m.hcl", "-reset", cwd=tmp_path)
    assert reset.returncode == 0 and "lock removed" in reset.stdout
    server.start(timeout=20)
    server.stop()
