"""sys/config/cors: off by default; allowed origins get CORS headers, others a 403 without them."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.serverproc import ServerProcess, start_dev_server


def _preflight(http: httpx.Client, origin: str, method: str = "GET") -> httpx.Response:
    return http.request(
        "OPTIONS",
        "/v1/secret/data/x",
        headers={"Origin": origin, "Access-Control-Request-Method": method},
    )


def test_cors_lifecycle(dev_server: ServerProcess) -> None:
    http = dev_server.http(dev_server.root_token)
    anon = dev_server.http()
    # off by default: an Origin header changes nothing
    assert http.get("/v1/sys/config/cors").json()["data"]["enabled"] is False
    plain = http.get("/v1/sys/mounts", headers={"Origin": "http://app.example"})
    assert plain.status_code == 200 and "access-control-allow-origin" not in plain.headers
    # a non-root token cannot configure it (sudo path)
    resp = http.put("/v1/sys/config/cors", json={"allowed_origins": []})
    assert resp.status_code == 400 and "at least one origin" in resp.json()["errors"][0]
    resp = http.put("/v1/sys/config/cors", json={"allowed_origins": ["*", "http://x"]})
    assert resp.status_code == 400
    resp = http.put(
        "/v1/sys/config/cors",
        json={"allowed_origins": ["http://app.example"], "allowed_headers": ["X-Custom"]},
    )
    assert resp.status_code == 204
    config = http.get("/v1/sys/config/cors").json()["data"]
    assert config["enabled"] is True and config["allowed_origins"] == ["http://app.example"]
    assert "X-Custom" in config["allowed_headers"] and "X-Vault-Token" in config["allowed_headers"]
    # preflight, answered without a token
    pre = _preflight(anon, "http://app.example")
    assert pre.status_code == 200
    assert pre.headers["access-control-allow-origin"] == "http://app.example"
    assert "LIST" in pre.headers["access-control-allow-methods"].split(",")
    assert "X-Custom" in pre.headers["access-control-allow-headers"].split(",")
    assert pre.headers["access-control-max-age"] == "300"
    assert _preflight(anon, "http://app.example", "PATCH").status_code == 405
    # an actual request from the allowed origin: headers on success and on errors
    ok = http.get("/v1/sys/mounts", headers={"Origin": "http://app.example"})
    assert ok.headers["access-control-allow-origin"] == "http://app.example"
    assert ok.headers["vary"] == "Origin"
    denied = anon.get("/v1/sys/mounts", headers={"Origin": "http://app.example"})
    assert denied.status_code == 403
    assert denied.headers["access-control-allow-origin"] == "http://app.example"
    # a disallowed origin: 403, no CORS header at all, and the request never ran
    for resp in (
        _preflight(anon, "http://evil.example"),
        http.get("/v1/sys/mounts", headers={"Origin": "http://evil.example"}),
    ):
        assert resp.status_code == 403
        assert resp.json() == {"errors": ["origin not allowed"]}
        assert not any(h.startswith("access-control-") for h in resp.headers)
    write = http.post(
        "/v1/cubbyhole/cors-probe", json={"a": "b"}, headers={"Origin": "http://evil.example"}
    )
    assert write.status_code == 403
    assert http.get("/v1/cubbyhole/cors-probe").status_code == 404
    # a wildcard allows any origin; DELETE turns CORS off again
    assert http.put("/v1/sys/config/cors", json={"allowed_origins": "*"}).status_code == 204
    assert _preflight(anon, "http://any.example").status_code == 200
    assert http.delete("/v1/sys/config/cors").status_code == 204
    assert http.get("/v1/sys/config/cors").json()["data"]["enabled"] is False
    after = http.get("/v1/sys/mounts", headers={"Origin": "http://evil.example"})
    assert after.status_code == 200 and "access-control-allow-origin" not in after.headers


def test_cors_config_survives_seal_and_unseal(tmp_path: Path) -> None:
    server = start_dev_server(tmp_path)
    try:
        http = server.http(server.root_token)
        resp = http.put("/v1/sys/config/cors", json={"allowed_origins": ["http://a.example"]})
        assert resp.status_code == 204
        assert http.put("/v1/sys/seal").status_code == 204
        unseal = http.put("/v1/sys/unseal", json={"key": server.unseal_key})
        assert unseal.json()["sealed"] is False
        assert http.get("/v1/sys/config/cors").json()["data"]["enabled"] is True
        assert _preflight(server.http(), "http://a.example").status_code == 200
        assert _preflight(server.http(), "http://b.example").status_code == 403
    finally:
        server.stop()
