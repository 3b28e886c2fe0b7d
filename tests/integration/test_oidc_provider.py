"""Vault as an OIDC provider over HTTP: scopes, assignments, clients and providers through
hvac/httpx, then the authorization code flow as an application runs it (authorize with the
user's Vault token, the form-encoded token request with client authentication, ID-token
verification against the provider's published keys, userinfo with the access token), PKCE
for public clients, the refusals, and single use of a code under a concurrent burst."""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import hvac
import pytest
from joserfc import jwk, jwt
from joserfc.jwt import JWTClaimsRegistry

from tests.serverproc import ServerProcess

REDIRECT = "https://app.example/callback"


@dataclass
class Setup:
    provider: str
    client_id: str
    client_secret: str
    user_token: str
    entity_id: str
    username: str
    assignment: str


def _suffix() -> str:
    return uuid.uuid4().hex[:8]


def _http(server: ServerProcess, token: str = "") -> httpx.Client:
    return httpx.Client(
        base_url=server.addr, headers={"X-Vault-Token": token} if token else {}, timeout=10
    )


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _user(server: ServerProcess, root: hvac.Client, mount: str) -> tuple[str, str, str]:
    name = f"user-{_suffix()}"
    root.auth.userpass.create_or_update_user(username=name, password="pw-1", mount_point=mount)
    client = server.client()
    login = client.auth.userpass.login(username=name, password="pw-1", mount_point=mount)
    return name, login["auth"]["client_token"], login["auth"]["entity_id"]


@pytest.fixture
def setup(dev_server: ServerProcess, root_client: hvac.Client) -> Iterator[Setup]:
    suffix = _suffix()
    mount = f"up-{suffix}"
    root_client.sys.enable_auth_method("userpass", path=mount)
    username, token, entity_id = _user(dev_server, root_client, mount)
    with _http(dev_server, dev_server.root_token) as http:
        scope = {"template": '{"username": {{identity.entity.name}}}', "description": "who"}
        assert http.post(f"/v1/identity/oidc/scope/user-{suffix}", json=scope).status_code == 204
        assignment = f"asg-{suffix}"
        body = {"entity_ids": [entity_id]}
        assert http.post(f"/v1/identity/oidc/assignment/{assignment}", json=body).status_code == 204
        client = {"redirect_uris": [REDIRECT], "assignments": [assignment], "id_token_ttl": "30m"}
        assert http.post(f"/v1/identity/oidc/client/app-{suffix}", json=client).status_code == 204
        app = http.get(f"/v1/identity/oidc/client/app-{suffix}").json()["data"]
        provider = f"prov-{suffix}"
        body = {"allowed_client_ids": [app["client_id"]], "scopes_supported": [f"user-{suffix}"]}
        assert http.post(f"/v1/identity/oidc/provider/{provider}", json=body).status_code == 204
    try:
        yield Setup(
            provider=provider,
            client_id=app["client_id"],
            client_secret=app["client_secret"],
            user_token=token,
            entity_id=entity_id,
            username=username,
            assignment=assignment,
        )
    finally:
        root_client.sys.disable_auth_method(mount)


def _authorize(server: ServerProcess, s: Setup, **extra: str) -> httpx.Response:
    params = {
        "response_type": "code",
        "client_id": s.client_id,
        "redirect_uri": REDIRECT,
        "scope": f"openid user-{s.provider.removeprefix('prov-')}",
        "state": "st-1",
        "nonce": "n-1",
        **extra,
    }
    with _http(server, s.user_token) as http:
        return http.get(f"/v1/identity/oidc/provider/{s.provider}/authorize", params=params)


def _token(server: ServerProcess, s: Setup, code: str, **form: str) -> httpx.Response:
    body = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, **form}
    with _http(server) as http:
        return http.post(
            f"/v1/identity/oidc/provider/{s.provider}/token",
            data=body,
            auth=(s.client_id, s.client_secret) if "client_id" not in form else None,
        )


def test_records_crud_and_guards(dev_server: ServerProcess, setup: Setup) -> None:
    suffix = setup.provider.removeprefix("prov-")
    with _http(dev_server, dev_server.root_token) as http:
        scope = http.get(f"/v1/identity/oidc/scope/user-{suffix}").json()["data"]
        assert scope == {"template": '{"username": {{identity.entity.name}}}', "description": "who"}
        assert (
            f"user-{suffix}"
            in http.request("LIST", "/v1/identity/oidc/scope").json()["data"]["keys"]
        )
        reserved = http.post("/v1/identity/oidc/scope/openid", json={})
        assert reserved.status_code == 400 and "reserved" in reserved.json()["errors"][0]

        assignments = http.request("LIST", "/v1/identity/oidc/assignment").json()["data"]["keys"]
        assert "allow_all" in assignments and setup.assignment in assignments
        allow_all = http.get("/v1/identity/oidc/assignment/allow_all").json()["data"]
        assert allow_all == {"entity_ids": ["*"], "group_ids": ["*"]}
        assert http.post("/v1/identity/oidc/assignment/allow_all", json={}).status_code == 400
        # as Vault, IDs are not checked (an entity made later is covered then)
        later = http.post(
            f"/v1/identity/oidc/assignment/x-{suffix}", json={"entity_ids": ["later"]}
        )
        assert later.status_code == 204

        app = http.get(f"/v1/identity/oidc/client/app-{suffix}").json()["data"]
        assert len(app["client_id"]) == 32 and app["client_secret"].startswith("hvo_secret_")
        assert app["key"] == "default" and app["client_type"] == "confidential"
        assert app["id_token_ttl"] == 1800 and app["access_token_ttl"] == 86400
        listed = http.request("LIST", "/v1/identity/oidc/client").json()["data"]
        assert "client_secret" not in listed["key_info"][f"app-{suffix}"]
        change = http.post(f"/v1/identity/oidc/client/app-{suffix}", json={"client_type": "public"})
        assert change.status_code == 400

        provider = http.get(f"/v1/identity/oidc/provider/{setup.provider}").json()["data"]
        assert provider["scopes_supported"] == [f"user-{suffix}"]
        assert provider["issuer"] == f"{dev_server.addr}/v1/identity/oidc/provider/{setup.provider}"
        listed = http.request("LIST", "/v1/identity/oidc/provider").json()["data"]
        assert "default" in listed["keys"] and setup.provider in listed["keys"]
        assert listed["key_info"]["default"]["allowed_client_ids"] == ["*"]
        unknown = http.post(
            f"/v1/identity/oidc/provider/p-{suffix}", json={"scopes_supported": ["nope"]}
        )
        assert unknown.status_code == 400

        # what is in use cannot be deleted
        assert http.delete(f"/v1/identity/oidc/scope/user-{suffix}").status_code == 400
        assert http.delete(f"/v1/identity/oidc/assignment/{setup.assignment}").status_code == 400
        assert http.delete("/v1/identity/oidc/key/default").status_code == 400


def test_discovery_and_keys(dev_server: ServerProcess, setup: Setup) -> None:
    with _http(dev_server) as anonymous:
        base = f"/v1/identity/oidc/provider/{setup.provider}"
        config = anonymous.get(f"{base}/.well-known/openid-configuration").json()
        keys = anonymous.get(f"{base}/.well-known/keys").json()
        assert anonymous.get("/v1/identity/oidc/provider/none/.well-known/keys").status_code == 404
    issuer = f"{dev_server.addr}{base}"
    assert config["issuer"] == issuer and config["token_endpoint"] == issuer + "/token"
    assert config["userinfo_endpoint"] == issuer + "/userinfo"
    assert config["jwks_uri"] == issuer + "/.well-known/keys"
    assert config["response_types_supported"] == ["code"]
    assert config["code_challenge_methods_supported"] == ["plain", "S256"]
    assert "openid" in config["scopes_supported"]
    assert keys["keys"] and all("d" not in key for key in keys["keys"])


def test_code_flow_confidential_client(dev_server: ServerProcess, setup: Setup) -> None:
    answer = _authorize(dev_server, setup)
    assert answer.status_code == 200, answer.text
    code = answer.json()["code"]
    assert answer.json()["state"] == "st-1"

    issued = _token(dev_server, setup, code)
    assert issued.status_code == 200, issued.text
    assert issued.headers["cache-control"] == "no-store"
    tokens = issued.json()
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 86400

    base = f"/v1/identity/oidc/provider/{setup.provider}"
    with _http(dev_server) as anonymous:
        keys = jwk.KeySet.import_key_set(anonymous.get(f"{base}/.well-known/keys").json())
        decoded = jwt.decode(tokens["id_token"], keys, algorithms=["RS256"])
        claims = decoded.claims
        JWTClaimsRegistry(
            iss={"essential": True, "value": f"{dev_server.addr}{base}"},
            aud={"essential": True, "value": setup.client_id},
            sub={"essential": True, "value": setup.entity_id},
        ).validate(claims)
        assert claims["nonce"] == "n-1" and claims["exp"] - claims["iat"] == 1800
        assert claims["username"].startswith("entity_")  # the scope's template
        digest = hashlib.sha256(tokens["access_token"].encode()).digest()
        assert claims["at_hash"] == base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()

        info = anonymous.get(
            f"{base}/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        assert info.status_code == 200, info.text
        assert info.json() == {"sub": setup.entity_id, "username": claims["username"]}
        posted = anonymous.post(
            f"{base}/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        assert posted.status_code == 200
        # an ID token is not an access token
        refused = anonymous.get(
            f"{base}/userinfo", headers={"Authorization": f"Bearer {tokens['id_token']}"}
        )
        assert refused.status_code == 401 and refused.json()["error"] == "invalid_token"
        assert anonymous.get(f"{base}/userinfo").status_code == 401

    again = _token(dev_server, setup, code)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_client_secret_post_and_bad_credentials(dev_server: ServerProcess, setup: Setup) -> None:
    code = _authorize(dev_server, setup).json()["code"]
    wrong = _token(dev_server, setup, code, client_id=setup.client_id, client_secret="nope")
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    assert "www-authenticate" in wrong.headers
    # no client credentials at all; a code_verifier for a code made without PKCE
    with _http(dev_server) as anonymous:
        body = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
        bare = anonymous.post(f"/v1/identity/oidc/provider/{setup.provider}/token", data=body)
    assert (bare.status_code, bare.json()["error"]) == (400, "invalid_request")
    stray = _token(
        dev_server,
        setup,
        code,
        client_id=setup.client_id,
        client_secret=setup.client_secret,
        code_verifier="v" * 50,
    )
    assert stray.json()["error_description"] == "unexpected code_verifier for token exchange"
    bad_grant = _token(dev_server, setup, code, grant_type="password")
    assert bad_grant.json()["error"] == "unsupported_grant_type"
    code = _authorize(dev_server, setup).json()["code"]  # the stray verifier spent the last one
    posted = _token(
        dev_server, setup, code, client_id=setup.client_id, client_secret=setup.client_secret
    )
    assert posted.status_code == 200, posted.text


def test_public_client_needs_pkce(dev_server: ServerProcess, setup: Setup) -> None:
    suffix = _suffix()
    with _http(dev_server, dev_server.root_token) as http:
        body = {"redirect_uris": [REDIRECT], "assignments": ["allow_all"], "client_type": "public"}
        assert http.post(f"/v1/identity/oidc/client/pub-{suffix}", json=body).status_code == 204
        public = http.get(f"/v1/identity/oidc/client/pub-{suffix}").json()["data"]
        assert "client_secret" not in public
        body = {"allowed_client_ids": [public["client_id"]]}
        assert (
            http.post(f"/v1/identity/oidc/provider/{setup.provider}", json=body).status_code == 204
        )
    pub = Setup(**{**setup.__dict__, "client_id": public["client_id"], "client_secret": ""})
    plain = _authorize(dev_server, pub)
    assert plain.status_code == 400 and "PKCE" in plain.json()["error_description"]
    assert plain.json()["state"] == "st-1"

    verifier = "v" * 50
    code = _authorize(
        dev_server, pub, code_challenge=_challenge(verifier), code_challenge_method="S256"
    ).json()["code"]
    bad = _token(dev_server, pub, code, client_id=pub.client_id, code_verifier="w" * 50)
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"
    code = _authorize(
        dev_server, pub, code_challenge=_challenge(verifier), code_challenge_method="S256"
    ).json()["code"]
    good = _token(dev_server, pub, code, client_id=pub.client_id, code_verifier=verifier)
    assert good.status_code == 200, good.text


def test_authorize_refusals(
    dev_server: ServerProcess, root_client: hvac.Client, setup: Setup
) -> None:
    def error(answer: httpx.Response) -> tuple[int, str]:
        return answer.status_code, answer.json()["error"]

    assert error(_authorize(dev_server, setup, scope="profile")) == (400, "invalid_request")
    assert error(_authorize(dev_server, setup, response_type="token"))[1] == (
        "unsupported_response_type"
    )
    # Vault's codes for a bad client or redirect_uri, checked before anything else (the UI
    # shows these rather than redirect), even when other parameters are wrong too
    assert error(_authorize(dev_server, setup, redirect_uri="https://evil.example/cb")) == (
        400,
        "invalid_redirect_uri",
    )
    bad_uri = _authorize(dev_server, setup, redirect_uri="https://evil.example/cb", scope="x")
    assert error(bad_uri) == (400, "invalid_redirect_uri")
    assert error(_authorize(dev_server, setup, client_id="unknown"))[1] == "invalid_client_id"
    assert error(_authorize(dev_server, setup, client_id="", response_type="x")) == (
        400,
        "invalid_client_id",
    )
    # the root token has no entity
    root = Setup(**{**setup.__dict__, "user_token": dev_server.root_token})
    assert error(_authorize(dev_server, root)) == (400, "access_denied")
    # another user is not in the client's assignment
    mount = f"up-{_suffix()}"
    root_client.sys.enable_auth_method("userpass", path=mount)
    try:
        _, other_token, _ = _user(dev_server, root_client, mount)
        other = Setup(**{**setup.__dict__, "user_token": other_token})
        assert error(_authorize(dev_server, other)) == (400, "access_denied")
    finally:
        root_client.sys.disable_auth_method(mount)
    # a provider that does not allow the client
    with _http(dev_server, dev_server.root_token) as http:
        name = f"closed-{_suffix()}"
        assert http.post(f"/v1/identity/oidc/provider/{name}", json={}).status_code == 204
    closed = Setup(**{**setup.__dict__, "provider": name})
    assert error(_authorize(dev_server, closed))[1] == "unauthorized_client"


@pytest.mark.parametrize("round_", range(10))
def test_code_is_single_use_under_a_burst(
    dev_server: ServerProcess, setup: Setup, round_: int
) -> None:
    code = _authorize(dev_server, setup).json()["code"]
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: _token(dev_server, setup, code), range(8)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] + [400] * 7, [a.text for a in answers]
