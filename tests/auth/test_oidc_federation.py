"""Strongroom logging in with Strongroom: an ``oidc`` auth mount whose provider is the same
server's identity OIDC provider (``identity/oidc/provider/<name>``). A userpass user's
entity signs in through the provider's authorize endpoint (called with the user's token, as
Vault's UI does) and gets a token from the oidc mount: discovery, JWKS, the token endpoint
with client authentication and PKCE, and the scope template's claims all cross real HTTP."""

from __future__ import annotations

import urllib.parse
import uuid

import httpx

from tests.serverproc import ServerProcess

REDIRECT = "http://localhost:8250/oidc/callback"


def test_oidc_mount_logs_in_through_strongroom_as_provider(dev_server: ServerProcess) -> None:
    suffix = uuid.uuid4().hex[:8]
    userpass, mount, provider = f"up-{suffix}", f"fed-{suffix}", f"prov-{suffix}"
    with dev_server.http(dev_server.root_token) as root, dev_server.http() as anon:
        # a person with an entity
        assert root.post(f"/v1/sys/auth/{userpass}", json={"type": "userpass"}).status_code == 204
        body = {"password": "correct horse"}
        assert root.post(f"/v1/auth/{userpass}/users/ada", json=body).status_code == 204
        login = anon.post(f"/v1/auth/{userpass}/login/ada", json=body).json()["auth"]
        user_token, entity_id = login["client_token"], login["entity_id"]

        # Strongroom as the provider
        alias = "{{identity.entity.aliases." + _accessor(root, userpass) + ".name}}"
        scope = {"template": '{"username": ' + alias + "}"}
        assert root.post(f"/v1/identity/oidc/scope/user-{suffix}", json=scope).status_code == 204
        assignment = {"entity_ids": [entity_id]}
        answer = root.post(f"/v1/identity/oidc/assignment/a-{suffix}", json=assignment)
        assert answer.status_code == 204, answer.text
        client = {"redirect_uris": [REDIRECT], "assignments": [f"a-{suffix}"]}
        assert root.post(f"/v1/identity/oidc/client/c-{suffix}", json=client).status_code == 204
        app = root.get(f"/v1/identity/oidc/client/c-{suffix}").json()["data"]
        body = {"allowed_client_ids": [app["client_id"]], "scopes_supported": [f"user-{suffix}"]}
        assert root.post(f"/v1/identity/oidc/provider/{provider}", json=body).status_code == 204
        issuer = f"{dev_server.addr}/v1/identity/oidc/provider/{provider}"

        # Strongroom as the relying party
        assert root.post(f"/v1/sys/auth/{mount}", json={"type": "oidc"}).status_code == 204
        config = {
            "oidc_discovery_url": issuer,
            "oidc_client_id": app["client_id"],
            "oidc_client_secret": app["client_secret"],
        }
        answer = root.post(f"/v1/auth/{mount}/config", json=config)
        assert answer.status_code == 204, answer.text
        role = {
            "user_claim": "sub",
            "allowed_redirect_uris": [REDIRECT],
            "oidc_scopes": [f"user-{suffix}"],
            "claim_mappings": {"username": "username"},
            "token_policies": ["dev"],
        }
        assert root.post(f"/v1/auth/{mount}/role/web", json=role).status_code == 204

        started = anon.post(
            f"/v1/auth/{mount}/oidc/auth_url", json={"role": "web", "redirect_uri": REDIRECT}
        ).json()["data"]["auth_url"]
        url = urllib.parse.urlsplit(started)
        # Vault's provider names its UI's page as the authorization endpoint; that page calls
        # the API's authorize with the person's token, as done here
        ui_page = f"{dev_server.addr}/ui/vault/identity/oidc/provider/{provider}/authorize"
        assert f"{url.scheme}://{url.netloc}{url.path}" == ui_page
        params = dict(urllib.parse.parse_qsl(url.query))
        approved = httpx.get(
            issuer + "/authorize", params=params, headers={"X-Vault-Token": user_token}
        )
        assert approved.status_code == 200, approved.text
        assert approved.json()["state"] == params["state"]

        done = anon.get(
            f"/v1/auth/{mount}/oidc/callback",
            params={"state": params["state"], "code": approved.json()["code"]},
        )
        assert done.status_code == 200, done.text
        auth = done.json()["auth"]
        assert auth["metadata"] == {"role": "web", "username": "ada"}
        me = httpx.get(
            f"{dev_server.addr}/v1/auth/token/lookup-self",
            headers={"X-Vault-Token": auth["client_token"]},
        ).json()["data"]
        assert me["display_name"] == f"{mount}-{entity_id}"

        # the code was single use at the provider too
        again = anon.get(
            f"/v1/auth/{mount}/oidc/callback",
            params={"state": params["state"], "code": approved.json()["code"]},
        )
        assert again.status_code == 400
        for path in (f"sys/auth/{mount}", f"sys/auth/{userpass}"):
            root.delete(f"/v1/{path}")


def _accessor(root: httpx.Client, mount: str) -> str:
    return str(root.get("/v1/sys/auth").json()["data"][f"{mount}/"]["accessor"])
