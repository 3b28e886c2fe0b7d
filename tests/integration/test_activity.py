"""Client counts over HTTP: sys/internal/counters/activity, …/monthly, …/export and
…/counters/config. An entity and a non-entity token are each counted once however many
requests they make; disabling counting stops new records."""

from __future__ import annotations

import csv
import io
import uuid

import hvac
import orjson
import pytest

from tests.serverproc import ServerProcess


def _monthly(root: hvac.Client) -> dict:  # type: ignore[type-arg]
    return root.read("sys/internal/counters/activity/monthly")["data"]  # type: ignore[no-any-return]


def _export(server: ServerProcess, fmt: str = "json") -> str:
    with server.http(server.root_token) as http:
        answer = http.get("/v1/sys/internal/counters/activity/export", params={"format": fmt})
    assert answer.status_code == 200, answer.text
    return answer.text


def _login(server: ServerProcess, root: hvac.Client, mount: str) -> tuple[hvac.Client, str]:
    name = f"u-{uuid.uuid4().hex[:8]}"
    root.auth.userpass.create_or_update_user(username=name, password="pw", mount_point=mount)
    client = server.client()
    entity = client.auth.userpass.login(username=name, password="pw", mount_point=mount)
    return client, entity["auth"]["entity_id"]


def test_clients_are_counted_once_per_month(
    dev_server: ServerProcess, root_client: hvac.Client
) -> None:
    mount = f"up-{uuid.uuid4().hex[:8]}"
    root_client.sys.enable_auth_method("userpass", path=mount)
    try:
        before = _monthly(root_client)
        user, entity_id = _login(dev_server, root_client, mount)
        for _ in range(3):
            user.auth.token.lookup_self()
        policy = f"p-{uuid.uuid4().hex[:8]}"
        token = root_client.auth.token.create(policies=[policy], no_parent=True)["auth"]
        other = dev_server.client(token["client_token"])
        for _ in range(2):
            other.auth.token.lookup_self()
        after = _monthly(root_client)
        assert after["entity_clients"] == before["entity_clients"] + 1
        assert after["non_entity_clients"] == before["non_entity_clients"] + 1
        assert after["clients"] == before["clients"] + 2
        mounts = {m["mount_path"] for m in after["by_namespace"][0]["mounts"]}
        assert f"auth/{mount}/" in mounts and "auth/token/" in mounts

        report = root_client.read("sys/internal/counters/activity")["data"]
        assert report["total"]["clients"] >= 2 and len(report["months"]) == 12
        assert report["months"][-1]["counts"]["clients"] == after["clients"]

        lines = [orjson.loads(line) for line in _export(dev_server).splitlines()]
        mine = [r for r in lines if r["client_id"] == entity_id]
        assert len(mine) == 1 and mine[0]["client_type"] == "entity"
        assert mine[0]["mount_path"] == f"auth/{mount}/" and mine[0]["namespace_id"] == "root"
        rows = list(csv.DictReader(io.StringIO(_export(dev_server, "csv"))))
        assert any(r["client_id"] == entity_id for r in rows)
    finally:
        root_client.sys.disable_auth_method(mount)


def test_config_and_disabling(dev_server: ServerProcess, root_client: hvac.Client) -> None:
    config = root_client.read("sys/internal/counters/config")["data"]
    assert config["enabled"] == "default-enabled" and config["retention_months"] >= 48
    mount = f"up-{uuid.uuid4().hex[:8]}"
    root_client.sys.enable_auth_method("userpass", path=mount)
    try:
        root_client.write_data(
            "sys/internal/counters/config", data={"enabled": "disable", "retention_months": 60}
        )
        assert root_client.read("sys/internal/counters/config")["data"] == {
            **config,
            "enabled": "disable",
            "retention_months": 60,
        }
        before = _monthly(root_client)["clients"]
        user, _ = _login(dev_server, root_client, mount)
        user.auth.token.lookup_self()
        assert _monthly(root_client)["clients"] == before
    finally:
        root_client.write_data(
            "sys/internal/counters/config", data={"enabled": "default", "retention_months": 48}
        )
        root_client.sys.disable_auth_method(mount)
    for bad in ({"retention_months": 12}, {"enabled": "sometimes"}):
        with pytest.raises(hvac.exceptions.InvalidRequest):
            root_client.write_data("sys/internal/counters/config", data=bad)


def test_time_range_checks(dev_server: ServerProcess) -> None:
    with dev_server.http(dev_server.root_token) as http:
        ok = http.get(
            "/v1/sys/internal/counters/activity",
            params={"start_time": "2024-01-01T00:00:00Z", "end_time": "2024-03-31T00:00:00Z"},
        )
        assert ok.status_code == 200
        months = [m["timestamp"] for m in ok.json()["data"]["months"]]
        assert months == ["2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z"]
        for params in (
            {"start_time": "yesterday"},
            {"start_time": "2024-05-01T00:00:00Z", "end_time": "2024-01-01T00:00:00Z"},
        ):
            bad = http.get("/v1/sys/internal/counters/activity", params=params)
            assert bad.status_code == 400, params
        fmt = http.get("/v1/sys/internal/counters/activity/export", params={"format": "xml"})
        assert fmt.status_code == 400
