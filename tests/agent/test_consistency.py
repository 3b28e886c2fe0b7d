"""``api_proxy { enforce_consistency, when_inconsistent }``: a real agent in front of the
performance standby of a real two-node HA cluster (two server processes on one SQLite
file). The agent keeps the newest ``X-Vault-Index`` it saw and sends it on; the standby
honours it (waits, 412, or the active with ``X-Vault-Inconsistent: forward-active-node``)."""

from __future__ import annotations

import base64
import concurrent.futures
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from strongroom.core.cluster import encode_index
from tests.agent.helpers import AgentProcess, wait_for, write_config
from tests.ha.cluster import HACluster
from tests.serverproc import ServerProcess, free_port

CONFIG = """
vault {
  address = "{addr}"
  retry { num_retries = 4 }
}
listener "tcp" {
  address = "127.0.0.1:{port}"
  tls_disable = true
}
api_proxy {
  enforce_consistency = "{enforce}"
  when_inconsistent = "{when}"
}
"""


def _cluster(workdir: Path) -> Iterator[HACluster]:
    ha = HACluster(workdir)
    try:
        ha.add_node()
        ha.add_node()
        ha.init()
        active = ha.wait_active()
        with ha.http(active) as http:
            assert http.post("/v1/sys/mounts/secret", json={"type": "kv-v2"}).status_code == 204
        yield ha
    finally:
        ha.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HACluster]:
    """One cluster for the when_inconsistent tests (each uses its own secret path)."""
    yield from _cluster(tmp_path_factory.mktemp("ha"))


@pytest.fixture
def audited_cluster(tmp_path: Path) -> Iterator[HACluster]:
    """A cluster of its own: once an audit device exists, standbys serve nothing locally."""
    workdir = tmp_path / "ha"
    workdir.mkdir()
    yield from _cluster(workdir)


def standby_of(cluster: HACluster) -> ServerProcess:
    active = cluster.wait_active()
    return next(node for node in cluster.nodes if node is not active)


def start_agent(tmp_path: Path, addr: str, enforce: str, when: str) -> tuple[AgentProcess, str]:
    port = free_port()
    path = write_config(
        tmp_path,
        CONFIG,
        f"agent-{enforce}-{when}.hcl",
        addr=addr,
        port=port,
        enforce=enforce,
        when=when,
    )
    agent = AgentProcess(path, tmp_path).start()
    url = f"http://127.0.0.1:{port}"

    def listening() -> bool:
        try:
            return httpx.get(url + "/v1/sys/health", timeout=2).status_code < 600
        except httpx.TransportError:
            return False

    wait_for(listening, 30, lambda: "the proxy\n" + agent.log())
    return agent, url


def index_of(value: str) -> int:
    return int(base64.urlsafe_b64decode(value).decode().split(":")[1])


def audit_entries(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def test_reads_through_the_agent_see_its_writes_and_carry_its_index(
    audited_cluster: HACluster, tmp_path: Path
) -> None:
    cluster = audited_cluster
    standby = standby_of(cluster)
    active = cluster.wait_active()
    agent, url = start_agent(tmp_path, standby.addr, "always", "forward")
    try:
        with httpx.Client(base_url=url, headers={"X-Vault-Token": cluster.root_token}) as http:
            # the standby serves the reads itself; writes reach the active (the agent
            # follows the standby's 307 once, as Vault's client does)
            for i in range(12):
                written = http.post("/v1/secret/data/ryw", json={"data": {"v": i}})
                assert written.status_code == 200, written.text
                assert "x-vault-index" in written.headers
                read = http.get("/v1/secret/data/ryw")
                assert read.status_code == 200 and read.json()["data"]["data"] == {"v": i}
            # what the agent sends: the audited request headers on the active (with an
            # audit device on, a standby sends every request to the active)
            log = tmp_path / "audit.log"
            with cluster.http(active) as admin:
                enabled = admin.put(
                    "/v1/sys/audit/file", json={"type": "file", "options": {"file_path": str(log)}}
                )
                assert enabled.status_code == 204
                for name in ("X-Vault-Index", "X-Vault-Inconsistent"):
                    answer = admin.put(
                        f"/v1/sys/config/auditing/request-headers/{name}", json={"hmac": False}
                    )
                    assert answer.status_code == 204
            written = http.post("/v1/secret/data/ryw", json={"data": {"v": "audited"}})
            assert written.status_code == 200, written.text
            index = written.headers["x-vault-index"]
            read = http.get("/v1/secret/data/ryw", params={"marker": "1"})
            assert read.status_code == 200 and read.json()["data"]["data"] == {"v": "audited"}

            def read_entry() -> dict[str, object] | None:
                for entry in audit_entries(log):
                    request = entry.get("request")
                    if (
                        entry.get("type") == "request"
                        and isinstance(request, dict)
                        and request.get("operation") == "read"
                        and request.get("path") == "secret/data/ryw"
                    ):
                        return request
                return None

            request = wait_for(read_entry, 10, "the audited read")
            assert request["headers"] == {
                "x-vault-index": [index],
                "x-vault-inconsistent": ["forward-active-node"],
            }
    finally:
        agent.stop()


@pytest.mark.parametrize("when", ["fail", "retry", "forward"])
def test_when_inconsistent(cluster: HACluster, tmp_path: Path, when: str) -> None:
    """A read asking for an index the standby has not reached (two writes ahead of the
    store): "fail" passes the 412 on, "retry" retries until the standby has it, "forward"
    has the active answer."""
    standby = standby_of(cluster)
    active = cluster.wait_active()
    agent, url = start_agent(tmp_path, standby.addr, "always", when)
    try:
        with httpx.Client(
            base_url=url, headers={"X-Vault-Token": cluster.root_token}, timeout=30
        ) as http:
            secret = f"/v1/secret/data/lag-{when}"
            written = http.post(secret, json={"data": {"v": 1}})
            assert written.status_code == 200, written.text
            ahead = encode_index(index_of(written.headers["x-vault-index"]) + 2)

            def read() -> httpx.Response:
                return http.get(secret, headers={"X-Vault-Index": ahead})

            if when == "fail":
                started = time.monotonic()
                answer = read()
                assert answer.status_code == 412, answer.text
                assert time.monotonic() - started < 3.0  # the standby's 1 s wait, no retries
                assert "HTTP 412; retry" not in agent.log()
            elif when == "forward":
                answer = read()
                assert answer.status_code == 200, answer.text
                assert answer.json()["data"]["data"] == {"v": 1}
                assert "HTTP 412" not in agent.log()
            else:
                with concurrent.futures.ThreadPoolExecutor(1) as pool:
                    pending = pool.submit(read)
                    agent.wait_log("HTTP 412; retry 1", timeout=15)
                    # two more writes (not through the agent): the standby reaches the index
                    with cluster.http(active) as admin:
                        for v in (2, 3):
                            answer = admin.post(secret, json={"data": {"v": v}})
                            assert answer.status_code == 200, answer.text
                    answer = pending.result(timeout=30)
                assert answer.status_code == 200, answer.text
                assert answer.json()["data"]["data"] == {"v": 3}
    finally:
        agent.stop()
