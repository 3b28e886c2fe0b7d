"""Signing in to the web UI with OIDC, in Debian's chromium: the sign-in screen lists the
oidc mount (from sys/internal/ui/mounts), sends the browser to a real OIDC provider run by
the test (tests/auth/oidc_provider.py), which sends it back to the UI's callback page; the
token ends up in sessionStorage and the app opens. Any console error, page error or CSP
violation fails the test; the only other origin the browser may reach is the provider."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from joserfc import jwt
from playwright.sync_api import Browser, expect

from tests.auth.oidc_provider import Provider, run_provider
from tests.serverproc import ServerProcess
from tests.ui.browser import Watched, chromium, watched_page

USER = {"sub": "grace", "email": "grace@example.test"}


@dataclass
class OIDCMount:
    mount: str
    provider: Provider
    callback: str


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture
def oidc(dev_server: ServerProcess, request: pytest.FixtureRequest) -> Iterator[OIDCMount]:
    kind = getattr(request, "param", "oidc")  # "jwt": the jwt method configured for OIDC
    mount = "sso-" + uuid.uuid4().hex[:6]
    callback = f"{dev_server.addr}/ui/vault/auth/{mount}/oidc/callback"
    with (
        run_provider(user=dict(USER), redirect_uris=[callback]) as provider,
        dev_server.http(dev_server.root_token) as root,
    ):
        body = {"type": kind, "config": {"listing_visibility": "unauth"}}
        assert root.post(f"/v1/sys/auth/{mount}", json=body).status_code == 204
        config = {
            "oidc_discovery_url": provider.url,
            "oidc_client_id": provider.client_id,
            "oidc_client_secret": provider.client_secret,
            "default_role": "people",
        }
        answer = root.post(f"/v1/auth/{mount}/config", json=config)
        assert answer.status_code == 204, answer.text
        role = {
            "user_claim": "sub",
            "allowed_redirect_uris": [callback],
            "claim_mappings": {"email": "email"},
            "token_policies": ["dev"],
        }
        assert root.post(f"/v1/auth/{mount}/role/people", json=role).status_code == 204
        try:
            yield OIDCMount(mount, provider, callback)
        finally:
            root.delete(f"/v1/sys/auth/{mount}")


@pytest.fixture
def ui(browser: Browser, dev_server: ServerProcess, oidc: OIDCMount) -> Iterator[Watched]:
    watched = watched_page(browser, dev_server.addr)
    try:
        yield watched
        # the browser's only trip away from Strongroom: the provider's authorize endpoint
        allowed = f"third-party request: {oidc.provider.url}/authorize?"
        foreign = [f for f in watched.foreign if not f.startswith(allowed)]
        assert [*watched.errors, *foreign, *watched.csp_violations()] == []
    finally:
        watched.page.context.close()


def _sign_in_with_oidc(
    ui: Watched, oidc: OIDCMount, dev_server: ServerProcess, kind: str = "oidc"
) -> None:
    page = ui.page
    page.goto(dev_server.addr + "/ui/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Method").select_option(label=f"{kind} ({oidc.mount}/)")
    expect(page.get_by_label("Role")).to_be_visible()
    expect(page.get_by_label("Token")).to_be_hidden()
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Secrets engines")).to_be_visible()


def test_sign_in_through_the_provider(
    ui: Watched, oidc: OIDCMount, dev_server: ServerProcess
) -> None:
    _sign_in_with_oidc(ui, oidc, dev_server)
    page = ui.page
    assert page.url == dev_server.addr + "/ui/#/secrets"
    expect(page.locator("#who")).to_contain_text(f"{oidc.mount}-grace")
    token = page.evaluate("sessionStorage.getItem('strongroom.token')")
    assert token and page.evaluate("document.cookie") == ""
    assert page.evaluate("sessionStorage.getItem('strongroom.oidc.pending')") is None
    # the browser went to the provider with our callback page and PKCE, and came back
    sent = oidc.provider.authorize_requests[-1]
    assert sent["redirect_uri"] == oidc.callback
    assert sent["code_challenge_method"] == "S256"
    lookup = httpx.get(
        f"{dev_server.addr}/v1/auth/token/lookup-self", headers={"X-Vault-Token": token}
    ).json()["data"]
    assert lookup["meta"] == {"role": "people", "email": USER["email"]}
    assert "dev" in lookup["policies"]

    # the callback address in the history no longer holds the code; reusing it is refused
    page.goto(f"{oidc.callback}?state={sent['state']}&code=reused")
    expect(page.get_by_role("heading", name="Sign-in failed")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("not started from this browser tab")
    assert "code=" not in page.url


def test_a_refusal_at_the_provider_is_shown(
    ui: Watched, oidc: OIDCMount, dev_server: ServerProcess
) -> None:
    oidc.provider.tweaks = {"deny": True}
    page = ui.page
    page.goto(dev_server.addr + "/ui/")
    page.get_by_label("Method").select_option(label=f"oidc ({oidc.mount}/)")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Sign-in failed")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("refused the sign-in: The user said no")
    assert page.evaluate("sessionStorage.getItem('strongroom.token')") is None


def test_a_redirect_uri_the_role_does_not_allow_is_explained(
    ui: Watched, oidc: OIDCMount, dev_server: ServerProcess
) -> None:
    with dev_server.http(dev_server.root_token) as root:
        role = {"allowed_redirect_uris": ["https://elsewhere.example/callback"]}
        assert root.post(f"/v1/auth/{oidc.mount}/role/people", json=role).status_code == 204
    page = ui.page
    page.goto(dev_server.addr + "/ui/")
    page.get_by_label("Method").select_option(label=f"oidc ({oidc.mount}/)")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("allowed_redirect_uris")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()  # still here
    assert oidc.provider.authorize_requests == []


def test_a_spent_or_forged_state_is_refused_by_the_server(
    ui: Watched, oidc: OIDCMount, dev_server: ServerProcess
) -> None:
    page = ui.page
    page.goto(dev_server.addr + "/ui/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    # as if this tab had started a login whose state the server no longer knows
    page.evaluate(
        "sessionStorage.setItem('strongroom.oidc.pending',"
        f" JSON.stringify({{mount: '{oidc.mount}', state: 'forged'}}))"
    )
    page.goto(f"{oidc.callback}?state=forged&code=whatever")
    expect(page.get_by_role("heading", name="Sign-in failed")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("Expired or missing OAuth state")
    assert page.evaluate("sessionStorage.getItem('strongroom.token')") is None
    page.get_by_role("link", name="Back to sign in").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_sign_in_with_form_post(ui: Watched, oidc: OIDCMount, dev_server: ServerProcess) -> None:
    """``oidc_response_mode = "form_post"``: the provider posts the code to the API, which
    sends the browser on to the UI's callback page with ``code=no_code``."""
    api_callback = f"{dev_server.addr}/v1/auth/{oidc.mount}/oidc/callback"
    oidc.provider.redirect_uris.append(api_callback)
    with dev_server.http(dev_server.root_token) as root:
        config = {
            "oidc_discovery_url": oidc.provider.url,
            "oidc_client_id": oidc.provider.client_id,
            "oidc_client_secret": oidc.provider.client_secret,
            "default_role": "people",
            "oidc_response_mode": "form_post",
        }
        assert root.post(f"/v1/auth/{oidc.mount}/config", json=config).status_code == 204
    _sign_in_with_oidc(ui, oidc, dev_server)
    assert oidc.provider.authorize_requests[-1]["redirect_uri"] == api_callback
    assert oidc.provider.authorize_requests[-1]["response_mode"] == "form_post"
    expect(ui.page.locator("#who")).to_contain_text(f"{oidc.mount}-grace")


@pytest.mark.parametrize("oidc", ["jwt"], indirect=True)
def test_a_jwt_mount_offers_the_browser_flow_and_a_pasted_jwt(
    ui: Watched, oidc: OIDCMount, dev_server: ServerProcess
) -> None:
    """A ``jwt`` mount with OIDC config is offered like an ``oidc`` one (as in Vault's UI),
    with a JWT field besides: left empty, the browser goes to the provider."""
    page = ui.page
    page.goto(dev_server.addr + "/ui/")
    page.get_by_label("Method").select_option(label=f"jwt ({oidc.mount}/)")
    expect(page.get_by_label("JWT")).to_be_visible()
    _sign_in_with_oidc(ui, oidc, dev_server, kind="jwt")
    expect(page.locator("#who")).to_contain_text(f"{oidc.mount}-grace")
    assert oidc.provider.authorize_requests[-1]["redirect_uri"] == oidc.callback

    # a JWT pasted in logs in at auth/<mount>/login with the role given
    with dev_server.http(dev_server.root_token) as root:
        role = {
            "role_type": "jwt",
            "user_claim": "sub",
            "bound_audiences": ["machines"],
            "token_policies": ["dev"],
        }
        assert root.post(f"/v1/auth/{oidc.mount}/role/machines", json=role).status_code == 204
    now = int(time.time())
    claims = {"iss": oidc.provider.url, "sub": "robot", "aud": "machines", "iat": now}
    token = jwt.encode(
        {"alg": "RS256", "kid": oidc.provider.key.kid},
        {**claims, "exp": now + 300},
        oidc.provider.key,
    )
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Method").select_option(label=f"jwt ({oidc.mount}/)")
    page.get_by_label("Role").fill("machines")
    page.get_by_label("JWT").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Secrets engines")).to_be_visible()
    expect(page.locator("#who")).to_contain_text(f"{oidc.mount}-robot")
    assert len(oidc.provider.authorize_requests) == 1  # no second trip to the provider
