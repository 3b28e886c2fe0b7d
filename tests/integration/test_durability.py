"""A write acknowledged with 2xx survives kill -9 of the server at any moment."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from tests.serverproc import ServerProcess, free_port

SQLITE_CONFIG = """
storage "sqlite" {
  path = "data/strongroom.db"
}
listener "tcp" {
  address = "127.0.0.1:{port}"
  tls_disable = "true"
}
"""


def _start(tmp_path: Path, port: int) -> ServerProcess:
    config = tmp_path / "server.hcl"
    config.write_text(SQLITE_CONFIG.replace("{port}", str(port)))
    return ServerProcess([f"-config={config}"], port, tmp_path).start()


def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    port = free_port()
    server = _start(tmp_path, port)
    try:
        init = server.client().sys.initialize(secret_shares=1, secret_threshold=1)
        key, token = init["keys"][0], init["root_token"]
        client = server.client(token)
        client.sys.submit_unseal_key(key)
        client.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
        acked: list[int] = []
        stop = threading.Event()

        def writer(worker: int) -> None:
            with httpx.Client(base_url=server.addr, headers={"X-Vault-Token": token}) as http:
                n = worker
                while not stop.is_set():
                    try:
                        response = http.post(
                            f"/v1/secret/data/k{n}", json={"data": {"value": f"v{n}"}}
                        )
                    except httpx.HTTPError:
                        return
                    if response.status_code == 200:
                        acked.append(n)
                    n += 8

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        time.sleep(1.5)
        server.kill()
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        assert len(acked) > 20, "the writers should have had time to write"
    finally:
        server.stop()

    server = _start(tmp_path, port)
    try:
        client = server.client(token)
        client.sys.submit_unseal_key(key)
        with httpx.Client(base_url=server.addr, headers={"X-Vault-Token": token}) as http:
            for n in acked:
                response = http.get(f"/v1/secret/data/k{n}")
                assert response.status_code == 200, n
                assert response.json()["data"]["data"] == {"value": f"v{n}"}
    finally:
        server.stop()
