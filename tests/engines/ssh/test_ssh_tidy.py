"""ssh/tidy/dynamic-keys over HTTP: the host keys an older mount kept for Vault's removed
dynamic-key roles (planted here through sys/raw, which dev mode enables) are deleted."""

from __future__ import annotations

import uuid

from tests.serverproc import ServerProcess


def test_tidy_dynamic_keys_removes_leftover_host_keys(dev_server: ServerProcess) -> None:
    path = f"ssh-{uuid.uuid4().hex[:8]}"
    with dev_server.http(dev_server.root_token) as http:
        assert http.post(f"/v1/sys/mounts/{path}", json={"type": "ssh"}).status_code == 204
        try:
            mount_uuid = http.get(f"/v1/sys/mounts/{path}").json()["data"]["uuid"]
            empty = http.delete(f"/v1/{path}/tidy/dynamic-keys")
            assert empty.json()["data"] == {"message": "Removed 0 of 0 host keys."}
            for name in ("host-a", "host-b"):
                raw = f"/v1/sys/raw/logical/{mount_uuid}/keys/{name}"
                assert http.post(raw, json={"value": '{"key": "x"}'}).status_code == 204
            tidied = http.delete(f"/v1/{path}/tidy/dynamic-keys")
            assert tidied.status_code == 200
            assert tidied.json()["data"] == {"message": "Removed 2 of 2 host keys."}
            gone = http.get(f"/v1/sys/raw/logical/{mount_uuid}/keys/host-a")
            assert gone.status_code == 404
        finally:
            http.delete(f"/v1/sys/mounts/{path}")
