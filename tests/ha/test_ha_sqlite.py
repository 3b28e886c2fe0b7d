"""HA on one host: server processes sharing one SQLite file (ha_enabled), real HTTP.

One node is active (it holds the fenced lock), the others are performance standbys: they
serve reads themselves, send everything else to the active with Vault's 307 (these nodes
run with ``disable_clustering``; forwarding is tests/ha/test_ha_forwarding.py), and follow the
change feed so a revoked token or a tightened policy stops working on them promptly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import hvac
import pytest

from strongroom.core.cluster import encode_index
from tests.ha.cluster import HACluster, wait_until


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[HACluster]:
    ha = HACluster(tmp_path)
    try:
        ha.add_node()
        ha.add_node()
        ha.init()
        yield ha
    finally:
        ha.stop()


def test_one_active_standbys_redirect_writes_and_serve_reads(cluster: HACluster) -> None:
    active = cluster.wait_active()
    standby = next(n for n in cluster.nodes if n is not active)
    leader = cluster.leader(standby)
    assert leader["ha_enabled"] is True and leader["is_self"] is False
    assert leader["leader_address"] == active.addr
    assert leader["performance_standby"] is True
    assert cluster.leader(active)["is_self"] is True
    with cluster.http(active) as http:
        assert http.post("/v1/sys/mounts/secret", json={"type": "kv-v2"}).status_code == 204
    with cluster.http(standby) as http:
        # a write on the standby: Vault's 307 to the same path on the active
        answer = http.post("/v1/secret/data/a", json={"data": {"v": 1}})
        assert answer.status_code == 307
        assert answer.headers["location"] == active.addr + "/v1/secret/data/a"
        assert http.get("/v1/sys/health").status_code == 473
        assert http.get("/v1/sys/health?perfstandbyok=true").status_code == 200
    with cluster.http(active) as http:
        assert http.get("/v1/sys/health").status_code == 200
    # hvac follows the redirect: the client sees one answer
    client = hvac.Client(url=standby.addr, token=cluster.root_token)
    client.secrets.kv.v2.create_or_update_secret(path="a", secret={"v": 2})
    # the standby serves the read itself, and sees the write (read-your-writes)
    with cluster.http(standby) as http:
        answer = http.get("/v1/secret/data/a")
        assert answer.status_code == 200, answer.text
        assert answer.json()["data"]["data"] == {"v": 2}


@pytest.mark.parametrize("round_", range(3))
def test_revoked_tokens_and_tightened_policies_stop_working_on_standbys(
    cluster: HACluster, round_: int
) -> None:
    active = cluster.wait_active()
    standby = next(n for n in cluster.nodes if n is not active)
    with cluster.http(active) as http:
        assert http.post("/v1/sys/mounts/secret", json={"type": "kv-v2"}).status_code == 204
        assert http.post("/v1/secret/data/s", json={"data": {"k": "v"}}).status_code == 200
        policy = 'path "secret/data/s" { capabilities = ["read"] }'
        assert http.put("/v1/sys/policies/acl/reader", json={"policy": policy}).status_code == 204
        made = http.post("/v1/auth/token/create", json={"policies": ["reader"]})
        token = made.json()["auth"]["client_token"]
        other = http.post("/v1/auth/token/create", json={"policies": ["reader"]})
        other_token = other.json()["auth"]["client_token"]
    with cluster.http(standby, token) as reader, cluster.http(standby, other_token) as second:
        wait_until(lambda: reader.get("/v1/secret/data/s").status_code == 200, what="read")
        assert second.get("/v1/secret/data/s").status_code == 200
        with cluster.http(active) as http:
            assert http.post("/v1/auth/token/revoke", json={"token": token}).status_code == 204
        lag = wait_until(lambda: reader.get("/v1/secret/data/s").status_code == 403, 5, "revoke")
        assert lag < 1.0, lag  # documented bound: feed poll + stale bound, far below this
        with cluster.http(active) as http:
            tighter = 'path "secret/data/other" { capabilities = ["read"] }'
            answer = http.put("/v1/sys/policies/acl/reader", json={"policy": tighter})
            assert answer.status_code == 204
        wait_until(lambda: second.get("/v1/secret/data/s").status_code == 403, 5, "policy")


def test_a_killed_active_is_replaced_and_no_acknowledged_write_is_lost(
    cluster: HACluster,
) -> None:
    active = cluster.wait_active()
    with cluster.http(active) as http:
        assert http.post("/v1/sys/mounts/secret", json={"type": "kv-v2"}).status_code == 204
        for i in range(20):
            assert http.post(f"/v1/secret/data/k{i}", json={"data": {"i": i}}).status_code == 200
    assert active.proc is not None
    os.kill(active.proc.pid, signal.SIGKILL)
    active.proc.wait()
    killed = time.monotonic()
    survivors = [n for n in cluster.nodes if n is not active]
    new_active = cluster.wait_active(survivors)
    assert time.monotonic() - killed < 5.0  # takeover within 5 s of the active dying
    with cluster.http(new_active) as http:
        for i in range(20):
            answer = http.get(f"/v1/secret/data/k{i}")
            assert answer.status_code == 200 and answer.json()["data"]["data"] == {"i": i}
        assert http.post("/v1/secret/data/after", json={"data": {"ok": 1}}).status_code == 200
    # the killed node comes back as a standby of the new active
    cluster.restart(active)
    wait_until(lambda: cluster.leader(active)["leader_address"] == new_active.addr, 10, "leader")
    assert cluster.leader(active)["is_self"] is False
    with cluster.http(active) as http:
        answer = http.get("/v1/secret/data/after")
        assert answer.status_code == 200 and answer.json()["data"]["data"] == {"ok": 1}


def test_a_paused_active_steps_down_and_never_writes_after_a_takeover(
    cluster: HACluster,
) -> None:
    active = cluster.wait_active()
    with cluster.http(active) as http:
        assert http.post("/v1/sys/mounts/secret", json={"type": "kv-v2"}).status_code == 204
    assert active.proc is not None
    os.kill(active.proc.pid, signal.SIGSTOP)
    try:
        survivors = [n for n in cluster.nodes if n is not active]
        new_active = cluster.wait_active(survivors)
        with cluster.http(new_active) as http:
            answer = http.post("/v1/secret/data/p", json={"data": {"by": "new"}})
            assert answer.status_code == 200
    finally:
        os.kill(active.proc.pid, signal.SIGCONT)
    # woken up past its lock TTL, the former active finds its term over and stands by
    wait_until(lambda: cluster.leader(active)["is_self"] is False, 10, "step down")
    with cluster.http(active) as http:
        answer = http.post("/v1/secret/data/p", json={"data": {"by": "old"}})
        assert answer.status_code == 307
        assert answer.headers["location"].startswith(new_active.addr)
        read = http.get("/v1/secret/data/p")
        assert read.status_code == 200 and read.json()["data"]["data"] == {"by": "new"}


def _cli(node_addr: str, token: str, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "STRONGROOM_"))}
    env.update({"VAULT_ADDR": node_addr, "VAULT_TOKEN": token, "HOME": os.environ["HOME"]})
    return subprocess.run(
        [sys.executable, "-m", "strongroom.cli", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_operator_step_down_hands_over_and_status_shows_the_active(cluster: HACluster) -> None:
    active = cluster.wait_active()
    standby = next(n for n in cluster.nodes if n is not active)
    # sent to the standby: it is redirected to the active, which steps down
    done = _cli(standby.addr, cluster.root_token, "operator", "step-down")
    assert done.returncode == 0, done.stderr
    wait_until(lambda: cluster.active() is standby, 10, "the other node to take over")
    status = _cli(active.addr, cluster.root_token, "status")
    assert status.returncode == 0, status.stderr
    assert "HA Mode" in status.stdout and "standby" in status.stdout
    assert standby.addr in status.stdout
    # step-down needs sudo: a token without it is refused (on the active, after the 307)
    with cluster.http(standby) as http:
        made = http.post("/v1/auth/token/create", json={"policies": ["default"]})
        weak = made.json()["auth"]["client_token"]
    with cluster.http(standby, weak) as http:
        assert http.put("/v1/sys/step-down").status_code == 403
    assert cluster.active() is standby


def test_consistency_headers(cluster: HACluster) -> None:
    active = cluster.wait_active()
    standby = next(n for n in cluster.nodes if n is not active)
    with cluster.http(active) as http:
        assert http.post("/v1/sys/mounts/secret", json={"type": "kv-v2"}).status_code == 204
        written = http.post("/v1/secret/data/c", json={"data": {"v": 1}})
        assert written.status_code == 200
        index = written.headers["x-vault-index"]
        deleted = http.delete("/v1/secret/data/c")
        assert deleted.status_code == 204 and deleted.headers["x-vault-index"] != index
        assert "x-vault-index" not in http.get("/v1/secret/data/c").headers
    with cluster.http(standby) as http:
        answer = http.get("/v1/secret/metadata/c", headers={"X-Vault-Index": index})
        assert answer.status_code == 200
        # an index this standby will not reach: Vault's 412, or the active on request
        ahead = encode_index(10**9)
        assert (
            http.get("/v1/secret/metadata/c", headers={"X-Vault-Index": ahead}).status_code == 412
        )
        forward = http.get(
            "/v1/secret/metadata/c",
            headers={"X-Vault-Index": ahead, "X-Vault-Inconsistent": "forward-active-node"},
        )
        assert forward.status_code == 307  # separate nodes: Vault's redirect to the active
        assert forward.headers["location"] == active.addr + "/v1/secret/metadata/c"


def test_transit_is_served_by_standbys_and_follows_rotations(cluster: HACluster) -> None:
    active = cluster.wait_active()
    standby = next(n for n in cluster.nodes if n is not active)
    with cluster.http(active) as http:
        assert http.post("/v1/sys/mounts/transit", json={"type": "transit"}).status_code == 204
        assert http.post("/v1/transit/keys/k").status_code in (200, 204)
    plaintext = "aGVsbG8="
    with cluster.http(standby) as http:  # no redirect following: a 200 was served here
        wait_until(lambda: http.get("/v1/transit/keys/k").status_code == 200, 5, "key visible")
        first = http.post("/v1/transit/encrypt/k", json={"plaintext": plaintext})
        assert first.status_code == 200, first.text
        assert first.json()["data"]["ciphertext"].startswith("vault:v1:")
    with cluster.http(active) as http:
        assert http.post("/v1/transit/keys/k/rotate").status_code in (200, 204)
    with cluster.http(standby) as http:
        second = http.post("/v1/transit/encrypt/k", json={"plaintext": plaintext})
        assert second.status_code == 200
        assert second.json()["data"]["ciphertext"].startswith("vault:v2:")  # invalidated
        for ciphertext in (first, second):
            answer = http.post(
                "/v1/transit/decrypt/k",
                json={"ciphertext": ciphertext.json()["data"]["ciphertext"]},
            )
            assert answer.status_code == 200 and answer.json()["data"]["plaintext"] == plaintext
        # encrypting with a key that does not exist yet creates it: a write, so the
        # standby (fenced) sends it to the active (a 307 between separate nodes)
        created = http.post("/v1/transit/encrypt/new-key", json={"plaintext": plaintext})
        assert created.status_code == 307
        assert http.get("/v1/transit/keys/new-key").status_code == 404
