"""sys/metrics: authenticated, Vault's JSON shape, Prometheus text, and the telemetry stanza."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.serverproc import ServerProcess, start_config_server, start_dev_server


def _families(text: str) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    out: dict[str, list[tuple[str, dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        out[family.name] = [(s.name, s.labels, s.value) for s in family.samples]
    return out


def test_metrics_json_and_prometheus(dev_server: ServerProcess) -> None:
    assert dev_server.http().get("/v1/sys/metrics").status_code == 403
    http = dev_server.http(dev_server.root_token)
    http.post("/v1/secret/data/metrics-probe", json={"data": {"a": "b"}})
    for _ in range(3):
        assert http.get("/v1/secret/data/metrics-probe").status_code == 200
    assert http.get("/v1/secret/data/missing-probe").status_code == 404
    body = http.get("/v1/sys/metrics").json()
    gauges = {gauge["Name"]: gauge["Value"] for gauge in body["Gauges"]}
    assert gauges["core.unsealed"] == 1.0 and gauges["core.active"] == 1.0
    assert gauges["token.count"] >= 1 and "expire.num_leases" in gauges
    assert "expire.backlog" in gauges
    counters = {counter["Name"] for counter in body["Counters"]}
    assert {"expire.revoke_failures", "expire.revoked", "audit.device_failures"} <= counters
    samples = [s for s in body["Samples"] if s["Name"] == "http_request_duration_seconds"]
    reads = [
        s
        for s in samples
        if s["Labels"].get("mount") == "secret/"
        and s["Labels"]["method"] == "GET"
        and s["Labels"]["status"] == "200"
    ]
    assert reads and reads[0]["Count"] >= 3 and reads[0]["Mean"] > 0
    text = http.get("/v1/sys/metrics", params={"format": "prometheus"})
    assert text.status_code == 200
    assert text.headers["content-type"].startswith("text/plain")
    families = _families(text.text)
    counts = [
        (labels, value)
        for name, labels, value in families["strongroom_http_request_duration_seconds"]
        if name.endswith("_count")
    ]
    assert any(
        labels["mount"] == "secret/" and labels["status"] == "404" and value >= 1
        for labels, value in counts
    )
    assert any("host" in labels for labels, _ in counts)  # disable_hostname defaults to off
    assert "strongroom_storage_operation_seconds" in families
    assert families["strongroom_core_unsealed"][0][2] == 1.0
    assert "strongroom_expire_revoke_failures" in families
    assert http.get("/v1/sys/metrics", params={"format": "xml"}).status_code == 400


TELEMETRY_CONFIG = """
storage "inmem" {}
listener "tcp" {
  address = "127.0.0.1:{port}"
  tls_disable = true
  telemetry {
    unauthenticated_metrics_access = true
  }
}
telemetry {
  disable_hostname = true
  prometheus_retention_time = "12h"
}
"""


def test_telemetry_stanza(tmp_path: Path) -> None:
    server = start_config_server(tmp_path, TELEMETRY_CONFIG)
    try:
        anon = server.http()
        # unauthenticated access on this listener, even while sealed
        sealed = anon.get("/v1/sys/metrics")
        assert sealed.status_code == 200
        gauges = {g["Name"]: g["Value"] for g in sealed.json()["Gauges"]}
        assert gauges["core.unsealed"] == 0.0
        text = anon.get("/v1/sys/metrics", params={"format": "prometheus"}).text
        families = _families(text)
        counts = families["strongroom_http_request_duration_seconds"]
        assert counts and all("host" not in labels for _, labels, _ in counts)
        # other sys paths still need a token
        assert anon.get("/v1/sys/mounts").status_code in (403, 503)
    finally:
        server.stop()


def test_prometheus_off_with_zero_retention(tmp_path: Path) -> None:
    config = TELEMETRY_CONFIG.replace('"12h"', '"0s"')
    server = start_config_server(tmp_path, config)
    try:
        resp = server.http().get("/v1/sys/metrics", params={"format": "prometheus"})
        assert resp.status_code == 400 and "prometheus is not enabled" in resp.json()["errors"][0]
        assert server.http().get("/v1/sys/metrics").status_code == 200
    finally:
        server.stop()


def test_request_metrics_count_exactly_and_follow_mount_changes(tmp_path: Path) -> None:
    """Request observations are batched; a scrape sees every request so far, each under
    the mount it reached when it ran (a path answered before and after its mount exists
    is counted under both)."""

    server = start_dev_server(tmp_path)
    try:
        http = server.http(server.root_token)

        def reads(mount: str, status: str) -> int:
            samples = http.get("/v1/sys/metrics").json()["Samples"]
            return sum(
                int(s["Count"])
                for s in samples
                if s["Name"] == "http_request_duration_seconds"
                and s["Labels"] == {"method": "GET", "mount": mount, "status": status}
            )

        for _ in range(7):  # fewer than a batch: the scrape folds them in
            assert http.get("/v1/later/x").status_code in (400, 404)
        before = http.get("/v1/later/x").status_code
        assert reads("none", str(before)) == 8
        assert http.post("/v1/sys/mounts/later", json={"type": "kv"}).status_code == 204
        for _ in range(300):  # more than a batch
            assert http.get("/v1/later/x").status_code == 404
        assert reads("later/", "404") == 300
        assert reads("none", str(before)) == 8
        assert http.delete("/v1/sys/mounts/later").status_code == 204
        assert http.get("/v1/later/x").status_code == before
        assert reads("none", str(before)) == 9 and reads("later/", "404") == 300
    finally:
        server.stop()
