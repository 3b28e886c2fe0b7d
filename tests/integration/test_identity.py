"""Identity over HTTP: entities and groups through hvac, logins that create entities,
templated policies, disabled entities, and identity tokens verified with the public JWKS.

Needs core to mount ``identity/`` and to call the identity store at login and on every
request (see strongroom.core.identity); the login tests also need the userpass method.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import hvac
import hvac.exceptions
import pytest
from joserfc import jwk, jwt
from joserfc.jwt import JWTClaimsRegistry

from tests.serverproc import ServerProcess

TEMPLATED_POLICY = """
path "secret/data/{{identity.entity.name}}/*" {
  capabilities = ["create", "read", "update"]
}
path "identity/oidc/token/%(role)s" {
  capabilities = ["read"]
}
"""


def _suffix() -> str:
    return uuid.uuid4().hex[:8]


@dataclass
class Userpass:
    path: str
    accessor: str
    policy: str
    role: str


def _data(response: dict) -> dict:  # type: ignore[type-arg]
    return response.get("data", response)  # type: ignore[no-any-return]


@pytest.fixture
def userpass(root_client: hvac.Client) -> Iterator[Userpass]:
    suffix = _suffix()
    path = f"up-{suffix}"
    root_client.sys.enable_auth_method("userpass", path=path)
    accessor = _data(root_client.sys.list_auth_methods())[f"{path}/"]["accessor"]
    role = f"role-{suffix}"
    policy = f"templ-{suffix}"
    root_client.sys.create_or_update_acl_policy(policy, TEMPLATED_POLICY % {"role": role})
    try:
        yield Userpass(path=path, accessor=accessor, policy=policy, role=role)
    finally:
        root_client.sys.disable_auth_method(path)


def _login(server: ServerProcess, up: Userpass, username: str, password: str) -> hvac.Client:
    client = server.client()
    client.auth.userpass.login(username=username, password=password, mount_point=up.path)
    return client


def _user(root: hvac.Client, up: Userpass, username: str) -> None:
    root.auth.userpass.create_or_update_user(
        username=username, password=f"pw-{username}", policies=[up.policy], mount_point=up.path
    )


def test_entity_and_group_crud(root_client: hvac.Client) -> None:
    identity = root_client.secrets.identity
    name = f"svc-{_suffix()}"
    entity_id = identity.create_or_update_entity(
        name=name, metadata={"team": "ops"}, policies=["p1"]
    )["data"]["id"]
    entity = identity.read_entity(entity_id)["data"]
    assert entity["name"] == name and entity["policies"] == ["p1"]
    assert entity["metadata"] == {"team": "ops"} and entity["aliases"] == []
    assert identity.lookup_entity(name=name)["data"]["id"] == entity_id
    assert entity_id in identity.list_entities()["data"]["keys"]
    group_id = identity.create_or_update_group(
        name=f"grp-{_suffix()}", policies=["gp"], member_entity_ids=[entity_id]
    )["data"]["id"]
    entity = identity.read_entity(entity_id)["data"]
    assert entity["direct_group_ids"] == [group_id]
    identity.delete_group(group_id)
    identity.delete_entity(entity_id)
    with pytest.raises(hvac.exceptions.InvalidPath):
        identity.read_entity(entity_id)


def test_login_creates_entity_and_templated_policy_grants_only_own_path(
    root_client: hvac.Client, dev_server: ServerProcess, userpass: Userpass
) -> None:
    suffix = _suffix()
    alice_name, bob_name = f"alice-{suffix}", f"bob-{suffix}"
    _user(root_client, userpass, alice_name)
    _user(root_client, userpass, bob_name)
    alice = _login(dev_server, userpass, alice_name, f"pw-{alice_name}")
    bob = _login(dev_server, userpass, bob_name, f"pw-{bob_name}")

    alice_id = alice.auth.token.lookup_self()["data"]["entity_id"]
    bob_id = bob.auth.token.lookup_self()["data"]["entity_id"]
    assert alice_id and bob_id and alice_id != bob_id
    entity = root_client.secrets.identity.read_entity(alice_id)["data"]
    (alias,) = entity["aliases"]
    assert alias["mount_accessor"] == userpass.accessor and alias["name"] == alice_name
    assert entity["name"].startswith("entity_")

    # logging in again (any case) finds the same entity
    again = _login(dev_server, userpass, alice_name.upper(), f"pw-{alice_name}")
    assert again.auth.token.lookup_self()["data"]["entity_id"] == alice_id

    # the templated path is the entity's own, and only that
    kv = alice.secrets.kv.v2
    own = entity["name"]
    kv.create_or_update_secret(f"{own}/note", {"v": "1"}, mount_point="secret")
    bob_entity = root_client.secrets.identity.read_entity(bob_id)["data"]["name"]
    for other in (f"{bob_entity}/note", f"{own}x/note", "shared/note"):
        with pytest.raises(hvac.exceptions.Forbidden):
            kv.create_or_update_secret(other, {"v": "1"}, mount_point="secret")

    # a rename applies to the very next request
    root_client.secrets.identity.update_entity(alice_id, name=f"alice-main-{suffix}")
    kv.create_or_update_secret(f"alice-main-{suffix}/note", {"v": "2"}, mount_point="secret")
    with pytest.raises(hvac.exceptions.Forbidden):
        kv.create_or_update_secret(f"{own}/note", {"v": "3"}, mount_point="secret")

    # the default policy lets an entity read itself, and nobody else
    assert alice.secrets.identity.read_entity(alice_id)["data"]["id"] == alice_id
    with pytest.raises(hvac.exceptions.Forbidden):
        alice.secrets.identity.read_entity(bob_id)


def test_group_policies_and_disabled_entities(
    root_client: hvac.Client, dev_server: ServerProcess, userpass: Userpass
) -> None:
    suffix = _suffix()
    name = f"carol-{suffix}"
    _user(root_client, userpass, name)
    carol = _login(dev_server, userpass, name, f"pw-{name}")
    entity_id = carol.auth.token.lookup_self()["data"]["entity_id"]
    root_client.secrets.kv.v2.create_or_update_secret(
        f"shared-{suffix}/x", {"v": "1"}, mount_point="secret"
    )
    with pytest.raises(hvac.exceptions.Forbidden):
        carol.secrets.kv.v2.read_secret_version(
            f"shared-{suffix}/x", mount_point="secret", raise_on_deleted_version=True
        )
    policy = f"shared-{suffix}"
    root_client.sys.create_or_update_acl_policy(
        policy, f'path "secret/data/shared-{suffix}/*" {{ capabilities = ["read"] }}'
    )
    child = root_client.secrets.identity.create_or_update_group(
        name=f"child-{suffix}", member_entity_ids=[entity_id]
    )["data"]["id"]
    root_client.secrets.identity.create_or_update_group(
        name=f"parent-{suffix}", policies=[policy], member_group_ids=[child]
    )
    # inherited through the nested group, without logging in again
    secret = carol.secrets.kv.v2.read_secret_version(
        f"shared-{suffix}/x", mount_point="secret", raise_on_deleted_version=True
    )
    assert secret["data"]["data"] == {"v": "1"}

    root_client.secrets.identity.update_entity(entity_id, disabled=True)
    with pytest.raises(hvac.exceptions.Forbidden):
        carol.auth.token.lookup_self()
    with pytest.raises(hvac.exceptions.Forbidden):
        _login(dev_server, userpass, name, f"pw-{name}")
    root_client.secrets.identity.update_entity(entity_id, disabled=False)
    assert carol.auth.token.lookup_self()["data"]["entity_id"] == entity_id


def test_identity_tokens_verify_with_the_published_keys(
    root_client: hvac.Client, dev_server: ServerProcess, userpass: Userpass
) -> None:
    suffix = _suffix()
    identity = root_client.secrets.identity
    identity.create_named_key(
        f"key-{suffix}", allowed_client_ids=["*"], verification_ttl="2h", rotation_period="1h"
    )
    identity.create_or_update_role(userpass.role, key=f"key-{suffix}", ttl="30m")
    identity.create_or_update_role(f"other-{suffix}", key=f"key-{suffix}", ttl="30m")
    client_id = identity.read_role(userpass.role)["data"]["client_id"]
    other_id = identity.read_role(f"other-{suffix}")["data"]["client_id"]

    name = f"dave-{suffix}"
    _user(root_client, userpass, name)
    dave = _login(dev_server, userpass, name, f"pw-{name}")
    entity_id = dave.auth.token.lookup_self()["data"]["entity_id"]
    issued = dave.secrets.identity.generate_signed_id_token(userpass.role)["data"]
    assert issued["client_id"] == client_id
    with pytest.raises(hvac.exceptions.Forbidden):  # not in dave's policy
        dave.secrets.identity.generate_signed_id_token(f"other-{suffix}")

    with dev_server.http() as anonymous:  # the discovery documents need no token
        config = anonymous.get("/v1/identity/oidc/.well-known/openid-configuration").json()
        keys = anonymous.get("/v1/identity/oidc/.well-known/keys").json()
    assert config["issuer"].endswith("/v1/identity/oidc")
    decoded = jwt.decode(issued["token"], jwk.KeySet.import_key_set(keys), algorithms=["RS256"])
    JWTClaimsRegistry(
        now=int(time.time()),
        iss={"essential": True, "value": config["issuer"]},
        aud={"essential": True, "value": client_id},
        sub={"essential": True, "value": entity_id},
    ).validate(decoded.claims)

    assert identity.introspect_signed_id_token(issued["token"], client_id=client_id)["active"]
    assert not identity.introspect_signed_id_token(issued["token"], client_id=other_id)["active"]


def test_entity_alias_without_canonical_id_makes_an_entity(dev_server: ServerProcess) -> None:
    """Vault's rule: no canonical_id → a new entity for the alias; the same alias again → 204
    and no second entity; no mount_accessor or name → Vault's error."""
    import concurrent.futures

    http = dev_server.http(dev_server.root_token)
    accessor = http.get("/v1/sys/auth").json()["data"]["token/"]["accessor"]
    first = http.post(
        "/v1/identity/entity-alias", json={"name": "no-canon", "mount_accessor": accessor}
    )
    assert first.status_code == 200
    alias_id, entity_id = first.json()["data"]["id"], first.json()["data"]["canonical_id"]
    entity = http.get(f"/v1/identity/entity/id/{entity_id}").json()["data"]
    assert [a["id"] for a in entity["aliases"]] == [alias_id]
    again = http.post(
        "/v1/identity/entity-alias", json={"name": "no-canon", "mount_accessor": accessor}
    )
    assert again.status_code == 204
    for body in ({"name": "x"}, {"mount_accessor": accessor}):
        resp = http.post("/v1/identity/entity-alias", json=body)
        assert resp.status_code == 400
        assert resp.json()["errors"] == ["'id' or 'mount_accessor' and 'name' must be provided"]
    resp = http.post("/v1/identity/entity-alias", json={"name": "y", "mount_accessor": "bogus"})
    assert resp.status_code == 400

    # a concurrent burst for one new alias makes exactly one entity
    def entity_count() -> int:
        return len(http.request("LIST", "/v1/identity/entity/id").json()["data"]["keys"])

    for round_ in range(10):
        before = entity_count()
        name = f"burst-{round_}"

        def create(alias: str) -> int:
            with dev_server.http(dev_server.root_token) as client:
                body = {"name": alias, "mount_accessor": accessor}
                return client.post("/v1/identity/entity-alias", json=body).status_code

        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            codes = list(pool.map(create, [name] * 6))
        assert set(codes) <= {200, 204} and 200 in codes
        lookup = http.post(
            "/v1/identity/lookup/entity",
            json={"alias_name": name, "alias_mount_accessor": accessor},
        ).json()["data"]
        assert len(lookup["aliases"]) == 1
        assert entity_count() == before + 1
