"""PostgreSQL itself fails over: a second PostgreSQL cluster streams (synchronously) from
the first; the server's connection URL names both hosts with
``target_session_attrs=read-write`` (libpq's multi-host URL). The primary is killed under
write load and the replica promoted: the server keeps serving, and no write it
acknowledged is lost. Real PostgreSQL clusters, a real server process, real HTTP."""

from __future__ import annotations

import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.ha.cluster import wait_until
from tests.pg import PgCluster, PgReplica, PgUnavailable
from tests.serverproc import ServerProcess, free_port

CONFIG = """
storage "postgresql" {{
  connection_url = "{url}"
  table = "failover_kv"
  ha_table = "failover_locks"
  ha_enabled = "true"
  ha_lock_ttl = "3s"
  max_parallel = 8
  retry_timeout = "2s"
}}
listener "tcp" {{
  address = "127.0.0.1:{port}"
  tls_disable = true
}}
api_addr = "http://127.0.0.1:{port}"
disable_mlock = true
"""


class SyncPrimary(PgCluster):
    """tests/pg.py's cluster, but a commit waits for the synchronous standby (named once
    the replica streams): what an operator runs when no acknowledged write may be lost."""

    def _pg_ctl(self, *args: str, check: bool) -> subprocess.CompletedProcess[str]:
        args = tuple(a.replace("synchronous_commit=off", "synchronous_commit=on") for a in args)
        return super()._pg_ctl(*args, check=check)

    def kill(self) -> None:
        """A crash: ``pg_ctl stop -m immediate`` (no shutdown checkpoint, clients cut)."""
        self._pg_ctl("stop", "-w", "-m", "immediate", check=False)


@pytest.fixture
def databases() -> Iterator[tuple[SyncPrimary, PgReplica]]:
    primary = SyncPrimary()
    replica: PgReplica | None = None
    try:
        try:
            primary.start()
            replica = PgReplica(primary).start()  # type: ignore[assignment]
        except PgUnavailable as exc:
            pytest.fail(str(exc), pytrace=False)
        assert replica is not None
        primary.query("ALTER SYSTEM SET synchronous_standby_names = '*'")
        primary.query("SELECT pg_reload_conf()")
        wait_until(
            lambda: bool(
                primary.query("SELECT 1 FROM pg_stat_replication WHERE sync_state = 'sync'")
            ),
            what="the replica to be synchronous",
        )
        yield primary, replica
    finally:
        if replica is not None:
            replica.destroy()
        primary.destroy()


def _url(primary: PgCluster, replica: PgCluster) -> str:
    quote = urllib.parse.quote
    user, password = quote(primary.superuser, safe=""), quote(primary.superuser_password, safe="")
    hosts = f"127.0.0.1:{primary.port},127.0.0.1:{replica.port}"
    return (
        f"postgresql://{user}:{password}@{hosts}/postgres"
        "?sslmode=disable&target_session_attrs=read-write&connect_timeout=2"
    )


def test_the_server_rides_a_postgresql_failover_and_loses_no_acknowledged_write(
    databases: tuple[SyncPrimary, PgReplica], tmp_path: Path
) -> None:
    primary, replica = databases
    port = free_port()
    config = tmp_path / "node.hcl"
    config.write_text(CONFIG.format(url=_url(primary, replica), port=port))
    server = ServerProcess([f"-config={config}"], port, tmp_path).start(timeout=60)
    try:
        http = httpx.Client(base_url=server.addr, timeout=30)
        init = http.put("/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1})
        assert init.status_code == 200, init.text
        root = init.json()["root_token"]
        unsealed = http.put("/v1/sys/unseal", json={"key": init.json()["keys_base64"][0]})
        assert unsealed.status_code == 200, unsealed.text
        http.headers["X-Vault-Token"] = root

        def mounted() -> bool:
            answer = http.post("/v1/sys/mounts/secret", json={"type": "kv-v2"})
            return answer.status_code == 204

        wait_until(mounted, 30, "the node active and the KV mount made")

        acknowledged: dict[str, int] = {}
        stop = threading.Event()

        def writer() -> None:
            with httpx.Client(base_url=server.addr, timeout=30) as client:
                client.headers["X-Vault-Token"] = root
                i = 0
                while not stop.is_set():
                    try:
                        answer = client.post(f"/v1/secret/data/w{i}", json={"data": {"i": i}})
                    except httpx.HTTPError:
                        answer = None
                    if answer is not None and answer.status_code == 200:
                        acknowledged[f"w{i}"] = i
                    i += 1
                    time.sleep(0.005)

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            wait_until(lambda: len(acknowledged) >= 20, 30, "writes before the failover")
            primary.kill()
            assert not (primary.datadir / "postmaster.pid").exists()  # really gone
            killed_at = len(acknowledged)
            replica.promote()
            # the server serves again on the promoted replica: new writes are acknowledged
            wait_until(lambda: len(acknowledged) >= killed_at + 20, 60, "writes after it")
        finally:
            stop.set()
            thread.join(30)
        # every acknowledged write is there, read through the server
        for key, i in acknowledged.items():
            read = http.get(f"/v1/secret/data/{key}")
            assert read.status_code == 200, (key, read.text)
            assert read.json()["data"]["data"] == {"i": i}
        # served by the promoted replica, the only database left
        assert replica.query("SELECT pg_is_in_recovery()") == [(False,)]
        rows = replica.query("SELECT count(*) FROM failover_kv")[0][0]
        assert rows > len(acknowledged)  # every secret, plus the mounts, keyring, tokens …
        http.close()
    finally:
        server.stop()
