"""A real server on ``storage "postgresql"`` over HTTP, with a real PostgreSQL cluster."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import hvac
import pytest

from tests.pg import PgCluster, pg_cluster_fixture
from tests.serverproc import ServerProcess, start_config_server

PG_CONFIG = """
storage "postgresql" {{
  connection_url = "{url}"
  table = "{table}"
  max_parallel = 8
  retry_timeout = "{retry}"
}}
listener "tcp" {{
  address = "127.0.0.1:{{port}}"
  tls_disable = true
}}
"""


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[PgCluster]:
    yield from pg_cluster_fixture()


def pg_config(cluster: PgCluster, table: str, retry: str = "2s") -> str:
    url = cluster.dsn(cluster.superuser, cluster.superuser_password)
    return PG_CONFIG.format(url=url, table=table, retry=retry)


def init_unseal(server: ServerProcess) -> tuple[str, str]:
    """Initialize with one share and unseal; returns (unseal key, root token)."""
    client = server.client()
    result = client.sys.initialize(secret_shares=1, secret_threshold=1)
    key, token = result["keys_base64"][0], result["root_token"]
    client.sys.submit_unseal_key(key)
    return key, token


def test_a_server_on_postgresql_keeps_secrets_across_restarts(
    pg_cluster: PgCluster, tmp_path: Path
) -> None:
    config = pg_config(pg_cluster, "kv_server_restart")
    server = start_config_server(tmp_path, config)
    try:
        key, token = init_unseal(server)
        client = server.client(token)
        client.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
        for i in range(20):
            client.secrets.kv.v2.create_or_update_secret(f"app/{i}", secret={"n": str(i)})
        keys = client.secrets.kv.v2.list_secrets("app/")["data"]["keys"]
        assert sorted(keys) == sorted(str(i) for i in range(20))
    finally:
        server.stop()
    # nothing but ciphertext in the table: no plaintext value or path segment
    dump = b"".join(
        bytes(value) for (value,) in pg_cluster.query("SELECT value FROM kv_server_restart")
    )
    assert b'"n"' not in dump
    server = start_config_server(tmp_path, config)
    try:
        status = server.client().sys.read_seal_status()
        assert status["initialized"] and status["sealed"]
        assert status["storage_type"] == "postgresql"
        server.client().sys.submit_unseal_key(key)
        client = server.client(token)
        for i in range(20):
            data = client.secrets.kv.v2.read_secret_version(
                f"app/{i}", raise_on_deleted_version=True
            )
            assert data["data"]["data"] == {"n": str(i)}
    finally:
        server.stop()


def test_concurrent_kv_cas_writes_over_http(pg_cluster: PgCluster, tmp_path: Path) -> None:
    """KV v2 check-and-set through the whole road onto PostgreSQL: of N writers racing with
    the same cas, exactly one wins."""
    import concurrent.futures

    server = start_config_server(tmp_path, pg_config(pg_cluster, "kv_server_cas"))
    try:
        _key, token = init_unseal(server)
        root = server.client(token)
        root.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
        for round_ in range(5):
            path = f"race/{round_}"
            root.secrets.kv.v2.create_or_update_secret(path, secret={"v": "0"})

            def write(i: int, path: str = path) -> bool:
                client = server.client(token)
                try:
                    client.secrets.kv.v2.create_or_update_secret(path, secret={"v": str(i)}, cas=1)
                except hvac.exceptions.InvalidRequest:
                    return False
                return True

            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                results = list(pool.map(write, range(8)))
            assert results.count(True) == 1
            meta = root.secrets.kv.v2.read_secret_metadata(path)["data"]
            assert meta["current_version"] == 2
    finally:
        server.stop()


def _storage_503(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    messages = response.json()["errors"]
    assert any("storage" in message for message in messages), messages
    assert "Traceback" not in response.text and "psycopg" not in response.text


def test_postgresql_down_at_start_and_during_service(pg_cluster: PgCluster, tmp_path: Path) -> None:
    pg_cluster.stop()
    try:
        server = start_config_server(tmp_path, pg_config(pg_cluster, "kv_server_faults", "1s"))
    except BaseException:
        pg_cluster.start()
        raise
    try:
        # up and answering, but storage is down: 503 naming storage, never a crash
        with server.http() as http:
            _storage_503(http.get("/v1/sys/seal-status"))
            _storage_503(http.put("/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1}))
        pg_cluster.start()
        deadline = time.monotonic() + 20
        while True:
            with server.http() as http:
                status = http.get("/v1/sys/seal-status")
            if status.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert status.status_code == 200 and status.json()["initialized"] is False
        _key, token = init_unseal(server)
        client = server.client(token)
        client.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
        client.secrets.kv.v2.create_or_update_secret("kept", secret={"a": "1"})

        pg_cluster.stop()
        with server.http(token) as http:
            _storage_503(http.get("/v1/secret/data/never-read"))
            _storage_503(http.post("/v1/secret/data/new", json={"data": {"b": "2"}}))
        assert server.proc is not None and server.proc.poll() is None
        pg_cluster.start()
        deadline = time.monotonic() + 20
        while True:
            with server.http(token) as http:
                response = http.post("/v1/secret/data/new", json={"data": {"b": "2"}})
            if response.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert response.status_code == 200, response.text
        read = client.secrets.kv.v2.read_secret_version("kept", raise_on_deleted_version=True)
        assert read["data"]["data"] == {"a": "1"}
        assert "hunter" not in server.log() and pg_cluster.superuser_password not in server.log()
    finally:
        server.stop()
        if not (pg_cluster.datadir / "postmaster.pid").exists():
            pg_cluster.start()
