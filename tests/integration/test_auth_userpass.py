"""userpass through hvac over HTTP on the dev server: users, login, token, lockout."""

from __future__ import annotations

import hvac
import hvac.exceptions
import pytest

from tests.serverproc import ServerProcess

MOUNT = "userpass-it"


@pytest.fixture(scope="module")
def mount(dev_server: ServerProcess) -> str:
    root = dev_server.client(dev_server.root_token)
    root.sys.enable_auth_method("userpass", path=MOUNT)
    root.sys.create_or_update_policy("up-dev", 'path "secret/*" { capabilities = ["read"] }')
    return MOUNT


def test_login_mints_a_token_with_the_users_settings(
    dev_server: ServerProcess, root_client: hvac.Client, mount: str
) -> None:
    root_client.auth.userpass.create_or_update_user(
        "Alice", "s3cret-pw", policies=["up-dev"], mount_point=mount, token_ttl="30m"
    )
    listed = root_client.auth.userpass.list_user(mount_point=mount)["data"]["keys"]
    assert listed == ["alice"]
    read = root_client.auth.userpass.read_user("alice", mount_point=mount)["data"]
    assert read["token_policies"] == ["up-dev"] and "password" not in read

    client = dev_server.client()
    answer = client.auth.userpass.login("ALICE", "s3cret-pw", mount_point=mount)["auth"]
    assert answer["policies"] == ["default", "up-dev"]
    assert answer["metadata"] == {"username": "alice"}
    assert 1790 <= answer["lease_duration"] <= 1800
    info = client.auth.token.lookup_self()["data"]
    assert info["policies"] == ["default", "up-dev"]
    assert info["meta"] == {"username": "alice"}
    assert info["display_name"] == f"{mount}-alice"
    assert info["path"].startswith(f"auth/{mount}/login/")

    with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid username or password"):
        dev_server.client().auth.userpass.login("alice", "wrong", mount_point=mount)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid username or password"):
        dev_server.client().auth.userpass.login("nobody", "wrong", mount_point=mount)


def test_lockout_over_http(dev_server: ServerProcess, root_client: hvac.Client, mount: str) -> None:
    root_client.auth.userpass.create_or_update_user("bob", "right-pw", mount_point=mount)
    root_client.write(f"auth/{mount}/config/lockout", lockout_threshold=3)
    client = dev_server.client()
    for spelling in ("bob", "BOB", "Bob"):
        with pytest.raises(hvac.exceptions.InvalidRequest):
            client.auth.userpass.login(spelling, "guess", mount_point=mount)
    with pytest.raises(hvac.exceptions.Forbidden):
        client.auth.userpass.login("bob", "right-pw", mount_point=mount)
    root_client.write(f"auth/{mount}/config/lockout", disable_lockout=True)
    assert client.auth.userpass.login("bob", "right-pw", mount_point=mount)["auth"]


def test_password_change_and_delete(
    dev_server: ServerProcess, root_client: hvac.Client, mount: str
) -> None:
    root_client.auth.userpass.create_or_update_user("carol", "first", mount_point=mount)
    root_client.auth.userpass.update_password_on_user("carol", "second", mount_point=mount)
    client = dev_server.client()
    with pytest.raises(hvac.exceptions.InvalidRequest):
        client.auth.userpass.login("carol", "first", mount_point=mount)
    assert client.auth.userpass.login("carol", "second", mount_point=mount)["auth"]
    root_client.auth.userpass.delete_user("carol", mount_point=mount)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        dev_server.client().auth.userpass.login("carol", "second", mount_point=mount)
