"""HA across server processes on one PostgreSQL database (storage "postgresql",
ha_enabled): the fenced lock, takeover, fencing of a paused active, and an active cut off
from the database. Real PostgreSQL, real server processes, real HTTP."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.ha.cluster import HACluster, wait_until
from tests.pg import PgCluster, pg_cluster_fixture
from tests.serverproc import ServerProcess, free_port
from tests.tcpproxy import TcpProxy

PG_HA_CONFIG = """
storage "postgresql" {{
  connection_url = "{url}"
  table = "{table}"
  ha_table = "{table}_locks"
  ha_enabled = "true"
  ha_lock_ttl = "{ttl}s"
  ha_echo_interval = "1s"
  max_parallel = 8
  retry_timeout = "1s"
}}
listener "tcp" {{
  address = "127.0.0.1:{port}"
  tls_disable = true
}}
api_addr = "http://127.0.0.1:{port}"
cluster_addr = "https://127.0.0.1:{cluster_port}"
disable_clustering = {disable_clustering}
"""

_TABLES = iter(range(1_000_000))


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[PgCluster]:
    yield from pg_cluster_fixture()


@dataclass
class PgHACluster(HACluster):
    pg: PgCluster | None = None
    table: str = ""

    def add_node(self, port_override: int | None = None) -> ServerProcess:
        assert self.pg is not None
        url = self.pg.dsn(self.pg.superuser, self.pg.superuser_password)
        if port_override is not None:  # through a proxy the test controls
            url = url.replace(f":{self.pg.port}/", f":{port_override}/")
        port, cluster_port = free_port(), free_port()
        config = self.workdir / f"node-{port}.hcl"
        config.write_text(
            PG_HA_CONFIG.format(
                url=url,
                table=self.table,
                ttl=self.ttl,
                port=port,
                cluster_port=cluster_port,
                disable_clustering=str(not self.clustering).lower(),
            )
        )
        node = ServerProcess([f"-config={config}"], port, self.workdir).start()
        node.cluster_port = cluster_port  # type: ignore[attr-defined]
        self.nodes.append(node)
        return node

    def unseal(self, node: ServerProcess) -> None:
        # seal status can read "sealed" for a moment while a fresh standby is promoted
        # (core reloads as the active node): submit the key, then wait for the node
        with httpx.Client(base_url=node.addr, timeout=30) as http:
            answer = http.put("/v1/sys/unseal", json={"key": self.unseal_key})
            assert answer.status_code == 200, answer.text

            def unsealed() -> bool:
                status = http.get("/v1/sys/seal-status")
                return status.status_code == 200 and status.json()["sealed"] is False

            wait_until(unsealed, 15, "unsealed")

    def leader(self, node: ServerProcess) -> dict[str, object]:
        # a standby that reloads (a mount change reached it through the feed) answers 503
        # "sealed" for a moment: ask again rather than fail
        deadline = time.monotonic() + 10
        while True:
            with httpx.Client(base_url=node.addr, timeout=10) as http:
                answer = http.get("/v1/sys/leader")
            if answer.status_code == 200 or time.monotonic() > deadline:
                assert answer.status_code == 200, answer.text
                return dict(answer.json())
            time.sleep(0.05)


@pytest.fixture
def cluster(pg_cluster: PgCluster, tmp_path: Path) -> Iterator[PgHACluster]:
    ha = PgHACluster(tmp_path, pg=pg_cluster, table=f"ha_{next(_TABLES)}")
    try:
        ha.add_node()
        ha.add_node()
        ha.init()
        yield ha
    finally:
        ha.stop()


def mount_kv(cluster: HACluster, node: ServerProcess) -> None:
    with cluster.http(node) as http:
        assert http.post("/v1/sys/mounts/secret", json={"type": "kv-v2"}).status_code == 204


def test_one_active_and_a_standby_that_reads_its_writes(cluster: PgHACluster) -> None:
    active = cluster.wait_active()
    standby = next(n for n in cluster.nodes if n is not active)
    mount_kv(cluster, active)
    wait_until(lambda: cluster.leader(standby)["leader_address"] == active.addr, 10, "leader")
    with cluster.http(active) as http:
        assert http.post("/v1/secret/data/a", json={"data": {"v": 1}}).status_code == 200
        made = http.post("/v1/auth/token/create", json={"policies": ["default"]})
        token = made.json()["auth"]["client_token"]
    with cluster.http(standby) as http:
        assert http.post("/v1/secret/data/b", json={"data": {"v": 2}}).status_code == 307
        read = http.get("/v1/secret/data/a")
        assert read.status_code == 200 and read.json()["data"]["data"] == {"v": 1}
    with cluster.http(standby, token) as http:
        assert http.get("/v1/auth/token/lookup-self").status_code == 200
    with cluster.http(active) as http:
        assert http.post("/v1/auth/token/revoke", json={"token": token}).status_code == 204
    with cluster.http(standby, token) as http:  # the change feed (NOTIFY) reaches it fast
        wait_until(lambda: http.get("/v1/auth/token/lookup-self").status_code == 403, 10, "revoke")


def test_a_killed_active_under_write_load_loses_no_acknowledged_write(
    cluster: PgHACluster,
) -> None:
    active = cluster.wait_active()
    mount_kv(cluster, active)
    acknowledged: list[int] = []
    stop = threading.Event()

    def load() -> None:
        with cluster.http(active) as http:
            i = 0
            while not stop.is_set():
                try:
                    answer = http.post(f"/v1/secret/data/w{i}", json={"data": {"i": i}})
                except httpx.HTTPError:
                    return  # the active died under us: this write is not acknowledged
                if answer.status_code == 200:
                    acknowledged.append(i)
                i += 1

    writer = threading.Thread(target=load)
    writer.start()
    wait_until(lambda: len(acknowledged) >= 30, 30, "writes")
    assert active.proc is not None
    os.kill(active.proc.pid, signal.SIGKILL)
    active.proc.wait()
    killed = time.monotonic()
    stop.set()
    writer.join(30)
    survivors = [n for n in cluster.nodes if n is not active]
    new_active = cluster.wait_active(survivors)
    assert time.monotonic() - killed < 5.0  # takeover within 5 s of the active dying
    with cluster.http(new_active) as http:
        for i in acknowledged:
            answer = http.get(f"/v1/secret/data/w{i}")
            assert answer.status_code == 200, (i, answer.text)
            assert answer.json()["data"]["data"] == {"i": i}
        assert http.post("/v1/secret/data/after", json={"data": {"ok": 1}}).status_code == 200


def test_a_paused_active_is_fenced_and_its_in_flight_write_fails(cluster: PgHACluster) -> None:
    active = cluster.wait_active()
    mount_kv(cluster, active)
    with cluster.http(active) as http:
        assert http.post("/v1/secret/data/p", json={"data": {"by": "first"}}).status_code == 200
    assert active.proc is not None
    os.kill(active.proc.pid, signal.SIGSTOP)
    late: list[httpx.Response] = []

    def in_flight() -> None:  # queued in the stopped server's socket, handled on SIGCONT
        with cluster.http(active) as http:
            late.append(http.post("/v1/secret/data/p", json={"data": {"by": "old"}}))

    sender = threading.Thread(target=in_flight)
    try:
        sender.start()
        survivors = [n for n in cluster.nodes if n is not active]
        new_active = cluster.wait_active(survivors)
        with cluster.http(new_active) as http:
            assert http.post("/v1/secret/data/p", json={"data": {"by": "new"}}).status_code == 200
    finally:
        os.kill(active.proc.pid, signal.SIGCONT)
    sender.join(30)
    assert late and late[0].status_code in (307, 503), late[0].text  # never acknowledged
    wait_until(lambda: cluster.leader(active)["is_self"] is False, 10, "step down")
    with cluster.http(new_active) as http:
        read = http.get("/v1/secret/data/p")
        assert read.json()["data"]["data"] == {"by": "new"}
        assert read.json()["data"]["metadata"]["version"] == 2  # the old write never landed


def test_an_active_cut_off_from_postgresql_stops_serving_writes(
    pg_cluster: PgCluster, tmp_path: Path
) -> None:
    proxy = TcpProxy("127.0.0.1", pg_cluster.port).start()
    ha = PgHACluster(tmp_path, pg=pg_cluster, table=f"ha_{next(_TABLES)}")
    try:
        cut_node = ha.add_node(port_override=proxy.port)  # its database link goes via proxy
        ha.init()
        assert ha.wait_active() is cut_node
        other = ha.add_node()
        ha.unseal(other)
        mount_kv(ha, cut_node)
        proxy.refuse = True
        proxy.cut()
        with ha.http(cut_node) as http:
            answer = http.post("/v1/secret/data/x", json={"data": {"v": "cut"}})
            assert answer.status_code in (307, 503), answer.text
        new_active = ha.wait_active([other])
        with ha.http(new_active) as http:
            assert http.post("/v1/secret/data/x", json={"data": {"v": "new"}}).status_code == 200
        proxy.refuse = False  # the link comes back: the old active is a standby now
        wait_until(lambda: ha.leader(cut_node)["is_self"] is False, 15, "step down")
        with ha.http(cut_node) as http:

            def redirected() -> bool:  # never written there; 503 while it reloads
                answer = http.post("/v1/secret/data/x", json={"data": {"v": "old"}})
                assert answer.status_code in (307, 503), answer.text
                return answer.status_code == 307

            wait_until(redirected, 15, "a redirect to the new active")
        with ha.http(new_active) as http:
            assert http.get("/v1/secret/data/x").json()["data"]["data"] == {"v": "new"}
    finally:
        ha.stop()
        proxy.stop()
