"""sys/metrics: authenticated, Vault's JSON shape, and Prometheus text."""

from __future__ import annotations

from tests.serverproc import ServerProcess


def test_metrics_json_and_prometheus(dev_server: ServerProcess) -> None:
    assert dev_server.http().get("/v1/sys/metrics").status_code == 403
    http = dev_server.http(dev_server.root_token)
    body = http.get("/v1/sys/metrics").json()
    names = {gauge["Name"] for gauge in body["Gauges"]}
    assert "expire.num_leases" in names
    counters = {counter["Name"] for counter in body["Counters"]}
    assert {"expire.revoke_failures", "expire.revoked"} <= counters
    text = http.get("/v1/sys/metrics", params={"format": "prometheus"})
    assert text.status_code == 200
    assert text.headers["content-type"].startswith("text/plain")
    assert "# TYPE strongroom_expire_revoke_failures counter" in text.text
    assert http.get("/v1/sys/metrics", params={"format": "xml"}).status_code == 400
