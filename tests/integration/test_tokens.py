"""auth/token/* through hvac: create, lookup, renew, revoke trees, accessors, orphans, TTLs."""

from __future__ import annotations

import time

import hvac
import hvac.exceptions
import pytest

from tests.serverproc import ServerProcess


def test_create_lookup_and_revoke_tree(root_client: hvac.Client, dev_server: ServerProcess) -> None:
    root_client.sys.create_or_update_policy(
        "web",
        'path "secret/*" { capabilities = ["read"] }\n'
        'path "auth/token/create" { capabilities = ["update"] }',
    )
    parent = root_client.auth.token.create(policies=["web"], ttl="1h", meta={"team": "a"})["auth"]
    assert parent["policies"] == ["default", "web"]
    assert parent["client_token"].startswith("hvs.") and len(parent["client_token"]) == 28
    assert 3590 <= parent["lease_duration"] <= 3600
    parent_client = dev_server.client(parent["client_token"])
    info = parent_client.auth.token.lookup_self()["data"]
    assert info["meta"] == {"team": "a"} and info["display_name"].startswith("token")
    assert info["accessor"] == parent["accessor"] and info["id"] == parent["client_token"]
    child = parent_client.auth.token.create(policies=["web"], ttl="10m")["auth"]
    grandchild = dev_server.client(child["client_token"]).auth.token.create(ttl="5m")["auth"]
    # a non-root parent cannot grant policies it lacks (Vault answers 400)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="subset of parent"):
        parent_client.auth.token.create(policies=["root"])
    with pytest.raises(hvac.exceptions.InvalidRequest, match="subset of parent"):
        parent_client.auth.token.create(policies=["other"])
    root_client.auth.token.revoke(parent["client_token"])
    for token in (parent, child, grandchild):
        with pytest.raises(hvac.exceptions.Forbidden):
            dev_server.client(token["client_token"]).auth.token.lookup_self()


def test_revoke_orphan_keeps_children(root_client: hvac.Client, dev_server: ServerProcess) -> None:
    parent = root_client.auth.token.create(ttl="1h")["auth"]["client_token"]
    child = dev_server.client(parent).auth.token.create(ttl="1h")["auth"]["client_token"]
    root_client.auth.token.revoke_and_orphan_children(parent)
    info = dev_server.client(child).auth.token.lookup_self()["data"]
    assert info["orphan"] is True


def test_orphan_needs_sudo(root_client: hvac.Client, dev_server: ServerProcess) -> None:
    token = root_client.auth.token.create(policies=["default"], ttl="1h")["auth"]["client_token"]
    with pytest.raises(hvac.exceptions.Forbidden):
        dev_server.client(token).auth.token.create(no_parent=True)
    orphan = root_client.auth.token.create_orphan(ttl="1h")["auth"]
    assert orphan["orphan"] is True


def test_accessor_operations(root_client: hvac.Client, dev_server: ServerProcess) -> None:
    created = root_client.auth.token.create(ttl="1h", renewable=True)["auth"]
    accessor = created["accessor"]
    looked = root_client.auth.token.lookup_accessor(accessor)["data"]
    assert looked["id"] == "" and looked["accessor"] == accessor
    assert accessor in root_client.auth.token.list_accessors()["data"]["keys"]
    root_client.auth.token.revoke_accessor(accessor)
    with pytest.raises(hvac.exceptions.Forbidden):
        dev_server.client(created["client_token"]).auth.token.lookup_self()


def test_renew_respects_explicit_max(root_client: hvac.Client, dev_server: ServerProcess) -> None:
    created = root_client.auth.token.create(ttl="30s", explicit_max_ttl="60s")["auth"]
    client = dev_server.client(created["client_token"])
    renewed = client.auth.token.renew_self(increment="1h")
    assert renewed["auth"]["lease_duration"] <= 60
    assert renewed["warnings"]


def test_expired_token_stops_at_once(root_client: hvac.Client, dev_server: ServerProcess) -> None:
    created = root_client.auth.token.create(ttl="1s")["auth"]
    client = dev_server.client(created["client_token"])
    client.auth.token.lookup_self()
    time.sleep(1.2)
    with pytest.raises(hvac.exceptions.Forbidden):
        client.auth.token.lookup_self()


def test_num_uses(root_client: hvac.Client, dev_server: ServerProcess) -> None:
    token = root_client.auth.token.create(num_uses=2, ttl="1h")["auth"]["client_token"]
    client = dev_server.client(token)
    assert client.auth.token.lookup_self()["data"]["num_uses"] == 1
    client.auth.token.lookup_self()
    with pytest.raises(hvac.exceptions.Forbidden):
        client.auth.token.lookup_self()


def test_periodic_token(root_client: hvac.Client, dev_server: ServerProcess) -> None:
    created = root_client.auth.token.create(period="20m", policies=["default"])["auth"]
    assert created["lease_duration"] == 1200
    renewed = dev_server.client(created["client_token"]).auth.token.renew_self(increment="5h")
    assert renewed["auth"]["lease_duration"] == 1200


def test_revoke_self_and_cubbyhole_gone(
    root_client: hvac.Client, dev_server: ServerProcess
) -> None:
    token = root_client.auth.token.create(ttl="1h")["auth"]["client_token"]
    http = dev_server.http(token)
    assert http.post("/v1/cubbyhole/note", json={"v": "hidden"}).status_code == 204
    assert http.get("/v1/cubbyhole/note").json()["data"] == {"v": "hidden"}
    other = root_client.auth.token.create(ttl="1h")["auth"]["client_token"]
    assert dev_server.http(other).get("/v1/cubbyhole/note").status_code == 404
    assert http.post("/v1/auth/token/revoke-self").status_code == 204
    assert http.get("/v1/cubbyhole/note").status_code == 403
