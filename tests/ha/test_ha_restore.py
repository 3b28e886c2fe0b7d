"""A snapshot restored on the active reaches the standbys through the change feed (real
processes on one SQLite file, ha_enabled): a snapshot of this cluster reloads them with the
same keys; another cluster's snapshot, forced, seals them cleanly, saying why in sys/health,
until they are unsealed with that cluster's keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.ha.cluster import HACluster, wait_until


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[HACluster]:
    ha = HACluster(tmp_path / "main")
    (tmp_path / "main").mkdir()
    try:
        ha.add_node()
        ha.add_node()
        ha.init()
        yield ha
    finally:
        ha.stop()


def _health(node: object) -> dict[str, object]:
    with httpx.Client(base_url=node.addr, timeout=10) as http:  # type: ignore[attr-defined]
        return dict(http.get("/v1/sys/health").json())


def _write(ha: HACluster, node: object, path: str, data: dict[str, str], token: str = "") -> None:
    with ha.http(node, token or None) as http:  # type: ignore[arg-type]
        answer = http.post(f"/v1/secret/data/{path}", json={"data": data}, follow_redirects=True)
        assert answer.status_code == 200, answer.text


def _read(ha: HACluster, node: object, path: str, token: str = "") -> httpx.Response:
    with ha.http(node, token or None) as http:  # type: ignore[arg-type]
        return http.get(f"/v1/secret/data/{path}")


def _snapshot(ha: HACluster, node: object) -> bytes:
    with ha.http(node) as http:  # type: ignore[arg-type]
        answer = http.get("/v1/sys/storage/snapshot")
        assert answer.status_code == 200, answer.text
        return answer.content


def _mount_kv(ha: HACluster, node: object) -> None:
    with ha.http(node) as http:  # type: ignore[arg-type]
        answer = http.post("/v1/sys/mounts/secret", json={"type": "kv-v2"}, follow_redirects=True)
        assert answer.status_code == 204, answer.text


def test_a_restore_of_this_clusters_snapshot_reloads_the_standby(cluster: HACluster) -> None:
    active = cluster.wait_active()
    standby = next(n for n in cluster.nodes if n is not active)
    _mount_kv(cluster, active)
    _write(cluster, active, "kept", {"v": "1"})
    snapshot = _snapshot(cluster, active)
    _write(cluster, active, "kept", {"v": "2"})
    _write(cluster, active, "later", {"v": "x"})
    wait_until(lambda: _read(cluster, standby, "later").status_code == 200, what="standby read")
    with cluster.http(active) as http:
        assert http.post("/v1/sys/storage/snapshot", content=snapshot).status_code == 204
    active = cluster.wait_active()

    def restored() -> bool:
        kept, later = _read(cluster, standby, "kept"), _read(cluster, standby, "later")
        return (
            kept.status_code == 200
            and kept.json()["data"]["data"] == {"v": "1"}
            and later.status_code == 404
        )

    wait_until(restored, what="the standby serving the restored data")
    assert _health(standby)["sealed"] is False  # same keys: no unseal needed
    assert "seal_reason" not in _health(standby)


def test_a_forced_foreign_restore_seals_the_standby_and_says_why(
    cluster: HACluster, tmp_path: Path
) -> None:
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    other = HACluster(other_dir)
    try:
        node = other.add_node()
        other.init()
        other.wait_active()
        _mount_kv(other, node)
        _write(other, node, "foreign", {"from": "other"})
        foreign = _snapshot(other, node)
        other_key, other_root = other.unseal_key, other.root_token
    finally:
        other.stop()

    active = cluster.wait_active()
    standby = next(n for n in cluster.nodes if n is not active)
    with cluster.http(active) as http:
        refused = http.post("/v1/sys/storage/snapshot", content=foreign)
        assert refused.status_code == 400
        forced = http.post("/v1/sys/storage/raft/snapshot-force", content=foreign)
        assert forced.status_code == 204, forced.text

    def sealed_with_reason(node: object) -> bool:
        health = _health(node)
        return health["sealed"] is True and "another cluster" in str(health.get("seal_reason"))

    wait_until(lambda: sealed_with_reason(standby), 10, "the standby sealed, saying why")
    wait_until(lambda: sealed_with_reason(active), 10, "the former active sealed, saying why")
    with httpx.Client(base_url=standby.addr, timeout=10) as http:
        answer = http.get("/v1/sys/health")
        assert answer.status_code == 503
        # our old token no longer means anything there
        assert (
            http.get(
                "/v1/secret/data/foreign", headers={"X-Vault-Token": cluster.root_token}
            ).status_code
            == 503
        )
    # the other cluster's keys unseal both; its token reads its secret on the standby
    cluster.unseal_key = other_key
    for node in cluster.nodes:
        cluster.unseal(node)
    cluster.root_token = other_root
    cluster.wait_active()
    assert "seal_reason" not in _health(standby)

    def foreign_on_standby() -> bool:
        read = _read(cluster, standby, "foreign", other_root)
        return read.status_code == 200 and read.json()["data"]["data"] == {"from": "other"}

    wait_until(foreign_on_standby, what="the standby serving the foreign cluster's data")
