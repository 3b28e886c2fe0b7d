"""sys/mounts, sys/auth, tune, remount, internal/ui/mounts over HTTP."""

from __future__ import annotations

import hvac
import hvac.exceptions
import pytest

from tests.serverproc import ServerProcess


def test_enable_list_tune_move_disable(root_client: hvac.Client, dev_server: ServerProcess) -> None:
    sys = root_client.sys
    sys.enable_secrets_engine("kv", path="apps", options={"version": "2"}, description="apps")
    mounts = sys.list_mounted_secrets_engines()["data"]
    assert mounts["apps/"]["type"] == "kv" and mounts["apps/"]["options"] == {"version": "2"}
    assert {"cubbyhole/", "sys/", "secret/"} <= set(mounts)
    sys.tune_mount_configuration("apps", default_lease_ttl="1h", max_lease_ttl="2h")
    tuned = sys.read_mount_configuration("apps")["data"]
    assert tuned["default_lease_ttl"] == 3600 and tuned["max_lease_ttl"] == 7200
    root_client.secrets.kv.v2.create_or_update_secret("x", {"a": "b"}, mount_point="apps")
    sys.move_backend("apps", "apps2")
    moved = root_client.secrets.kv.v2.read_secret_version(
        "x", mount_point="apps2", raise_on_deleted_version=True
    )
    assert moved["data"]["data"] == {"a": "b"}
    sys.disable_secrets_engine("apps2")
    assert "apps2/" not in sys.list_mounted_secrets_engines()["data"]
    # re-enabling at the same path starts empty: disabling removed the data
    sys.enable_secrets_engine("kv", path="apps2", options={"version": "2"})
    with pytest.raises(hvac.exceptions.InvalidPath):
        root_client.secrets.kv.v2.read_secret_version(
            "x", mount_point="apps2", raise_on_deleted_version=True
        )
    sys.disable_secrets_engine("apps2")


def test_bad_mounts_rejected(root_client: hvac.Client) -> None:
    sys = root_client.sys
    with pytest.raises(hvac.exceptions.InvalidRequest):
        sys.enable_secrets_engine("nonsense", path="nope")
    with pytest.raises(hvac.exceptions.InvalidRequest):
        sys.enable_secrets_engine("kv", path="sys/evil")
    with pytest.raises(hvac.exceptions.InvalidRequest):
        sys.enable_secrets_engine("kv", path="secret")  # in use
    with pytest.raises(hvac.exceptions.InvalidRequest):
        sys.disable_secrets_engine("sys")


def test_auth_mount_listing(root_client: hvac.Client) -> None:
    auth = root_client.sys.list_auth_methods()["data"]
    assert auth["token/"]["type"] == "token"


def test_ui_mount_detects_kv_version(root_client: hvac.Client, dev_server: ServerProcess) -> None:
    http = dev_server.http(dev_server.root_token)
    data = http.get("/v1/sys/internal/ui/mounts/secret/some/path").json()["data"]
    assert data["path"] == "secret/" and data["options"]["version"] == "2"
    assert data["type"] == "kv"
