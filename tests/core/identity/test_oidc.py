"""Identity tokens: keys, roles, issuing, independent verification with the published JWKS,
audience separation, rotation, introspection."""

from __future__ import annotations

import base64

import orjson
import pytest
from joserfc import jwk, jwt
from joserfc.errors import JoseError
from joserfc.jwt import JWTClaimsRegistry

from strongroom.errors import InvalidRequest, PermissionDenied
from strongroom.logical import Operation
from tests.core.identity.conftest import USERPASS

pytestmark = pytest.mark.anyio

ISSUER = "https://vault.example:8200/v1/identity/oidc"
NOW = 1_700_000_000  # the fake clock's start


async def _setup(root, store, *, algorithm="RS256", roles=("svc-a",)):
    await root.write(
        "oidc/key/k1", {"algorithm": algorithm, "allowed_client_ids": "*", "verification_ttl": "2h"}
    )
    for role in roles:
        await root.write(f"oidc/role/{role}", {"key": "k1", "ttl": "1h"})
    entity = await store.login_entity(USERPASS, "userpass", "alice", {"team": "ops"})
    await store.write_entity(entity.id, metadata={"color": "green"})
    return entity


async def _jwks(root) -> jwk.KeySet:
    response = await root.read("oidc/.well-known/keys")
    assert response.envelope is False
    return jwk.KeySet.import_key_set(response.data)


def _verify(token: str, keys: jwk.KeySet, audience: str, algorithm: str = "RS256", now=NOW):
    decoded = jwt.decode(token, keys, algorithms=[algorithm])
    JWTClaimsRegistry(
        now=int(now),
        iss={"essential": True, "value": ISSUER},
        aud={"essential": True, "value": audience},
        sub={"essential": True},
    ).validate(decoded.claims)
    return decoded.claims


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "ES384"])
async def test_issue_and_verify_independently(root, store, clock, algorithm):
    entity = await _setup(root, store, algorithm=algorithm)
    client_id = (await root.data(Operation.READ, "oidc/role/svc-a"))["client_id"]
    assert len(client_id) == 26
    issued = await root.as_entity(entity.id).data(Operation.READ, "oidc/token/svc-a")
    assert issued["client_id"] == client_id and issued["ttl"] == 3600
    claims = _verify(issued["token"], await _jwks(root), client_id, algorithm)
    now = int(clock.now())
    assert claims == {
        "iss": ISSUER,
        "sub": entity.id,
        "aud": client_id,
        "iat": now,
        "exp": now + 3600,
        "namespace": "root",
    }


async def test_eddsa_keys_sign_with_vaults_algorithm_name(root, store):
    entity = await _setup(root, store, algorithm="EdDSA")
    issued = await root.as_entity(entity.id).data(Operation.READ, "oidc/token/svc-a")
    header = orjson.loads(base64.urlsafe_b64decode(issued["token"].split(".")[0] + "=="))
    assert header["alg"] == "EdDSA"
    active = await root.data(Operation.UPDATE, "oidc/introspect", {"token": issued["token"]})
    assert active == {"active": True}


async def test_audience_separation(root, store):
    entity = await _setup(root, store, roles=("svc-a", "svc-b"))
    a_id = (await root.data(Operation.READ, "oidc/role/svc-a"))["client_id"]
    b_id = (await root.data(Operation.READ, "oidc/role/svc-b"))["client_id"]
    token = (await root.as_entity(entity.id).data(Operation.READ, "oidc/token/svc-a"))["token"]
    keys = await _jwks(root)
    _verify(token, keys, a_id)
    with pytest.raises(JoseError):
        _verify(token, keys, b_id)  # service B's verifier refuses A's token
    intro = await root.data(
        Operation.UPDATE, "oidc/introspect", {"token": token, "client_id": b_id}
    )
    assert intro["active"] is False
    intro = await root.data(
        Operation.UPDATE, "oidc/introspect", {"token": token, "client_id": a_id}
    )
    assert intro == {"active": True}
    # a role cannot borrow another role's audience
    with pytest.raises(InvalidRequest, match="client_id"):
        await root.write("oidc/role/svc-c", {"key": "k1", "client_id": a_id, "ttl": "1h"})


async def test_key_must_allow_the_roles_client(root, store):
    await root.write("oidc/key/strict", {"verification_ttl": "1h"})
    await root.write("oidc/role/r", {"key": "strict", "ttl": "30m"})
    entity = await store.login_entity(USERPASS, "userpass", "alice", {})
    with pytest.raises(InvalidRequest, match="allowed client ID"):
        await root.as_entity(entity.id).read("oidc/token/r")
    client_id = (await root.data(Operation.READ, "oidc/role/r"))["client_id"]
    await root.write("oidc/key/strict", {"allowed_client_ids": [client_id]})
    assert (await root.as_entity(entity.id).read("oidc/token/r")).data["token"]


async def test_token_needs_an_enabled_entity(root, store):
    entity = await _setup(root, store)
    with pytest.raises(InvalidRequest, match="no entity"):
        await root.read("oidc/token/svc-a")  # the root token has no entity
    with pytest.raises(InvalidRequest, match="no role"):
        await root.as_entity(entity.id).read("oidc/token/nope")
    token = (await root.as_entity(entity.id).data(Operation.READ, "oidc/token/svc-a"))["token"]
    await store.write_entity(entity.id, disabled=True)
    with pytest.raises(PermissionDenied):
        await root.as_entity(entity.id).read("oidc/token/svc-a")
    intro = await root.data(Operation.UPDATE, "oidc/introspect", {"token": token})
    assert intro["active"] is False


async def test_rotation_keeps_old_public_keys_for_verification_ttl(root, store, clock):
    entity = await _setup(root, store)
    client_id = (await root.data(Operation.READ, "oidc/role/svc-a"))["client_id"]
    caller = root.as_entity(entity.id)
    old_token = (await caller.data(Operation.READ, "oidc/token/svc-a"))["token"]
    assert len((await _jwks(root)).keys) == 1
    await root.write("oidc/key/k1/rotate")
    keys = await _jwks(root)
    assert len(keys.keys) == 2
    _verify(old_token, keys, client_id)  # still verifiable after rotation
    new_token = (await caller.data(Operation.READ, "oidc/token/svc-a"))["token"]
    assert new_token.split(".")[0] != old_token.split(".")[0]  # a new kid signs
    clock.advance(3599)
    assert (await root.data(Operation.UPDATE, "oidc/introspect", {"token": old_token}))["active"]
    clock.advance(2 * 3600)  # past verification_ttl: the old key is gone
    keys = await _jwks(root)
    assert len(keys.keys) == 1
    with pytest.raises(JoseError):
        jwt.decode(old_token, keys, algorithms=["RS256"])
    intro = await root.data(Operation.UPDATE, "oidc/introspect", {"token": old_token})
    assert intro["active"] is False


async def test_keys_rotate_when_due(root, store, clock, oidc):
    entity = await _setup(root, store)
    await root.write("oidc/key/k1", {"rotation_period": "1h"})
    kid_before = (await _jwks(root)).keys[0].kid
    clock.advance(3601)
    await root.as_entity(entity.id).read("oidc/token/svc-a")  # signing rotates a due key
    kids = [k.kid for k in (await _jwks(root)).keys]
    assert len(kids) == 2 and kid_before in kids
    clock.advance(7201)  # past the retired key's verification_ttl (2h)
    await oidc.periodic()
    assert kid_before not in [k.kid for k in (await _jwks(root)).keys]


async def test_expired_and_forged_tokens_are_inactive(root, store, clock):
    entity = await _setup(root, store)
    token = (await root.as_entity(entity.id).data(Operation.READ, "oidc/token/svc-a"))["token"]
    head, body, sig = token.split(".")
    claims = orjson.loads(base64.urlsafe_b64decode(body + "=="))
    claims["sub"] = "someone-else"
    forged_body = base64.urlsafe_b64encode(orjson.dumps(claims)).rstrip(b"=").decode()
    for bad in (f"{head}.{forged_body}.{sig}", "not.a.jwt", "x" * 20000):
        intro = await root.data(Operation.UPDATE, "oidc/introspect", {"token": bad})
        assert intro["active"] is False
    none_head = base64.urlsafe_b64encode(b'{"alg":"none","kid":"x"}').rstrip(b"=").decode()
    intro = await root.data(Operation.UPDATE, "oidc/introspect", {"token": f"{none_head}.{body}."})
    assert intro["active"] is False
    clock.advance(3600)
    intro = await root.data(Operation.UPDATE, "oidc/introspect", {"token": token})
    assert intro["active"] is False


async def test_claims_template(root, store, clock):
    entity = await _setup(root, store)
    await store.write_group(None, name="eng", member_entity_ids=[entity.id])
    template = (
        '{"color": {{identity.entity.metadata.color}}, "groups": {{identity.entity.groups.names}},'
        ' "user": {{identity.entity.aliases.auth_userpass_1111.name}},'
        ' "team": {{identity.entity.aliases.auth_userpass_1111.metadata.team}},'
        ' "missing": {{identity.entity.metadata.nope}}, "nbf": {{time.now.minus.1m}}}'
    )
    encoded = base64.b64encode(template.encode()).decode()
    await root.write("oidc/role/svc-a", {"template": encoded})
    assert (await root.data(Operation.READ, "oidc/role/svc-a"))["template"] == template
    token = (await root.as_entity(entity.id).data(Operation.READ, "oidc/token/svc-a"))["token"]
    claims = jwt.decode(token, await _jwks(root), algorithms=["RS256"]).claims
    assert claims["color"] == "green" and claims["groups"] == ["eng"]
    assert claims["user"] == "alice" and claims["team"] == "ops" and claims["missing"] == ""
    assert claims["nbf"] == int(clock.now()) - 60


async def test_metadata_cannot_break_out_of_a_claim(root, store):
    entity = await _setup(root, store)
    await store.write_entity(entity.id, metadata={"color": '", "sub": "admin'})
    await root.write("oidc/role/svc-a", {"template": '{"c": {{identity.entity.metadata.color}}}'})
    token = (await root.as_entity(entity.id).data(Operation.READ, "oidc/token/svc-a"))["token"]
    claims = jwt.decode(token, await _jwks(root), algorithms=["RS256"]).claims
    assert claims["sub"] == entity.id and claims["c"] == '", "sub": "admin'


@pytest.mark.parametrize(
    "template",
    [
        '{"sub": "admin"}',
        '{"aud": {{identity.entity.id}}}',
        '{"x": "{{identity.entity.name}}"}',
        '{"x": {{identity.entity.password}}}',
        "[1, 2]",
        "%%%",
    ],
)
async def test_bad_templates_are_refused(root, store, template):
    await _setup(root, store)
    with pytest.raises(InvalidRequest, match="template"):
        await root.write("oidc/role/svc-a", {"template": template})


async def test_key_and_role_management(root, store):
    await _setup(root, store)
    key = await root.data(Operation.READ, "oidc/key/k1")
    assert key == {
        "algorithm": "RS256",
        "rotation_period": 86400,
        "verification_ttl": 7200,
        "allowed_client_ids": ["*"],
    }
    assert (await root.data(Operation.LIST, "oidc/key"))["keys"] == ["k1"]
    assert (await root.data(Operation.LIST, "oidc/role/"))["keys"] == ["svc-a"]
    with pytest.raises(InvalidRequest, match="referenced"):
        await root.delete("oidc/key/k1")
    with pytest.raises(InvalidRequest, match="verification_ttl"):
        await root.write("oidc/role/long", {"key": "k1", "ttl": "3h"})
    with pytest.raises(InvalidRequest, match="ttl"):
        await root.write("oidc/key/k1", {"verification_ttl": "30m"})
    with pytest.raises(InvalidRequest, match="does not exist"):
        await root.write("oidc/role/r2", {"key": "ghost"})
    with pytest.raises(InvalidRequest, match="algorithm"):
        await root.write("oidc/key/k2", {"algorithm": "HS256"})
    with pytest.raises(InvalidRequest, match="rotation_period"):
        await root.write("oidc/key/k2", {"rotation_period": 10})
    assert await root.delete("oidc/role/svc-a") is None
    assert await root.delete("oidc/key/k1") is None
    assert await root.list("oidc/key") is None


async def test_private_keys_never_leave(root, store, storage):
    await _setup(root, store, algorithm="ES256")
    for path in ("oidc/key/k1", "oidc/.well-known/keys"):
        text = orjson.dumps((await root.read(path)).data).decode()
        assert '"d"' not in text
    stored = orjson.loads(storage.data["oidc/key/k1"])
    assert "d" in stored["signing"]["jwk"]  # only in the (barrier-encrypted) storage view


async def test_discovery_and_unauthenticated_paths(root, backend, oidc):
    from strongroom.framework import glob_match

    doc = (await root.read("oidc/.well-known/openid-configuration")).data
    assert doc["issuer"] == ISSUER and doc["jwks_uri"] == ISSUER + "/.well-known/keys"
    assert "RS256" in doc["id_token_signing_alg_values_supported"]
    assert glob_match(backend.unauthenticated_paths, "oidc/.well-known/keys")
    assert glob_match(backend.unauthenticated_paths, "oidc/.well-known/openid-configuration")
    assert not glob_match(backend.unauthenticated_paths, "oidc/token/x")
    assert not glob_match(backend.unauthenticated_paths, "oidc/introspect")
    await root.write("oidc/config", {"issuer": "https://idp.example.com/"})
    assert (await root.read("oidc/config")).data == {"issuer": "https://idp.example.com"}
    assert await oidc.issuer() == "https://idp.example.com/v1/identity/oidc"
    for bad in ("ftp://x", "https://x/path", "https://x?q=1", "not a url"):
        with pytest.raises(InvalidRequest):
            await root.write("oidc/config", {"issuer": bad})


async def test_oidc_state_survives_a_restart(root, store, storage, clock):
    from strongroom.core.identity import OIDCProvider

    entity = await _setup(root, store)
    token = (await root.as_entity(entity.id).data(Operation.READ, "oidc/token/svc-a"))["token"]
    fresh = OIDCProvider(storage, clock, store, issuer_base=lambda: "https://vault.example:8200")
    assert await fresh.introspect(token) == (True, "")
    assert await fresh.role_names() == ["svc-a"]
