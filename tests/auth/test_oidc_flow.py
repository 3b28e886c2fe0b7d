"""The OIDC authorization-code flow end to end: a real Strongroom dev server, a real OIDC
provider (``oidc_provider.py``) and real HTTP between all three, the browser's part played
by httpx following the provider's redirect by hand."""

from __future__ import annotations

import asyncio
import secrets
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from joserfc.jwk import RSAKey

from tests.auth.oidc_provider import Provider, run_provider, s256
from tests.serverproc import ServerProcess

CLI_REDIRECT = "http://localhost:8250/oidc/callback"
USER = {
    "sub": "u-4711",
    "email": "ada@example.test",
    "groups": ["admins", "staff"],
    "department": "eng",
}


@dataclass
class Setup:
    server: ServerProcess
    provider: Provider
    mount: str
    root: httpx.Client
    anon: httpx.Client

    def v1(self, path: str) -> str:
        return f"/v1/auth/{self.mount}/{path}"

    def auth_url(self, redirect_uri: str = CLI_REDIRECT, **body: Any) -> httpx.Response:
        payload = {"role": "web", "redirect_uri": redirect_uri, **body}
        return self.anon.post(self.v1("oidc/auth_url"), json=payload)

    def authorize(self, auth_url: str) -> dict[str, str]:
        """The browser at the provider: follow to the redirect, return its query."""
        answer = httpx.get(auth_url, follow_redirects=False, timeout=10)
        assert answer.status_code == 302, answer.text
        location = urllib.parse.urlsplit(answer.headers["location"])
        return dict(urllib.parse.parse_qsl(location.query))

    def start(self, **body: Any) -> dict[str, str]:
        answer = self.auth_url(**body)
        assert answer.status_code == 200, answer.text
        return self.authorize(answer.json()["data"]["auth_url"])

    def callback(self, **params: str) -> httpx.Response:
        return self.anon.get(self.v1("oidc/callback"), params=params)


def _configure(root: httpx.Client, mount: str, provider: Provider, **config: Any) -> None:
    body = {
        "oidc_discovery_url": provider.url,
        "oidc_client_id": provider.client_id,
        "oidc_client_secret": provider.client_secret,
        "default_role": "web",
        **config,
    }
    answer = root.post(f"/v1/auth/{mount}/config", json=body)
    assert answer.status_code == 204, answer.text


def _role(root: httpx.Client, mount: str, name: str = "web", **fields: Any) -> None:
    body = {
        "role_type": "oidc",
        "user_claim": "sub",
        "groups_claim": "groups",
        "claim_mappings": {"email": "email", "department": "dept"},
        "bound_claims": {"department": "eng"},
        "oidc_scopes": ["email", "groups"],
        "allowed_redirect_uris": [CLI_REDIRECT],
        "token_policies": ["dev"],
        "token_ttl": "1h",
        **fields,
    }
    answer = root.post(f"/v1/auth/{mount}/role/{name}", json=body)
    assert answer.status_code == 204, answer.text


@pytest.fixture
def setup(dev_server: ServerProcess) -> Iterator[Setup]:
    mount = "oidc-" + uuid.uuid4().hex[:8]
    with (
        run_provider(user=dict(USER), redirect_uris=[CLI_REDIRECT]) as provider,
        dev_server.http(dev_server.root_token) as root,
        dev_server.http() as anon,
    ):
        answer = root.post(f"/v1/sys/auth/{mount}", json={"type": "oidc"})
        assert answer.status_code == 204, answer.text
        _configure(root, mount, provider)
        _role(root, mount)
        try:
            yield Setup(dev_server, provider, mount, root, anon)
        finally:
            root.delete(f"/v1/sys/auth/{mount}")


def _refused(answer: httpx.Response, *fragments: str) -> None:
    assert 400 <= answer.status_code < 500, answer.text
    body = answer.json()
    assert set(body) == {"errors"}, body
    text = " ".join(body["errors"])
    for fragment in fragments:
        assert fragment in text, text


def test_full_flow_with_hvac_and_pkce(setup: Setup, dev_server: ServerProcess) -> None:
    root, mount = setup.root, setup.mount
    accessor = root.get("/v1/sys/auth").json()["data"][f"{mount}/"]["accessor"]
    group = root.post(
        "/v1/identity/group",
        json={"name": f"{mount}-admins", "type": "external", "policies": ["ops"]},
    ).json()["data"]["id"]
    answer = root.post(
        "/v1/identity/group-alias",
        json={"name": "admins", "mount_accessor": accessor, "canonical_id": group},
    )
    assert answer.status_code == 200, answer.text

    client = dev_server.client()
    started = client.auth.oidc.oidc_authorization_url_request(
        role="web", redirect_uri=CLI_REDIRECT, path=mount
    )
    auth_url = started["data"]["auth_url"]
    split = urllib.parse.urlsplit(auth_url)
    params = dict(urllib.parse.parse_qsl(split.query))
    assert f"{split.scheme}://{split.netloc}{split.path}" == setup.provider.url + "/authorize"
    assert params["client_id"] == setup.provider.client_id
    assert params["redirect_uri"] == CLI_REDIRECT
    assert params["response_type"] == "code"
    assert params["scope"] == "openid email groups"
    assert params["code_challenge_method"] == "S256"
    assert len(params["state"]) == 40 and len(params["nonce"]) == 40
    assert setup.provider.client_secret not in auth_url

    back = setup.authorize(auth_url)
    assert back["state"] == params["state"]
    login = client.auth.oidc.oidc_callback(
        state=back["state"], nonce=params["nonce"], code=back["code"], path=mount
    )
    auth = login["auth"]
    assert auth["client_token"]
    assert sorted(auth["token_policies"]) == ["default", "dev"]
    assert sorted(auth["policies"]) == ["default", "dev", "ops"]
    assert auth["identity_policies"] == ["ops"]
    assert auth["metadata"] == {"role": "web", "email": USER["email"], "dept": "eng"}
    assert auth["lease_duration"] == 3600

    # the provider got the PKCE verifier matching the challenge, and a client secret by Basic
    token_request = setup.provider.token_requests[-1]
    assert s256(token_request["code_verifier"]) == params["code_challenge"]
    assert token_request["auth_method"] == "client_secret_basic"
    assert token_request["redirect_uri"] == CLI_REDIRECT

    me = dev_server.http(auth["client_token"]).get("/v1/auth/token/lookup-self").json()["data"]
    assert me["display_name"] == f"{mount}-{USER['sub']}"
    assert me["path"].startswith(f"auth/{mount}/oidc/callback")
    entity = root.get(f"/v1/identity/entity/id/{me['entity_id']}").json()["data"]
    assert [a["name"] for a in entity["aliases"]] == [USER["sub"]]
    assert entity["aliases"][0]["mount_accessor"] == accessor

    # renewal asks the method, which still has the role
    renewed = dev_server.http(auth["client_token"]).post("/v1/auth/token/renew-self", json={})
    assert renewed.status_code == 200, renewed.text

    # the secret is write-only; the flow's settings read back
    config = root.get(f"/v1/auth/{mount}/config").json()["data"]
    assert "oidc_client_secret" not in config
    assert config["oidc_client_id"] == setup.provider.client_id
    assert setup.provider.client_secret not in root.get(f"/v1/auth/{mount}/config").text
    role = root.get(f"/v1/auth/{mount}/role/web").json()["data"]
    assert role["callback_mode"] == "client" and role["oidc_scopes"] == ["email", "groups"]


def test_state_is_single_use_and_must_exist(setup: Setup) -> None:
    back = setup.start()
    ok = setup.callback(state=back["state"], code=back["code"])
    assert ok.status_code == 200 and ok.json()["auth"]["client_token"]
    _refused(setup.callback(state=back["state"], code=back["code"]), "Expired or missing")
    _refused(setup.callback(state=secrets.token_hex(20), code="x"), "Expired or missing")
    _refused(setup.callback(code="x"), "Expired or missing")


def test_wrong_nonce_expired_foreign_audience_and_wrong_key_are_refused(setup: Setup) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"nonce": "not-the-nonce"}, "nonce"),
        ({"exp_in": -3600}, "expired"),
        ({"aud": "some-other-client"}, "aud"),
        ({"iss": "https://impostor.test"}, "issuer"),
        ({"at_hash": "bm90IHRoZSBoYXNo"}, "at_hash"),
        ({"key": RSAKey.generate_key(2048, parameters={"kid": "k1"})}, "signature"),
    ]
    for tweaks, fragment in cases:
        setup.provider.tweaks = tweaks
        back = setup.start()
        answer = setup.callback(state=back["state"], code=back["code"])
        _refused(answer, "Vault login failed", fragment)
    setup.provider.tweaks = {}
    back = setup.start()
    assert setup.callback(state=back["state"], code=back["code"]).status_code == 200


def test_pkce_binds_the_code_to_its_own_login(setup: Setup) -> None:
    """A code obtained for one login (its own code_challenge) cannot complete another one:
    the provider refuses the other login's code_verifier (code injection)."""
    victim = setup.start()
    attacker = setup.start()
    answer = setup.callback(state=victim["state"], code=attacker["code"])
    _refused(answer, "Error exchanging oidc code", "invalid_grant")
    assert setup.provider.token_requests[-1]["code"] == attacker["code"]
    # the victim's state is spent: no second try with the right code
    _refused(setup.callback(state=victim["state"], code=victim["code"]), "Expired or missing")

    # a challenge changed on the way to the provider fails the same way
    started = setup.auth_url().json()["data"]["auth_url"]
    tampered = started.replace("code_challenge=", "code_challenge=x", 1)
    back = setup.authorize(tampered)
    _refused(setup.callback(state=back["state"], code=back["code"]), "invalid_grant")


def test_auth_url_refusals(setup: Setup) -> None:
    _refused(setup.auth_url("https://evil.example/callback"), "allowed_redirect_uris")
    _refused(setup.auth_url(""), "missing redirect_uri")
    _refused(setup.auth_url(role="nope"), 'role "nope" could not be found')
    _role(setup.root, setup.mount, "machines", role_type="jwt", bound_audiences=["x"])
    _refused(setup.auth_url(role="machines"), "jwt role_type")
    # loopback redirect URIs match whatever the port (RFC 8252), others exactly
    assert setup.auth_url("http://localhost:9999/oidc/callback").status_code == 200
    _refused(setup.auth_url("http://localhost:9999/oidc/other"), "allowed_redirect_uris")
    # a jwt role cannot log in through the callback either, nor an oidc role through login
    _refused(setup.anon.post(setup.v1("login"), json={"role": "web", "jwt": "a.b.c"}), "oidc")


def test_client_nonce_provider_errors_and_claims(setup: Setup) -> None:
    back = setup.start(client_nonce="cn-1")
    _refused(
        setup.callback(state=back["state"], code=back["code"], client_nonce="cn-2"),
        "invalid client_nonce",
    )
    back = setup.start(client_nonce="cn-1")
    ok = setup.callback(state=back["state"], code=back["code"], client_nonce="cn-1")
    assert ok.status_code == 200, ok.text

    back = setup.start()
    answer = setup.callback(state=back["state"], error="access_denied", error_description="no")
    _refused(answer, "Vault login failed", "access_denied")

    setup.provider.user["department"] = "sales"  # bound_claims wants eng
    back = setup.start()
    _refused(setup.callback(state=back["state"], code=back["code"]), "department")
    setup.provider.user["department"] = "eng"

    # max_age goes to the provider, and an older authentication is refused
    _role(setup.root, setup.mount, max_age="10m")
    started = setup.auth_url().json()["data"]["auth_url"]
    assert dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(started).query))["max_age"] == "600"
    back = setup.authorize(started)
    assert setup.callback(state=back["state"], code=back["code"]).status_code == 200
    setup.provider.tweaks = {"auth_age": 3600}
    back = setup.start()
    _refused(setup.callback(state=back["state"], code=back["code"]), "max_age")
    setup.provider.tweaks = {}
    _role(setup.root, setup.mount, max_age=0)

    # claims from the userinfo endpoint are merged in (and cannot change the subject)
    setup.provider.tweaks = {"userinfo": {"email": "ada@userinfo.test", "sub": "other"}}
    back = setup.start()
    ok = setup.callback(state=back["state"], code=back["code"])
    assert ok.status_code == 200, ok.text
    assert ok.json()["auth"]["metadata"]["email"] == USER["email"]  # sub differed: ignored


def test_client_secret_post_and_config_rules(dev_server: ServerProcess) -> None:
    mount = "oidc-" + uuid.uuid4().hex[:8]
    with (
        run_provider(
            user=dict(USER), redirect_uris=[CLI_REDIRECT], auth_methods=("client_secret_post",)
        ) as provider,
        dev_server.http(dev_server.root_token) as root,
        dev_server.http() as anon,
    ):
        assert root.post(f"/v1/sys/auth/{mount}", json={"type": "oidc"}).status_code == 204
        config = f"/v1/auth/{mount}/config"
        base = {"oidc_discovery_url": provider.url}
        _refused(root.post(config, json={**base, "oidc_client_id": "a"}), "both")
        _refused(
            root.post(
                config,
                json={
                    **base,
                    "oidc_client_id": "a",
                    "oidc_client_secret": "b",
                    "oidc_response_types": ["id_token"],
                },
            ),
            "not supported",
        )
        _refused(
            root.post(
                config,
                json={
                    **base,
                    "oidc_client_id": "a",
                    "oidc_client_secret": "b",
                    "oidc_response_mode": "fragment",
                },
            ),
            "response_mode",
        )
        # discovery only (no client): JWT login works, the browser flow is not configured
        assert root.post(config, json=base).status_code == 204
        setup = Setup(dev_server, provider, mount, root, anon)
        _role(root, mount)
        _refused(setup.auth_url(), "OIDC login is not configured")
        _refused(
            root.post(
                f"/v1/auth/{mount}/role/x",
                json={
                    "user_claim": "sub",
                    "allowed_redirect_uris": [CLI_REDIRECT],
                    "callback_mode": "device",
                },
            ),
            "callback_mode",
        )
        _refused(
            root.post(
                f"/v1/auth/{mount}/role/x",
                json={
                    "user_claim": "sub",
                    "allowed_redirect_uris": [CLI_REDIRECT],
                    "verbose_oidc_logging": True,
                },
            ),
            "verbose_oidc_logging",
        )
        _refused(
            root.post(config, json={**base, "provider_config": {"provider": "azure"}}),
            "provider_config",
        )
        _configure(root, mount, provider, namespace_in_state=False)
        read = root.get(config).json()["data"]
        assert read["provider_config"] == {} and read["namespace_in_state"] is False
        role = root.get(f"/v1/auth/{mount}/role/web").json()["data"]
        assert role["verbose_oidc_logging"] is False and "poll_interval" not in role
        back = setup.start()
        ok = setup.callback(state=back["state"], code=back["code"])
        assert ok.status_code == 200, ok.text
        assert provider.token_requests[-1]["auth_method"] == "client_secret_post"
        root.delete(f"/v1/sys/auth/{mount}")


def test_form_post_goes_through_the_api_to_the_ui_callback(setup: Setup) -> None:
    addr, mount = setup.server.addr, setup.mount
    ui_callback = f"{addr}/ui/vault/auth/{mount}/oidc/callback"
    api_callback = f"{addr}/v1/auth/{mount}/oidc/callback"
    setup.provider.redirect_uris.append(api_callback)
    # a provider's post is refused while the mount is not in form_post mode
    refused = setup.anon.post(
        f"/v1/auth/{mount}/oidc/callback",
        content="state=x&code=y",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert refused.status_code == 405, refused.text
    _configure(setup.root, mount, setup.provider, oidc_response_mode="form_post")
    _role(setup.root, mount, allowed_redirect_uris=[ui_callback])
    started = setup.auth_url(ui_callback)
    assert started.status_code == 200, started.text
    auth_url = started.json()["data"]["auth_url"]
    params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(auth_url).query))
    assert params["response_mode"] == "form_post"
    assert params["redirect_uri"] == api_callback
    page = httpx.get(auth_url, timeout=10)
    assert page.status_code == 200 and "<form" in page.text
    fields = dict(
        urllib.parse.parse_qsl(
            "&".join(
                f"{name}={urllib.parse.quote(value)}" for name, value in _hidden_inputs(page.text)
            )
        )
    )
    posted = setup.anon.post(
        f"/v1/auth/{mount}/oidc/callback",
        content=urllib.parse.urlencode(fields),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert posted.status_code == 303, posted.text
    location = urllib.parse.urlsplit(posted.headers["location"])
    assert location.path == f"/ui/vault/auth/{mount}/oidc/callback"
    query = dict(urllib.parse.parse_qsl(location.query))
    assert query == {"state": fields["state"], "code": "no_code"}
    assert fields["code"] not in posted.headers["location"]
    ok = setup.callback(**query)
    assert ok.status_code == 200, ok.text
    assert ok.json()["auth"]["metadata"]["email"] == USER["email"]
    _refused(setup.callback(**query), "Expired or missing")
    # a refusal posted by the provider goes on to the UI's page, which shows it
    denied = setup.anon.post(
        f"/v1/auth/{mount}/oidc/callback",
        content=urllib.parse.urlencode({"state": fields["state"], "error": "access_denied"}),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert denied.status_code == 303, denied.text
    assert denied.headers["location"].endswith(f"state={fields['state']}&error=access_denied")
    # a second post for a spent state is refused too
    again = setup.anon.post(
        f"/v1/auth/{mount}/oidc/callback",
        content=urllib.parse.urlencode(fields),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    _refused(again, "Expired or missing")


def _hidden_inputs(page: str) -> list[tuple[str, str]]:
    import html
    import re

    pattern = r'<input type="hidden" name="([^"]*)" value="([^"]*)">'
    return [(html.unescape(n), html.unescape(v)) for n, v in re.findall(pattern, page)]


def test_direct_callback_mode_and_poll(setup: Setup) -> None:
    addr, mount = setup.server.addr, setup.mount
    api_callback = f"{addr}/v1/auth/{mount}/oidc/callback"
    setup.provider.redirect_uris.append(api_callback)
    _role(
        setup.root,
        mount,
        callback_mode="direct",
        poll_interval=2,
        allowed_redirect_uris=[api_callback],
    )
    _refused(setup.auth_url(api_callback), "missing client_nonce")
    started = setup.auth_url(api_callback, client_nonce="cli-nonce")
    assert started.status_code == 200, started.text
    data = started.json()["data"]
    assert data["poll_interval"] == "2" and len(data["state"]) == 40
    poll = setup.v1("oidc/poll")
    pending = setup.anon.post(poll, json={"state": data["state"], "client_nonce": "cli-nonce"})
    _refused(pending, "authorization_pending")
    # the browser: provider → Strongroom's callback, which shows a page and keeps the result
    page = httpx.get(data["auth_url"], follow_redirects=True, timeout=10)
    assert page.status_code == 200 and "Signed in" in page.text
    assert page.headers["content-type"].startswith("text/html")
    _refused(
        setup.anon.post(poll, json={"state": data["state"], "client_nonce": "bad"}),
        "invalid client_nonce",
    )
    done = setup.anon.post(poll, json={"state": data["state"], "client_nonce": "cli-nonce"})
    assert done.status_code == 200, done.text
    assert done.json()["auth"]["metadata"]["email"] == USER["email"]
    again = setup.anon.post(poll, json={"state": data["state"], "client_nonce": "cli-nonce"})
    _refused(again, "Expired or missing")

    # bursts of polls for one finished login: exactly one collects the token, 8 rounds
    async def burst(state: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=setup.server.addr, timeout=30) as client:
            body = {"state": state, "client_nonce": "cli-nonce"}
            return list(await asyncio.gather(*(client.post(poll, json=body) for _ in range(6))))

    for _ in range(8):
        data = setup.auth_url(api_callback, client_nonce="cli-nonce").json()["data"]
        assert httpx.get(data["auth_url"], follow_redirects=True, timeout=10).status_code == 200
        answers = asyncio.run(burst(data["state"]))
        winners = [a for a in answers if a.status_code == 200]
        assert len(winners) == 1, [a.text for a in answers]
        for loser in answers:
            if loser is not winners[0]:
                _refused(loser, "Expired or missing")


def test_concurrent_callbacks_with_one_state_mint_one_token(setup: Setup) -> None:
    """Bursts of callbacks carrying the same state and code, 20 rounds: each time exactly
    one mints a token and the others are refused by the spent state."""

    async def burst(back: dict[str, str]) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=setup.server.addr, timeout=30) as client:
            url = setup.v1("oidc/callback")
            params = {"state": back["state"], "code": back["code"]}
            return list(await asyncio.gather(*(client.get(url, params=params) for _ in range(6))))

    for _ in range(20):
        back = setup.start()
        answers = asyncio.run(burst(back))
        winners = [a for a in answers if a.status_code == 200]
        assert len(winners) == 1, [a.text for a in answers]
        assert winners[0].json()["auth"]["client_token"]
        for loser in answers:
            if loser is not winners[0]:
                # refused by the state, before the code ever reached the provider again
                _refused(loser, "Expired or missing OAuth state")
        exchanges = [r for r in setup.provider.token_requests if r.get("code") == back["code"]]
        assert len(exchanges) == 1
