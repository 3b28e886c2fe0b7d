"""Policies and ACL enforcement over HTTP: deny by default, deny wins, LIST vs deny,
sudo paths, capabilities endpoints, name normalisation."""

from __future__ import annotations

import hvac
import hvac.exceptions
import pytest

from tests.serverproc import ServerProcess

TEAM_POLICY = """
path "secret/data/team/*" {
  capabilities = ["create", "read", "update"]
}
path "secret/metadata/team/*" {
  capabilities = ["list"]
}
path "secret/data/team/locked" {
  capabilities = ["deny"]
}
path "secret/metadata/team/hidden/*" {
  capabilities = ["deny"]
}
"""


def _token(root: hvac.Client, *policies: str) -> str:
    return str(root.auth.token.create(policies=list(policies), ttl="1h")["auth"]["client_token"])


def test_policy_crud_and_enforcement(root_client: hvac.Client, dev_server: ServerProcess) -> None:
    root_client.sys.create_or_update_acl_policy("team", TEAM_POLICY)
    assert "team" in root_client.sys.list_acl_policies()["data"]["keys"]
    assert root_client.sys.read_acl_policy("team")["data"]["policy"] == TEAM_POLICY
    client = dev_server.client(_token(root_client, "team"))
    kv = client.secrets.kv.v2
    kv.create_or_update_secret("team/app", {"k": "v"}, mount_point="secret")
    assert kv.read_secret_version("team/app", mount_point="secret", raise_on_deleted_version=True)[
        "data"
    ]["data"] == {"k": "v"}
    with pytest.raises(hvac.exceptions.Forbidden):
        kv.create_or_update_secret("other/app", {"k": "v"}, mount_point="secret")
    with pytest.raises(hvac.exceptions.Forbidden):
        kv.read_secret_version("team/locked", mount_point="secret", raise_on_deleted_version=True)
    assert kv.list_secrets("team", mount_point="secret")["data"]["keys"] == ["app"]
    with pytest.raises(hvac.exceptions.Forbidden):
        kv.list_secrets("team/hidden", mount_point="secret")
    with pytest.raises(hvac.exceptions.Forbidden):
        kv.delete_metadata_and_all_versions("team/app", mount_point="secret")


def test_invalid_policy_reports_line(root_client: hvac.Client) -> None:
    with pytest.raises(hvac.exceptions.InvalidRequest) as info:
        root_client.sys.create_or_update_acl_policy(
            "bad", 'path "x" {\n  capabilities = ["fly"]\n}'
        )
    assert "fly" in str(info.value) or "capabilit" in str(info.value)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        root_client.sys.create_or_update_acl_policy("bad", 'path "x" {\n  capabilities = [\n')


def test_root_policy_cannot_be_shadowed(root_client: hvac.Client) -> None:
    for name in ("root", "ROOT", " root"):
        with pytest.raises(hvac.exceptions.InvalidRequest):
            root_client.sys.create_or_update_acl_policy(
                name, 'path "*" { capabilities = ["read"] }'
            )


def test_sudo_paths_need_sudo(root_client: hvac.Client, dev_server: ServerProcess) -> None:
    root_client.sys.create_or_update_acl_policy(
        "mounter", 'path "sys/auth/*" { capabilities = ["create", "update", "read"] }'
    )
    client = dev_server.client(_token(root_client, "mounter"))
    with pytest.raises(hvac.exceptions.Forbidden):
        client.sys.enable_auth_method("token", path="other")


def test_capabilities_endpoints(root_client: hvac.Client, dev_server: ServerProcess) -> None:
    root_client.sys.create_or_update_acl_policy("team", TEAM_POLICY)
    token = _token(root_client, "team")
    http = dev_server.http(dev_server.root_token)
    caps = http.post(
        "/v1/sys/capabilities", json={"token": token, "paths": ["secret/data/team/x"]}
    ).json()
    assert caps["data"]["capabilities"] == ["create", "read", "update"]
    own = dev_server.http(token).post(
        "/v1/sys/capabilities-self", json={"paths": ["secret/data/team/locked"]}
    )
    assert own.json()["data"]["capabilities"] == ["deny"]
    accessor = root_client.auth.token.lookup(token)["data"]["accessor"]
    by_accessor = http.post(
        "/v1/sys/capabilities-accessor", json={"accessor": accessor, "path": "sys/mounts"}
    ).json()
    assert by_accessor["data"]["capabilities"] == ["deny"]


def test_default_policy_allows_self_lookup(
    root_client: hvac.Client, dev_server: ServerProcess
) -> None:
    client = dev_server.client(_token(root_client, "default"))
    assert client.auth.token.lookup_self()["data"]["policies"] == ["default"]
    with pytest.raises(hvac.exceptions.Forbidden):
        client.sys.list_mounted_secrets_engines()
