"""Snapshots over real HTTP: the CLI and the API, SQLite and PostgreSQL, same and foreign
clusters, and scheduled snapshots with retention."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import hvac
import pytest

from strongroom.core.snapshots import MAGIC, parse_snapshot
from tests.pg import PgCluster, pg_cluster_fixture
from tests.serverproc import ServerProcess, start_config_server

SQLITE = """
storage "sqlite" {{
  path = "{path}"
}}
listener "tcp" {{
  address = "127.0.0.1:{{port}}"
  tls_disable = true
}}
{extra}
"""
PG = """
storage "postgresql" {{
  connection_url = "{url}"
  table = "{table}"
}}
listener "tcp" {{
  address = "127.0.0.1:{{port}}"
  tls_disable = true
}}
"""


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[PgCluster]:
    yield from pg_cluster_fixture()


def init(server: ServerProcess) -> tuple[str, str]:
    client = server.client()
    result = client.sys.initialize(secret_shares=1, secret_threshold=1)
    key, root = result["keys_base64"][0], result["root_token"]
    client.sys.submit_unseal_key(key)
    return key, root


def cli(
    server: ServerProcess, token: str, *args: str, cwd: Path
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
    env.update(VAULT_ADDR=server.addr, VAULT_TOKEN=token)
    return subprocess.run(
        [sys.executable, "-m", "strongroom.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
        check=False,
    )


def write_secrets(client: hvac.Client, count: int) -> dict[str, dict[str, str]]:
    client.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
    secrets = {f"app/{i}": {"password": f"pw-{i}"} for i in range(count)}
    for path, data in secrets.items():
        client.secrets.kv.v2.create_or_update_secret(path, secret=data)
    return secrets


def read_all(client: hvac.Client, secrets: dict[str, dict[str, str]]) -> None:
    for path, data in secrets.items():
        read = client.secrets.kv.v2.read_secret_version(path, raise_on_deleted_version=True)
        assert read["data"]["data"] == data


def test_cli_save_change_restore_same_cluster(tmp_path: Path) -> None:
    server = start_config_server(tmp_path, SQLITE.format(path=tmp_path / "db", extra=""))
    try:
        _key, root = init(server)
        client = server.client(root)
        secrets = write_secrets(client, 15)
        client.sys.create_or_update_policy("p1", 'path "secret/*" { capabilities = ["read"] }')
        saved = cli(server, root, "operator", "snapshot", "save", "snap.bin", cwd=tmp_path)
        assert saved.returncode == 0, saved.stderr
        data = (tmp_path / "snap.bin").read_bytes()
        assert data.startswith(MAGIC) and oct((tmp_path / "snap.bin").stat().st_mode)[-3:] == "600"
        assert b"pw-1" not in data  # ciphertext only
        # change everything after the snapshot
        for path in secrets:
            client.secrets.kv.v2.delete_metadata_and_all_versions(path)
        client.secrets.kv.v2.create_or_update_secret("after", secret={"x": "1"})
        client.sys.delete_policy("p1")
        client.sys.enable_secrets_engine("kv", path="later", options={"version": "1"})
        # a corrupted snapshot is refused and changes nothing
        bad = bytearray(data)
        bad[-1] ^= 1
        (tmp_path / "bad.bin").write_bytes(bytes(bad))
        refused = cli(server, root, "operator", "snapshot", "restore", "bad.bin", cwd=tmp_path)
        assert refused.returncode == 2 and "checksum" in refused.stderr
        assert client.secrets.kv.v2.read_secret_version("after", raise_on_deleted_version=True)
        restored = cli(
            server, root, "operator", "raft", "snapshot", "restore", "snap.bin", cwd=tmp_path
        )
        assert restored.returncode == 0, restored.stderr
        # the node reloaded itself and is unsealed, with the snapshot's state
        assert not server.client().sys.read_seal_status()["sealed"]
        read_all(client, secrets)
        with pytest.raises(hvac.exceptions.InvalidPath):
            client.secrets.kv.v2.read_secret_version("after", raise_on_deleted_version=True)
        assert "p1" in client.sys.list_policies()["data"]["policies"]
        assert "later/" not in client.sys.list_mounted_secrets_engines()["data"]
    finally:
        server.stop()


def test_wipe_then_restore_into_a_new_cluster_needs_force(
    pg_cluster: PgCluster, tmp_path: Path
) -> None:
    url = pg_cluster.dsn(pg_cluster.superuser, pg_cluster.superuser_password)
    config = PG.format(url=url, table="snap_kv")
    server = start_config_server(tmp_path, config)
    try:
        key, root = init(server)
        secrets = write_secrets(server.client(root), 12)
        with server.http(root) as http:
            response = http.get("/v1/sys/storage/raft/snapshot")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/octet-stream"
        snapshot = response.content
        assert parse_snapshot(snapshot).entries
    finally:
        server.stop()
    pg_cluster.query("TRUNCATE snap_kv")  # the wipe
    server = start_config_server(tmp_path, config, "again.hcl")
    try:
        assert server.client().sys.read_seal_status()["initialized"] is False
        _new_key, new_root = init(server)  # a new, different cluster
        with server.http(new_root) as http:
            refused = http.post("/v1/sys/storage/raft/snapshot", content=snapshot)
            assert refused.status_code == 400
            assert "another cluster" in refused.json()["errors"][0]
            refused = http.post("/v1/sys/storage/snapshot", content=snapshot)
            assert refused.status_code == 400
            forced = http.post("/v1/sys/storage/raft/snapshot-force", content=snapshot)
            assert forced.status_code == 204, forced.text
        # the snapshot's keyring needs the old cluster's keys: sealed until they are given
        status = server.client().sys.read_seal_status()
        assert status["sealed"] and status["initialized"]
        server.client().sys.submit_unseal_key(key)
        read_all(server.client(root), secrets)
        with pytest.raises(hvac.exceptions.Forbidden):
            server.client(new_root).secrets.kv.v2.read_secret_version("app/1")
    finally:
        server.stop()


def test_snapshot_paths_need_a_policy_and_valid_bodies(tmp_path: Path) -> None:
    server = start_config_server(tmp_path, SQLITE.format(path=tmp_path / "db", extra=""))
    try:
        _key, root = init(server)
        client = server.client(root)
        client.sys.create_or_update_policy("none", 'path "secret/*" { capabilities = ["read"] }')
        weak = client.auth.token.create(policies=["none"])["auth"]["client_token"]
        with httpx.Client(base_url=server.addr, timeout=30) as http:
            assert http.get("/v1/sys/storage/snapshot").status_code == 403
            forbidden = http.get("/v1/sys/storage/raft/snapshot", headers={"X-Vault-Token": weak})
            assert forbidden.status_code == 403
            headers = {"X-Vault-Token": root}
            for body in (b"", b"not a snapshot", MAGIC + b"{}\n"):
                answer = http.post("/v1/sys/storage/snapshot", content=body, headers=headers)
                assert answer.status_code == 400, answer.text
            ours = http.get("/v1/sys/storage/snapshot", headers=headers).content
            answer = http.post(
                "/v1/sys/storage/snapshot?force=false", content=ours, headers=headers
            )
            assert answer.status_code == 204
    finally:
        server.stop()


def test_scheduled_snapshots_keep_the_newest(tmp_path: Path) -> None:
    directory = tmp_path / "snaps"
    extra = (
        f'automated_snapshots {{\n directory = "{directory}"\n interval = "1s"\n'
        ' retain = 2\n file_prefix = "nightly"\n}'
    )
    server = start_config_server(tmp_path, SQLITE.format(path=tmp_path / "db", extra=extra))
    try:
        _key, root = init(server)
        write_secrets(server.client(root), 3)
        deadline = time.monotonic() + 30
        seen: set[str] = set()
        while time.monotonic() < deadline and len(seen) < 4:
            seen |= (
                {p.name for p in directory.glob("nightly-*.snap")} if directory.exists() else set()
            )
            time.sleep(0.2)
        assert len(seen) >= 4, seen
        # retention: between rounds exactly the newest two remain (a round writes, then prunes)
        deadline = time.monotonic() + 10
        while True:
            files = sorted(directory.glob("nightly-*.snap"))
            if len(files) == 2 and not list(directory.glob("*.partial")):
                break
            assert time.monotonic() < deadline, files
            time.sleep(0.05)
        for file in files:
            assert oct(file.stat().st_mode)[-3:] == "600"
            assert len(parse_snapshot(file.read_bytes()).entries) > 5
    finally:
        server.stop()
