"""jwt/oidc through hvac over HTTP on the dev server, with keys and a JWKS endpoint made here."""

from __future__ import annotations

import time
from collections.abc import Iterator

import hvac
import hvac.exceptions
import pytest
from joserfc.jwk import ECKey, RSAKey

from tests.auth.helpers import TinyServer, jwks, public_pem, serve, sign
from tests.serverproc import ServerProcess


@pytest.fixture(scope="module")
def rsa_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "it-rsa"})


@pytest.fixture(scope="module")
def jwks_server(rsa_key: RSAKey) -> Iterator[TinyServer]:
    with serve({"/jwks": jwks(rsa_key)}) as server:
        yield server


def token(key: RSAKey | ECKey, alg: str = "RS256", **claims: object) -> str:
    now = int(time.time())
    base = {"iss": "https://ci.example", "sub": "repo:org/app", "iat": now, "exp": now + 300}
    base.update(claims)
    return sign(base, key, alg, kid=key.kid)


def test_jwt_login_with_pem_keys(
    dev_server: ServerProcess, root_client: hvac.Client, rsa_key: RSAKey
) -> None:
    mount = "jwt-it"
    root_client.sys.enable_auth_method("jwt", path=mount)
    root_client.auth.jwt.configure(
        jwt_validation_pubkeys=[public_pem(rsa_key)], bound_issuer="https://ci.example", path=mount
    )
    root_client.auth.jwt.create_role(
        "deploy",
        user_claim="sub",
        allowed_redirect_uris=[],
        role_type="jwt",
        bound_audiences=["strongroom"],
        bound_claims={"ref": "refs/heads/main"},
        claim_mappings={"ref": "git_ref"},
        token_policies=["deploy"],
        path=mount,
    )
    client = dev_server.client()
    jwt = token(rsa_key, aud="strongroom", ref="refs/heads/main")
    answer = client.auth.jwt.jwt_login("deploy", jwt, path=mount)["auth"]
    assert answer["policies"] == ["default", "deploy"]
    info = client.auth.token.lookup_self()["data"]
    assert info["meta"] == {"role": "deploy", "git_ref": "refs/heads/main"}
    assert info["display_name"] == f"{mount}-repoorgapp"  # core keeps [a-zA-Z0-9-_.@]

    for bad in (
        token(rsa_key, aud="someone-else", ref="refs/heads/main"),
        token(rsa_key, aud="strongroom", ref="refs/heads/feature"),
        token(rsa_key, aud="strongroom", ref="refs/heads/main", iss="https://evil.example"),
    ):
        with pytest.raises(hvac.exceptions.InvalidRequest):
            dev_server.client().auth.jwt.jwt_login("deploy", bad, path=mount)


def test_oidc_type_with_jwks_url(
    dev_server: ServerProcess, root_client: hvac.Client, rsa_key: RSAKey, jwks_server: TinyServer
) -> None:
    mount = "oidc-it"
    root_client.sys.enable_auth_method("oidc", path=mount)
    root_client.auth.jwt.configure(jwks_url=jwks_server.url + "/jwks", path=mount)
    root_client.auth.jwt.create_role(
        "svc",
        user_claim="sub",
        allowed_redirect_uris=[],
        role_type="jwt",
        bound_subject="repo:org/app",
        token_policies=["svc"],
        path=mount,
    )
    config = root_client.auth.jwt.read_config(path=mount)["data"]
    assert config["jwks_url"] == jwks_server.url + "/jwks"
    client = dev_server.client()
    answer = client.auth.jwt.jwt_login("svc", token(rsa_key), path=mount)["auth"]
    assert answer["policies"] == ["default", "svc"]
    assert client.auth.token.lookup_self()["data"]["meta"] == {"role": "svc"}
    # a role without bound_audiences refuses a token that names an audience
    with pytest.raises(hvac.exceptions.InvalidRequest, match="no audiences bound"):
        dev_server.client().auth.jwt.jwt_login("svc", token(rsa_key, aud="x"), path=mount)
    # a key the JWKS does not hold
    stranger = RSAKey.generate_key(2048, parameters={"kid": "it-rsa"})
    with pytest.raises(hvac.exceptions.InvalidRequest, match="signature"):
        dev_server.client().auth.jwt.jwt_login("svc", token(stranger), path=mount)


def test_oidc_discovery_url_with_a_discovery_document(
    dev_server: ServerProcess, root_client: hvac.Client
) -> None:
    """The issuer's discovery document and JWKS are served by a test server: the mount
    finds the keys through ``/.well-known/openid-configuration`` and binds ``iss`` to it."""
    key = RSAKey.generate_key(2048, parameters={"kid": "disc-1"})
    mount = "jwt-discovery"
    with serve({}) as provider:
        provider.routes["/.well-known/openid-configuration"] = {
            "issuer": provider.url,
            "jwks_uri": provider.url + "/keys",
            "authorization_endpoint": provider.url + "/authorize",
            "token_endpoint": provider.url + "/token",
            "id_token_signing_alg_values_supported": ["RS256"],
        }
        provider.routes["/keys"] = jwks(key)
        root_client.sys.enable_auth_method("jwt", path=mount)
        root_client.auth.jwt.configure(oidc_discovery_url=provider.url, path=mount)
        config = root_client.auth.jwt.read_config(path=mount)["data"]
        assert config["oidc_discovery_url"] == provider.url
        root_client.auth.jwt.create_role(
            "disc",
            role_type="jwt",
            user_claim="sub",
            bound_audiences=["strongroom"],
            token_policies=["disc"],
            allowed_redirect_uris=[],
            path=mount,
        )
        good = token(key, iss=provider.url, aud="strongroom")
        answer = dev_server.client().auth.jwt.jwt_login("disc", good, path=mount)["auth"]
        assert answer["policies"] == ["default", "disc"]
        # the discovery document's issuer is enforced when bound_issuer is not set
        elsewhere = token(key, iss="https://elsewhere.example", aud="strongroom")
        with pytest.raises(hvac.exceptions.InvalidRequest, match="iss"):
            dev_server.client().auth.jwt.jwt_login("disc", elsewhere, path=mount)
        # a document whose issuer is not the URL asked is refused at config time
        provider.routes["/.well-known/openid-configuration"] = {
            "issuer": "https://impostor.example",
            "jwks_uri": provider.url + "/keys",
        }
        with pytest.raises(hvac.exceptions.InvalidRequest, match="issuer"):
            root_client.auth.jwt.configure(oidc_discovery_url=provider.url, path="jwt-discovery")
    # an unreachable discovery URL is refused, and the working config stays
    with pytest.raises(hvac.exceptions.InvalidRequest):
        root_client.auth.jwt.configure(oidc_discovery_url="http://127.0.0.1:1", path=mount)
    assert root_client.auth.jwt.read_config(path=mount)["data"]["oidc_discovery_url"]
