"""What core does with login tokens: entity on login, renewal approved by the auth method,
bound CIDRs on every use, and sys/locked-users."""

from __future__ import annotations

import httpx
import hvac
import hvac.exceptions
import pytest

from tests.serverproc import ServerProcess


@pytest.fixture(scope="module")
def userpass(dev_server: ServerProcess) -> str:
    root_client = dev_server.client(dev_server.root_token)
    root_client.sys.enable_auth_method("userpass", path="life-up")
    root_client.sys.create_or_update_acl_policy(
        "life", 'path "secret/*" { capabilities = ["read"] }'
    )
    return str(root_client.sys.list_auth_methods()["data"]["life-up/"]["accessor"])


def test_renewal_asks_the_auth_method(
    root_client: hvac.Client, dev_server: ServerProcess, userpass: str
) -> None:
    root_client.write("auth/life-up/users/alice", password="pw-alice-1", token_policies="life")
    client = dev_server.client()
    login = client.auth.userpass.login("alice", "pw-alice-1", mount_point="life-up")["auth"]
    assert login["entity_id"]
    user = dev_server.client(login["client_token"])
    assert user.auth.token.renew_self()["auth"]["client_token"] == login["client_token"]
    root_client.write("auth/life-up/users/alice/policies", token_policies="default")
    with pytest.raises(hvac.exceptions.InvalidRequest):
        user.auth.token.renew_self()


def test_lockout_listed_and_unlocked(
    root_client: hvac.Client, dev_server: ServerProcess, userpass: str
) -> None:
    root_client.write("auth/life-up/users/bob", password="pw-bob-1", token_policies="life")
    client = dev_server.client()
    for _ in range(5):
        with pytest.raises(hvac.exceptions.VaultError):
            client.auth.userpass.login("bob", "wrong", mount_point="life-up")
    with pytest.raises(hvac.exceptions.VaultError):
        client.auth.userpass.login(" BOB ", "pw-bob-1", mount_point="life-up")
    http = dev_server.http(dev_server.root_token)
    locked = http.get("/v1/sys/locked-users").json()["data"]
    assert locked["total"] >= 1
    identifiers = locked["by_namespace"][0]["mount_accessors"][0]["alias_identifiers"]
    assert "bob" in identifiers
    assert http.post(f"/v1/sys/locked-users/{userpass}/unlock/bob").status_code == 204
    assert client.auth.userpass.login("bob", "pw-bob-1", mount_point="life-up")["auth"]


def test_bound_cidrs_apply_to_every_use(
    root_client: hvac.Client, dev_server: ServerProcess
) -> None:
    root_client.sys.enable_auth_method("approle", path="life-ar")
    root_client.write("auth/life-ar/role/near", token_bound_cidrs="127.0.0.2/32", token_ttl="1h")
    role_id = root_client.read("auth/life-ar/role/near/role-id")["data"]["role_id"]
    secret_id = root_client.write("auth/life-ar/role/near/secret-id")["data"]["secret_id"]
    login = {"role_id": role_id, "secret_id": secret_id}
    # a login from outside the bound network is refused (as Vault's approle does)
    assert dev_server.http().post("/v1/auth/life-ar/login", json=login).status_code == 403
    # from 127.0.0.2 it works, and the token then works only from there
    inside = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(base_url=dev_server.addr, transport=inside) as near:
        token = near.post("/v1/auth/life-ar/login", json=login).json()["auth"]["client_token"]
        lookup = near.get("/v1/auth/token/lookup-self", headers={"X-Vault-Token": token})
        assert lookup.status_code == 200
    assert dev_server.http(token).get("/v1/auth/token/lookup-self").status_code == 403
