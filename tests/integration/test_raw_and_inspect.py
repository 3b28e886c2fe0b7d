"""sys/raw/*, sys/internal/inspect/router/:tag and sys/config/state/sanitized over HTTP: on
in dev mode, off (Vault's "unsupported path") in a configured server unless the config's
``raw_storage_endpoint`` / ``introspection_endpoint`` turn them on; the seal records stay
out of reach; the sanitized configuration holds no storage secret."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import hvac
import pytest

from tests.serverproc import INMEM_CONFIG, ServerProcess, start_config_server


def test_raw_read_write_list_delete(dev_server: ServerProcess, root_client: hvac.Client) -> None:
    key = f"parity-test/{uuid.uuid4().hex[:8]}"
    with dev_server.http(dev_server.root_token) as http:
        assert http.post(f"/v1/sys/raw/{key}", json={"value": "hello"}).status_code == 204
        assert http.get(f"/v1/sys/raw/{key}").json()["data"] == {"value": "hello"}
        packed = base64.b64encode(b"\xff\x00bytes").decode()
        body = {"value": packed, "encoding": "base64"}
        assert http.post(f"/v1/sys/raw/{key}", json=body).status_code == 204
        assert http.get(f"/v1/sys/raw/{key}").status_code == 400  # not UTF-8 text
        read = http.get(f"/v1/sys/raw/{key}", params={"encoding": "base64"}).json()["data"]
        assert read == {"value": packed}
        listed = http.request("LIST", "/v1/sys/raw/parity-test/").json()["data"]["keys"]
        assert key.rpartition("/")[2] in listed
        assert http.delete(f"/v1/sys/raw/{key}").status_code == 204
        assert http.get(f"/v1/sys/raw/{key}").status_code == 404
        # the mount table is there, decrypted; the seal records are not reachable
        assert "secret/" in http.get("/v1/sys/raw/core/mounts").json()["data"]["value"]
        for reserved in ("core/keyring", "core/root-key", "core/seal-config"):
            assert http.get(f"/v1/sys/raw/{reserved}").status_code == 400
            assert http.post(f"/v1/sys/raw/{reserved}", json={"value": "x"}).status_code == 400
        # as Vault: no value writes an empty entry
        assert http.post(f"/v1/sys/raw/{key}", json={}).status_code == 204
        assert http.get(f"/v1/sys/raw/{key}").json()["data"] == {"value": ""}
        keyring = http.get("/v1/sys/raw/core/keyring").json()
        assert keyring == {"errors": ['cannot access "core/keyring"']}
        bad = {"value": "x", "compression_type": "lz4"}
        assert http.post(f"/v1/sys/raw/{key}", json=bad).status_code == 400
    # sudo: a token with a broad policy but no sudo is refused
    root_client.sys.create_or_update_acl_policy(
        "raw-no-sudo", 'path "sys/raw/*" { capabilities = ["read", "list"] }'
    )
    token = root_client.auth.token.create(policies=["raw-no-sudo"])["auth"]["client_token"]
    with dev_server.http(token) as http:
        assert http.get("/v1/sys/raw/core/mounts").status_code == 403


def test_inspect_router_and_sanitized(dev_server: ServerProcess) -> None:
    with dev_server.http(dev_server.root_token) as http:
        root = http.get("/v1/sys/internal/inspect/router/root").json()["data"]["root"]
        by_path = {entry["mount_path"]: entry for entry in root}
        assert by_path["secret/"]["mount_type"] == "kv"
        assert by_path["secret/"]["storage_prefix"] == f"logical/{by_path['secret/']['uuid']}/"
        assert by_path["token/"]["mount_type"] == "token"
        uuids = http.get("/v1/sys/internal/inspect/router/uuid").json()["data"]["uuid"]
        assert {e["uuid"] for e in uuids} == {e["uuid"] for e in root}
        assert "storage_prefix" not in uuids[0]
        assert http.get("/v1/sys/internal/inspect/router/bogus").status_code == 404
        state = http.get("/v1/sys/config/state/sanitized").json()["data"]
    assert state["raw_storage_endpoint"] is True and state["introspection_endpoint"] is True
    assert state["storage"]["type"] == "sqlite" and state["enable_ui"] is True
    assert state["listeners"][0]["config"]["address"] == dev_server.addr.removeprefix("http://")
    assert state["seals"] == [{"disabled": False, "type": "shamir"}]


@pytest.mark.parametrize("enabled", [False, True])
def test_config_switches(tmp_path: Path, enabled: bool) -> None:
    flag = "true" if enabled else "false"
    config = INMEM_CONFIG + f"\nraw_storage_endpoint = {flag}\nintrospection_endpoint = {flag}\n"
    server = start_config_server(tmp_path, config)
    try:
        client = server.client()
        init = client.sys.initialize(1, 1)
        client.sys.submit_unseal_key(init["keys"][0])
        with server.http(init["root_token"]) as http:
            raw = http.get("/v1/sys/raw/core/mounts")
            router = http.get("/v1/sys/internal/inspect/router/root")
            state = http.get("/v1/sys/config/state/sanitized").json()["data"]
        if enabled:
            assert raw.status_code == 200 and router.status_code == 200
        else:
            assert raw.status_code == 404 and "unsupported path" in raw.text
            assert router.status_code == 404 and "unsupported path" in router.text
        assert state["raw_storage_endpoint"] is enabled
        assert state["storage"] == {
            "type": "inmem",
            "redirect_addr": "",
            "cluster_addr": "",
            "disable_clustering": False,
        }
    finally:
        server.stop()
