"""KV v1 and v2 through hvac over HTTP."""

from __future__ import annotations

import hvac
import hvac.exceptions
import pytest

from tests.serverproc import ServerProcess


def test_kv2_versions_lifecycle(root_client: hvac.Client) -> None:
    kv = root_client.secrets.kv.v2
    first = kv.create_or_update_secret("life/app", {"pw": "one"})["data"]
    assert first["version"] == 1 and first["deletion_time"] == "" and first["destroyed"] is False
    kv.create_or_update_secret("life/app", {"pw": "two"}, cas=1)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        kv.create_or_update_secret("life/app", {"pw": "three"}, cas=1)
    assert kv.read_secret_version("life/app", version=1, raise_on_deleted_version=True)["data"][
        "data"
    ] == {"pw": "one"}
    kv.patch("life/app", {"user": "u"})
    latest = kv.read_secret_version("life/app", raise_on_deleted_version=True)["data"]
    assert latest["data"] == {"pw": "two", "user": "u"} and latest["metadata"]["version"] == 3
    kv.delete_secret_versions("life/app", versions=[1])
    meta = kv.read_secret_metadata("life/app")["data"]
    assert meta["current_version"] == 3 and meta["versions"]["1"]["deletion_time"] != ""
    kv.undelete_secret_versions("life/app", versions=[1])
    assert kv.read_secret_version("life/app", version=1, raise_on_deleted_version=True)["data"][
        "data"
    ] == {"pw": "one"}
    kv.destroy_secret_versions("life/app", versions=[2])
    assert kv.read_secret_metadata("life/app")["data"]["versions"]["2"]["destroyed"] is True
    kv.update_metadata("life/app", max_versions=2, custom_metadata={"owner": "ops"})
    meta = kv.read_secret_metadata("life/app")["data"]
    assert meta["max_versions"] == 2 and meta["custom_metadata"] == {"owner": "ops"}
    kv.delete_latest_version_of_secret("life/app")
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_version("life/app", raise_on_deleted_version=True)
    assert "app" in kv.list_secrets("life")["data"]["keys"]
    kv.delete_metadata_and_all_versions("life/app")
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_metadata("life/app")


def test_kv2_config_and_subkeys(root_client: hvac.Client, dev_server: ServerProcess) -> None:
    kv = root_client.secrets.kv.v2
    kv.configure(max_versions=5, cas_required=False)
    assert kv.read_configuration()["data"]["max_versions"] == 5
    kv.create_or_update_secret("nested", {"a": {"b": {"c": 1}}, "d": 2})
    http = dev_server.http(dev_server.root_token)
    subkeys = http.get("/v1/secret/subkeys/nested", params={"depth": 2}).json()["data"]
    assert subkeys["subkeys"] == {"a": {"b": None}, "d": None}


def test_kv1(root_client: hvac.Client) -> None:
    root_client.sys.enable_secrets_engine("kv", path="kv1", options={"version": "1"})
    kv = root_client.secrets.kv.v1
    kv.create_or_update_secret("team/db", {"user": "u", "pw": "p"}, mount_point="kv1")
    read = kv.read_secret("team/db", mount_point="kv1")
    assert read["data"] == {"user": "u", "pw": "p"}
    # Vault's refresh hint: the mount's default lease TTL (768h), no lease, not renewable
    assert (read["lease_duration"], read["lease_id"], read["renewable"]) == (2764800, "", False)
    kv.create_or_update_secret("team/hinted", {"v": "x", "ttl": "90s"}, mount_point="kv1")
    assert kv.read_secret("team/hinted", mount_point="kv1")["lease_duration"] == 90
    with pytest.raises(hvac.exceptions.InvalidRequest, match="failed to parse ttl"):
        kv.create_or_update_secret("team/bad", {"ttl": "soon"}, mount_point="kv1")
    with pytest.raises(hvac.exceptions.InvalidPath):  # no lease under kv1/: LIST is a 404
        root_client.adapter.request("LIST", "/v1/sys/leases/lookup/kv1/")
    kv.delete_secret("team/hinted", mount_point="kv1")
    assert kv.list_secrets("team", mount_point="kv1")["data"]["keys"] == ["db"]
    kv.delete_secret("team/db", mount_point="kv1")
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret("team/db", mount_point="kv1")
    root_client.sys.disable_secrets_engine("kv1")
