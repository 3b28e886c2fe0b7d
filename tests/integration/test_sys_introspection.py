"""sys/ endpoints a tool or UI asks about the server: version-history, host-info,
in-flight-req, internal counters, irrevocable leases, plugins catalog, loggers,
rotate/config, rekey backups."""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time
from pathlib import Path

import httpx
import hvac
import pytest

from tests.serverproc import ServerProcess, start_dev_server


@pytest.fixture
def http(dev_server: ServerProcess) -> httpx.Client:
    return dev_server.http(dev_server.root_token)


def test_version_history(http: httpx.Client, root_client: hvac.Client) -> None:
    import strongroom

    listed = http.request("LIST", "/v1/sys/version-history").json()["data"]
    assert strongroom.__version__ in listed["keys"]
    info = listed["key_info"][strongroom.__version__]
    assert info["timestamp_installed"].endswith("Z") and "previous_version" in info
    again = http.request("LIST", "/v1/sys/version-history").json()["data"]
    assert again["key_info"] == listed["key_info"]  # recorded once


def test_host_info_and_counters(http: httpx.Client) -> None:
    host = http.get("/v1/sys/host-info").json()["data"]
    assert host["host"]["hostname"] and host["memory"]["total"] > 0
    assert host["cpu"] and host["disk"][0]["total"] > 0
    tokens = http.get("/v1/sys/internal/counters/tokens").json()["data"]
    assert tokens["counters"]["service_tokens"]["total"] >= 1
    entities = http.get("/v1/sys/internal/counters/entities").json()["data"]
    assert entities["counters"]["entities"]["total"] >= 0
    removed = http.get("/v1/sys/internal/counters/requests")
    assert removed.status_code == 400 and "removed" in removed.json()["errors"][0]
    assert http.get("/v1/sys/host-info", headers={"X-Vault-Token": ""}).status_code == 403


def test_in_flight_requests_are_listed(dev_server: ServerProcess, http: httpx.Client) -> None:
    # a request held open (its body not yet sent) is in flight while we ask
    started = threading.Event()

    def slow_body():  # type: ignore[no-untyped-def]
        started.set()
        yield b'{"data": {'
        done.wait(10)
        yield b'"a": "b"}}'

    done = threading.Event()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(
            lambda: dev_server.http(dev_server.root_token).post(
                "/v1/secret/data/in-flight", content=slow_body()
            )
        )
        started.wait(10)
        seen = False
        for _ in range(50):
            listing = http.get("/v1/sys/in-flight-req").json()
            paths = {v["request_path"] for v in listing.values()}
            if "/v1/secret/data/in-flight" in paths:
                seen = True
                entry = next(v for v in listing.values() if v["request_path"].endswith("in-flight"))
                assert entry["request_method"] == "POST"
                assert entry["client_remote_address"].startswith("127.0.0.1:")
                break
        done.set()
        assert future.result().status_code == 200
    assert seen
    listing = http.get("/v1/sys/in-flight-req").json()
    assert "/v1/secret/data/in-flight" not in {v["request_path"] for v in listing.values()}


def test_irrevocable_leases_listing(http: httpx.Client) -> None:
    body = http.get("/v1/sys/leases", params={"type": "irrevocable"}).json()["data"]
    assert body == {"lease_count": 0, "leases": []}
    assert http.get("/v1/sys/leases").status_code == 404
    resp = http.get("/v1/sys/leases", params={"type": "irrevocable", "limit": "-1"})
    assert resp.status_code == 400


def test_plugin_catalog(http: httpx.Client) -> None:
    catalog = http.get("/v1/sys/plugins/catalog").json()["data"]
    assert {"userpass", "approle", "token"} <= set(catalog["auth"])
    assert {"kv", "transit", "database"} <= set(catalog["secret"])
    assert catalog["database"] == ["postgresql-database-plugin"]
    assert all(d["builtin"] for d in catalog["detailed"])
    keys = http.request("LIST", "/v1/sys/plugins/catalog/auth").json()["data"]["keys"]
    assert "userpass" in keys
    one = http.get("/v1/sys/plugins/catalog/secret/transit").json()["data"]
    assert one["name"] == "transit" and one["builtin"] is True
    assert http.get("/v1/sys/plugins/catalog/secret/nope").status_code == 404
    resp = http.put(
        "/v1/sys/plugins/catalog/secret/my-plugin", json={"sha256": "00" * 32, "command": "x"}
    )
    assert resp.status_code == 400 and "external plugins are not supported" in resp.text
    assert http.get("/v1/sys/plugins/catalog/secret/my-plugin").status_code == 404


def test_loggers_at_run_time(http: httpx.Client) -> None:
    levels = http.get("/v1/sys/loggers").json()["data"]
    assert "http" in levels and levels["http"] in ("debug", "info", "warn", "error")
    assert http.post("/v1/sys/loggers/http", json={"level": "debug"}).status_code == 204
    assert http.get("/v1/sys/loggers/http").json()["data"] == {"http": "debug"}
    assert http.post("/v1/sys/loggers", json={"level": "error"}).status_code == 204
    assert set(http.get("/v1/sys/loggers").json()["data"].values()) == {"error"}
    resp = http.post("/v1/sys/loggers", json={"level": "bogus"})
    assert resp.status_code == 400 and "invalid level" in resp.json()["errors"][0]
    assert http.get("/v1/sys/loggers/no-such").status_code == 400
    assert http.delete("/v1/sys/loggers").status_code == 204
    assert http.get("/v1/sys/loggers/http").json()["data"]["http"] == levels["http"]


def test_rotate_config_and_rekey_backup(http: httpx.Client) -> None:
    config = http.get("/v1/sys/rotate/config").json()["data"]
    assert config == {"enabled": True, "max_operations": 3865470566, "interval": 0}
    for body, message in (
        ({"max_operations": 100}, "must be in the range"),
        ({"interval": "1h"}, "greater or equal to 24h"),
    ):
        resp = http.post("/v1/sys/rotate/config", json=body)
        assert resp.status_code == 400 and message in resp.json()["errors"][0]
    body = {"max_operations": 2_000_000, "interval": "48h", "enabled": False}
    assert http.post("/v1/sys/rotate/config", json=body).status_code == 204
    config = http.get("/v1/sys/rotate/config").json()["data"]
    assert config == {"enabled": False, "max_operations": 2_000_000, "interval": 172800}
    http.post("/v1/sys/rotate/config", json={"enabled": True, "max_operations": 3865470566})
    for path in ("/v1/sys/rekey/backup", "/v1/sys/rekey-recovery-key/backup"):
        resp = http.get(path)
        assert resp.status_code == 400 and resp.json()["errors"] == ["no backed-up keys found"]
        assert http.delete(path).status_code == 204


def test_ui_resultant_acl_and_namespaces(dev_server: ServerProcess, http: httpx.Client) -> None:
    assert http.get("/v1/sys/internal/ui/resultant-acl").json()["data"] == {"root": True}
    http.put(
        "/v1/sys/policies/acl/ui-reader",
        json={
            "policy": 'path "secret/data/app" { capabilities = ["read"] }\n'
            'path "secret/data/team/*" { capabilities = ["read", "list"] }'
        },
    )
    token = http.post("/v1/auth/token/create", json={"policies": ["ui-reader"]}).json()["auth"]
    acl = dev_server.http(token["client_token"]).get("/v1/sys/internal/ui/resultant-acl")
    data = acl.json()["data"]
    assert data["root"] is False
    assert data["exact_paths"]["secret/data/app"] == {"capabilities": ["read"]}
    assert data["glob_paths"]["secret/data/team/"] == {"capabilities": ["list", "read"]}
    assert "sys/internal/ui/resultant-acl" in data["exact_paths"]  # the default policy
    assert dev_server.http().get("/v1/sys/internal/ui/resultant-acl").status_code == 403
    assert http.get("/v1/sys/internal/ui/namespaces").status_code == 200


def test_monitor_streams_log_records(tmp_path: Path) -> None:
    server = start_dev_server(tmp_path)
    try:
        http = server.http(server.root_token)
        assert http.get("/v1/sys/monitor", params={"log_level": "loud"}).status_code == 400
        assert server.http().get("/v1/sys/monitor").status_code == 403
        for fmt in ("standard", "json"):
            lines: list[str] = []
            with (
                server.http(server.root_token) as streaming,
                streaming.stream(
                    "GET", "/v1/sys/monitor", params={"log_level": "info", "log_format": fmt}
                ) as resp,
            ):
                assert resp.status_code == 200
                assert resp.headers["content-type"].startswith("text/plain")
                # something logs at info: a seal and an unseal
                assert http.put("/v1/sys/seal").status_code == 204
                http.put("/v1/sys/unseal", json={"key": server.unseal_key})
                for line in resp.iter_lines():
                    lines.append(line)
                    if "unsealed" in line:
                        break
            assert any("core sealed" in line for line in lines)
            if fmt == "json":
                record = json.loads(lines[-1])
                assert record["@level"] == "info" and "unsealed" in record["@message"]
        # the streams ended with their clients: no request is left in flight
        for _ in range(50):
            paths = {v["request_path"] for v in http.get("/v1/sys/in-flight-req").json().values()}
            if "/v1/sys/monitor" not in paths:
                break
            time.sleep(0.1)
        assert "/v1/sys/monitor" not in paths
    finally:
        server.stop()
