"""Response wrapping over HTTP: X-Vault-Wrap-TTL, unwrap once, lookup, rewrap, wrap, and
the policy bounds on wrapping TTLs."""

from __future__ import annotations

import hvac
import hvac.exceptions
import pytest

from tests.serverproc import ServerProcess


def test_wrap_and_unwrap_once(root_client: hvac.Client, dev_server: ServerProcess) -> None:
    root_client.secrets.kv.v2.create_or_update_secret("wrapme", {"pw": "wrapped-value"})
    http = dev_server.http(dev_server.root_token)
    response = http.get("/v1/secret/data/wrapme", headers={"X-Vault-Wrap-TTL": "2m"}).json()
    assert response["data"] is None
    info = response["wrap_info"]
    assert info["ttl"] == 120 and info["creation_path"] == "secret/data/wrapme"
    assert "wrapped-value" not in str(response)
    wrapping_token = info["token"]
    # lookup needs no other token
    looked = dev_server.http().post("/v1/sys/wrapping/lookup", json={"token": wrapping_token})
    assert looked.status_code == 200
    assert looked.json()["data"]["creation_path"] == "secret/data/wrapme"
    # the wrapping token can do nothing but unwrap
    assert dev_server.http(wrapping_token).get("/v1/secret/data/wrapme").status_code == 403
    unwrapped = dev_server.http(wrapping_token).post("/v1/sys/wrapping/unwrap")
    assert unwrapped.status_code == 200
    assert unwrapped.json()["data"]["data"] == {"pw": "wrapped-value"}
    again = dev_server.http(wrapping_token).post("/v1/sys/wrapping/unwrap")
    assert again.status_code in (400, 403)


def test_unwrap_with_token_in_body(root_client: hvac.Client, dev_server: ServerProcess) -> None:
    http = dev_server.http(dev_server.root_token)
    wrapped = http.post(
        "/v1/auth/token/create",
        json={"policies": ["default"], "ttl": "1h"},
        headers={"X-Vault-Wrap-TTL": "60"},
    ).json()
    assert wrapped["auth"] is None and wrapped["wrap_info"]["wrapped_accessor"]
    token = wrapped["wrap_info"]["token"]
    result = root_client.sys.unwrap(token)
    child = result["auth"]["client_token"]
    assert dev_server.client(child).auth.token.lookup_self()["data"]["policies"] == ["default"]
    with pytest.raises(hvac.exceptions.VaultError):
        root_client.sys.unwrap(token)


def test_wrap_and_rewrap(dev_server: ServerProcess) -> None:
    http = dev_server.http(dev_server.root_token)
    # Vault: sys/wrapping/wrap wraps only when asked to
    assert http.post("/v1/sys/wrapping/wrap", json={"a": "b"}).status_code == 400
    wrapped = http.post(
        "/v1/sys/wrapping/wrap", json={"a": "b"}, headers={"X-Vault-Wrap-TTL": "5m"}
    ).json()["wrap_info"]
    assert wrapped["ttl"] == 300
    rewrapped = http.post("/v1/sys/wrapping/rewrap", json={"token": wrapped["token"]}).json()
    new_token = rewrapped["wrap_info"]["token"]
    assert new_token != wrapped["token"]
    assert http.post("/v1/sys/wrapping/unwrap", json={"token": wrapped["token"]}).status_code == 400
    body = http.post("/v1/sys/wrapping/unwrap", json={"token": new_token}).json()
    assert body["data"] == {"a": "b"}


def test_policy_wrapping_ttl_bounds(root_client: hvac.Client, dev_server: ServerProcess) -> None:
    root_client.secrets.kv.v2.create_or_update_secret("wrapme", {"pw": "wrapped-value"})
    root_client.sys.create_or_update_acl_policy(
        "wrapped-only",
        'path "secret/data/wrapme" {\n  capabilities = ["read"]\n'
        '  min_wrapping_ttl = "1m"\n  max_wrapping_ttl = "10m"\n}',
    )
    token = root_client.auth.token.create(policies=["wrapped-only"], ttl="1h")["auth"][
        "client_token"
    ]
    http = dev_server.http(token)
    assert http.get("/v1/secret/data/wrapme").status_code == 403
    assert (
        http.get("/v1/secret/data/wrapme", headers={"X-Vault-Wrap-TTL": "20s"}).status_code == 403
    )
    assert http.get("/v1/secret/data/wrapme", headers={"X-Vault-Wrap-TTL": "1h"}).status_code == 403
    ok = http.get("/v1/secret/data/wrapme", headers={"X-Vault-Wrap-TTL": "5m"})
    assert ok.status_code == 200 and ok.json()["wrap_info"]["ttl"] == 300
