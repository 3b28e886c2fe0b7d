"""Real server processes sharing one SQLite file with ha_enabled: an HA cluster on one host."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.serverproc import ServerProcess, free_port

HA_CONFIG = """
storage "sqlite" {{
  path = "{db}"
  ha_enabled = "true"
  ha_lock_ttl = "{ttl}s"
}}
listener "tcp" {{
  address = "127.0.0.1:{port}"
  tls_disable = true
}}
api_addr = "http://127.0.0.1:{port}"
cluster_addr = "https://127.0.0.1:{cluster_port}"
disable_clustering = {disable_clustering}
disable_mlock = true
"""


def wait_until(check: Callable[[], bool], timeout: float = 15.0, what: str = "") -> float:
    """Poll ``check`` until true; returns the seconds it took."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.02)
    return time.monotonic() - start


@dataclass
class HACluster:
    workdir: Path
    ttl: int = 2
    nodes: list[ServerProcess] = field(default_factory=list)
    unseal_key: str = ""
    root_token: str = ""
    # these tests check Vault's redirect between nodes (no forwarding): see
    # tests/ha/test_ha_forwarding.py for forwarding over the cluster port
    clustering: bool = False

    def add_node(self) -> ServerProcess:
        port = free_port()
        config = self.workdir / f"node-{port}.hcl"
        config.write_text(
            HA_CONFIG.format(
                db=self.workdir / "ha.db",
                ttl=self.ttl,
                port=port,
                cluster_port=free_port(),
                disable_clustering=str(not self.clustering).lower(),
            )
        )
        node = ServerProcess([f"-config={config}"], port, self.workdir).start(timeout=60)
        self.nodes.append(node)
        return node

    def restart(self, node: ServerProcess) -> None:
        node.start(timeout=60)
        self.unseal(node)

    def init(self) -> None:
        with httpx.Client(base_url=self.nodes[0].addr, timeout=30) as http:
            body = http.put("/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1})
            assert body.status_code == 200, body.text
            self.unseal_key = body.json()["keys_base64"][0]
            self.root_token = body.json()["root_token"]
        for node in self.nodes:
            self.unseal(node)

    def unseal(self, node: ServerProcess) -> None:
        with httpx.Client(base_url=node.addr, timeout=30) as http:
            answer = http.put("/v1/sys/unseal", json={"key": self.unseal_key})
            assert answer.status_code == 200 and not answer.json()["sealed"], answer.text

    def leader(self, node: ServerProcess) -> dict[str, object]:
        with httpx.Client(base_url=node.addr, timeout=10) as http:
            answer = http.get("/v1/sys/leader")
            assert answer.status_code == 200, answer.text
            return dict(answer.json())

    def active(self, among: list[ServerProcess] | None = None) -> ServerProcess | None:
        for node in among or self.nodes:
            if node.proc is None or node.proc.poll() is not None:
                continue
            try:
                if self.leader(node)["is_self"]:
                    return node
            except (httpx.HTTPError, AssertionError):
                continue
        return None

    def wait_active(self, among: list[ServerProcess] | None = None) -> ServerProcess:
        found: list[ServerProcess] = []

        def check() -> bool:
            node = self.active(among)
            if node is not None:
                found.append(node)
            return node is not None

        wait_until(check, what="an active node")
        return found[-1]

    def http(self, node: ServerProcess, token: str | None = None) -> httpx.Client:
        token = self.root_token if token is None else token
        headers = {"X-Vault-Token": token} if token else {}
        return httpx.Client(base_url=node.addr, headers=headers, timeout=30)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
