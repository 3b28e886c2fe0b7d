"""auth/token/roles/* and auth/token/create/:role through hvac and httpx, against Vault's rules."""

from __future__ import annotations

import concurrent.futures
import uuid

import hvac
import hvac.exceptions
import pytest

from tests.serverproc import ServerProcess


def _name() -> str:
    return "r" + uuid.uuid4().hex[:8]


def _write_role(server: ServerProcess, name: str, **fields: object) -> None:
    """Fields hvac's create_or_update_role does not take go over httpx."""
    with server.http(server.root_token) as http:
        resp = http.post(f"/v1/auth/token/roles/{name}", json=fields)
        assert resp.status_code == 204, resp.text


def test_role_crud_and_list(root_client: hvac.Client, dev_server: ServerProcess) -> None:
    name = _name()
    token = root_client.auth.token
    token.create_or_update_role(
        name,
        allowed_policies=["web", "db"],
        disallowed_policies=["admin"],
        orphan=True,
        renewable=False,
        path_suffix="v1",
        token_period="1h",
        token_explicit_max_ttl="2h",
        allowed_entity_aliases=["svc-*"],
    )
    _write_role(dev_server, name, token_bound_cidrs=["127.0.0.1/32"])
    data = token.read_role(name)["data"]
    assert data["name"] == name
    assert data["allowed_policies"] == ["web", "db"]
    assert data["disallowed_policies"] == ["admin"]
    assert data["orphan"] is True and data["renewable"] is False
    assert data["path_suffix"] == "v1"
    assert data["period"] == data["token_period"] == 3600
    assert data["explicit_max_ttl"] == data["token_explicit_max_ttl"] == 7200
    assert data["token_bound_cidrs"] == ["127.0.0.1/32"]
    assert data["allowed_entity_aliases"] == ["svc-*"]
    assert data["token_type"] == "default-service"
    assert name in token.list_roles()["data"]["keys"]
    # an update changes only the fields it names
    http = dev_server.http(dev_server.root_token)
    assert http.post(f"/v1/auth/token/roles/{name}", json={"orphan": False}).status_code == 204
    data = token.read_role(name)["data"]
    assert data["orphan"] is False and data["allowed_policies"] == ["web", "db"]
    token.delete_role(name)
    assert http.get(f"/v1/auth/token/roles/{name}").status_code == 404
    # bad input: a clear 400 and no change
    for body in (
        {"token_type": "weird"},
        {"path_suffix": "a/../b"},
        {"token_bound_cidrs": ["not-a-cidr"]},
        {"token_type": "batch", "token_period": "1h"},
        {"renewable": "maybe"},
    ):
        resp = http.post(f"/v1/auth/token/roles/{name}", json=body)
        assert resp.status_code == 400, body
        assert resp.json()["errors"]
    assert http.get(f"/v1/auth/token/roles/{name}").status_code == 404


def test_create_against_role_policies(root_client: hvac.Client, dev_server: ServerProcess) -> None:
    name = _name()
    for policy in ("web", "db", "admin", "team-a", "team-b"):
        root_client.sys.create_or_update_policy(
            policy, 'path "secret/*" { capabilities = ["read"] }'
        )
    # a non-root caller whose own policies do not include the role's
    root_client.sys.create_or_update_policy(
        "creator", f'path "auth/token/create/{name}" {{ capabilities = ["update"] }}'
    )
    creator = root_client.auth.token.create(policies=["creator"], ttl="1h")["auth"]["client_token"]
    client = dev_server.client(creator)
    _write_role(dev_server, name, allowed_policies=["web", "db"], allowed_policies_glob=["team-*"])
    # no policies asked: the role's allowed list (+ default)
    auth = client.auth.token.create(role_name=name)["auth"]
    assert auth["policies"] == ["db", "default", "web"]
    # a subset, and a glob match, though the caller holds neither
    auth = client.auth.token.create(role_name=name, policies=["web", "team-b"])["auth"]
    assert auth["policies"] == ["default", "team-b", "web"]
    info = root_client.auth.token.lookup(auth["client_token"])["data"]
    assert info["path"] == f"auth/token/create/{name}"
    with pytest.raises(hvac.exceptions.InvalidRequest, match="must be subset of the role"):
        client.auth.token.create(role_name=name, policies=["admin"])
    # disallowed wins, and a disallowed "default" is never added
    root_client.auth.token.create_or_update_role(
        name, disallowed_policies=["db", "default"], allowed_policies=["web", "db"]
    )
    auth = client.auth.token.create(role_name=name, policies=["web"])["auth"]
    assert auth["policies"] == ["web"]
    with pytest.raises(hvac.exceptions.InvalidRequest, match="disallowed by this role"):
        client.auth.token.create(role_name=name, policies=["db"])
    with pytest.raises(hvac.exceptions.InvalidRequest, match="disallowed by this role"):
        client.auth.token.create(role_name=name)  # the allowed list includes db
    # a role with only disallowed policies: the parent's policies, minus nothing disallowed
    other = _name()
    _write_role(dev_server, other, disallowed_policies_glob=["adm*"])
    with pytest.raises(hvac.exceptions.InvalidRequest, match="disallowed"):
        root_client.auth.token.create(role_name=other, policies=["admin"])
    auth = root_client.auth.token.create(role_name=other, policies=["web"])["auth"]
    assert auth["policies"] == ["default", "web"]
    with pytest.raises(hvac.exceptions.InvalidRequest, match="unknown role"):
        root_client.auth.token.create(role_name="no-such-role")


def test_role_orphan_suffix_renewable_period(
    root_client: hvac.Client, dev_server: ServerProcess
) -> None:
    name = _name()
    root_client.sys.create_or_update_policy("web", 'path "secret/*" { capabilities = ["read"] }')
    root_client.sys.create_or_update_policy(
        "creator", f'path "auth/token/create/{name}" {{ capabilities = ["update"] }}'
    )
    creator = root_client.auth.token.create(policies=["creator"], ttl="1h")["auth"]["client_token"]
    client = dev_server.client(creator)
    root_client.auth.token.create_or_update_role(
        name,
        allowed_policies=["web"],
        orphan=True,
        renewable=False,
        path_suffix="v2",
        token_explicit_max_ttl="30m",
    )
    resp = client.auth.token.create(role_name=name, ttl="2h", explicit_max_ttl="1h")
    auth = resp["auth"]
    assert auth["orphan"] is True and auth["renewable"] is False
    assert 1790 <= auth["lease_duration"] <= 1800  # capped by the role's explicit max TTL
    assert any("lesser value of 1800" in w for w in resp["warnings"])
    info = root_client.auth.token.lookup(auth["client_token"])["data"]
    assert info["path"] == f"auth/token/create/{name}/v2"
    assert info["orphan"] is True
    # the creator's revocation does not reach the orphan
    root_client.auth.token.revoke(creator)
    assert root_client.auth.token.lookup(auth["client_token"])["data"]["orphan"] is True
    # a periodic role: the token carries the period
    periodic = _name()
    root_client.auth.token.create_or_update_role(periodic, token_period="10m")
    auth = root_client.auth.token.create(role_name=periodic, policies=["web"])["auth"]
    info = root_client.auth.token.lookup(auth["client_token"])["data"]
    assert info["period"] == 600 and 590 <= info["ttl"] <= 600


def test_role_bound_cidrs_and_token_type(
    root_client: hvac.Client, dev_server: ServerProcess
) -> None:
    name = _name()
    _write_role(dev_server, name, token_bound_cidrs=["10.255.255.0/24"], allowed_policies=["web"])
    auth = root_client.auth.token.create(role_name=name, ttl="1h")["auth"]
    # the test client is 127.0.0.1, outside the role's CIDRs
    resp = dev_server.http(auth["client_token"]).get("/v1/auth/token/lookup-self")
    assert resp.status_code == 403
    near = _name()
    _write_role(dev_server, near, token_bound_cidrs=["127.0.0.0/8"], allowed_policies=["web"])
    auth = root_client.auth.token.create(role_name=near, ttl="1h")["auth"]
    assert (
        dev_server.http(auth["client_token"]).get("/v1/auth/token/lookup-self").status_code == 200
    )
    # a role fixed to service tokens refuses a request for another type
    _write_role(dev_server, near, token_type="service")
    http = dev_server.http(dev_server.root_token)
    resp = http.post(f"/v1/auth/token/create/{near}", json={"type": "batch"})
    assert resp.status_code == 400 and "does not match" in resp.json()["errors"][0]


def test_entity_alias_rules(root_client: hvac.Client, dev_server: ServerProcess) -> None:
    name = _name()
    http = dev_server.http(dev_server.root_token)
    resp = http.post("/v1/auth/token/create", json={"entity_alias": "svc-a"})
    assert resp.status_code == 400
    assert "only allowed in combination with token role" in resp.json()["errors"][0]
    root_client.auth.token.create_or_update_role(
        name, allowed_entity_aliases=["svc-*"], allowed_policies=["web"]
    )
    resp = http.post(f"/v1/auth/token/create/{name}", json={"entity_alias": "other"})
    assert resp.status_code == 400 and "invalid 'entity_alias'" in resp.json()["errors"][0]
    first = http.post(f"/v1/auth/token/create/{name}", json={"entity_alias": "svc-a"}).json()
    second = http.post(f"/v1/auth/token/create/{name}", json={"entity_alias": "svc-a"}).json()
    entity = first["auth"]["entity_id"]
    assert entity and entity == second["auth"]["entity_id"]
    found = root_client.secrets.identity.read_entity(entity)["data"]
    assert [a["name"] for a in found["aliases"]] == ["svc-a"]
    assert found["aliases"][0]["mount_type"] == "token"


@pytest.mark.parametrize("round_", range(10))
def test_concurrent_role_updates_keep_every_field(dev_server: ServerProcess, round_: int) -> None:
    """Concurrent writes of different fields of one role all land (no lost update)."""
    name = _name()
    http = dev_server.http(dev_server.root_token)
    http.post(f"/v1/auth/token/roles/{name}", json={})
    bodies = [
        {"allowed_policies": ["a"]},
        {"disallowed_policies": ["b"]},
        {"orphan": True},
        {"renewable": False},
        {"path_suffix": "s"},
        {"token_period": "5m"},
        {"token_explicit_max_ttl": "9m"},
        {"allowed_entity_aliases": ["x"]},
    ]

    def write(body: dict[str, object]) -> int:
        with dev_server.http(dev_server.root_token) as client:
            return client.post(f"/v1/auth/token/roles/{name}", json=body).status_code

    with concurrent.futures.ThreadPoolExecutor(len(bodies)) as pool:
        assert set(pool.map(write, bodies)) == {204}
    data = http.get(f"/v1/auth/token/roles/{name}").json()["data"]
    assert data["allowed_policies"] == ["a"] and data["disallowed_policies"] == ["b"]
    assert data["orphan"] is True and data["renewable"] is False
    assert data["path_suffix"] == "s" and data["period"] == 300
    assert data["explicit_max_ttl"] == 540 and data["allowed_entity_aliases"] == ["x"]


def test_role_token_type_yields_batch_tokens(
    root_client: hvac.Client, dev_server: ServerProcess
) -> None:
    http = dev_server.http(dev_server.root_token)
    fixed, default = _name(), _name()
    _write_role(dev_server, fixed, token_type="batch", allowed_policies=["web"], orphan=True)
    _write_role(dev_server, default, token_type="default-batch", allowed_policies=["web"])
    auth = http.post(f"/v1/auth/token/create/{fixed}", json={}).json()["auth"]
    assert auth["token_type"] == "batch" and auth["policies"] == ["default", "web"]
    # a batch token works for a read but is not stored (no accessor lookup)
    assert (
        dev_server.http(auth["client_token"]).get("/v1/auth/token/lookup-self").status_code == 200
    )
    resp = http.post(f"/v1/auth/token/create/{fixed}", json={"type": "service"})
    assert resp.status_code == 400 and "does not match" in resp.json()["errors"][0]
    auth = http.post(f"/v1/auth/token/create/{default}", json={}).json()["auth"]
    assert auth["token_type"] == "batch"
    auth = http.post(f"/v1/auth/token/create/{default}", json={"type": "service"}).json()["auth"]
    assert auth["token_type"] == "service"
