"""AppRole through hvac over HTTP on the dev server: roles, secret IDs, login, token."""

from __future__ import annotations

import hvac
import hvac.exceptions
import pytest

from tests.serverproc import ServerProcess

MOUNT = "approle-it"


@pytest.fixture(scope="module")
def mount(dev_server: ServerProcess) -> str:
    root = dev_server.client(dev_server.root_token)
    root.sys.enable_auth_method("approle", path=MOUNT)
    return MOUNT


def test_login_with_role_and_secret_id(
    dev_server: ServerProcess, root_client: hvac.Client, mount: str
) -> None:
    approle = root_client.auth.approle
    approle.create_or_update_approle(
        "ci", token_policies=["ci-deploy"], token_ttl="20m", mount_point=mount
    )
    assert approle.list_roles(mount_point=mount)["data"]["keys"] == ["ci"]
    role_id = approle.read_role_id("ci", mount_point=mount)["data"]["role_id"]
    issued = approle.generate_secret_id("ci", metadata={"host": "runner-7"}, mount_point=mount)
    secret = issued["data"]
    assert set(secret) == {"secret_id", "secret_id_accessor", "secret_id_ttl", "secret_id_num_uses"}

    client = dev_server.client()
    answer = client.auth.approle.login(role_id, secret["secret_id"], mount_point=mount)["auth"]
    assert answer["policies"] == ["ci-deploy", "default"]
    assert 1190 <= answer["lease_duration"] <= 1200
    info = client.auth.token.lookup_self()["data"]
    assert info["meta"] == {"host": "runner-7", "role_name": "ci"}
    assert info["policies"] == ["ci-deploy", "default"]
    assert info["path"] == f"auth/{mount}/login"

    looked = approle.read_secret_id("ci", secret["secret_id"], mount_point=mount)["data"]
    assert looked["secret_id_accessor"] == secret["secret_id_accessor"]
    assert looked["metadata"] == {"host": "runner-7"}
    with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid role or secret ID"):
        dev_server.client().auth.approle.login(role_id, "not-the-secret", mount_point=mount)


def test_single_use_secret_id_and_accessor_scoping(
    dev_server: ServerProcess, root_client: hvac.Client, mount: str
) -> None:
    approle = root_client.auth.approle
    for role in ("one", "two"):
        approle.create_or_update_approle(role, secret_id_num_uses=1, mount_point=mount)
    one = approle.generate_secret_id("one", mount_point=mount)["data"]
    two = approle.generate_secret_id("two", mount_point=mount)["data"]
    # role two's path cannot reach role one's accessor
    with pytest.raises(hvac.exceptions.InvalidRequest, match="failed to find accessor"):
        approle.destroy_secret_id_accessor("two", one["secret_id_accessor"], mount_point=mount)
    accessors = approle.list_secret_id_accessors("one", mount_point=mount)["data"]["keys"]
    assert accessors == [one["secret_id_accessor"]]

    role_one = approle.read_role_id("one", mount_point=mount)["data"]["role_id"]
    client = dev_server.client()
    assert client.auth.approle.login(role_one, one["secret_id"], mount_point=mount)["auth"]
    with pytest.raises(hvac.exceptions.InvalidRequest):
        dev_server.client().auth.approle.login(role_one, one["secret_id"], mount_point=mount)

    approle.destroy_secret_id_accessor("two", two["secret_id_accessor"], mount_point=mount)
    role_two = approle.read_role_id("two", mount_point=mount)["data"]["role_id"]
    with pytest.raises(hvac.exceptions.InvalidRequest):
        dev_server.client().auth.approle.login(role_two, two["secret_id"], mount_point=mount)
