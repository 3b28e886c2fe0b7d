"""Strongroom as an OIDC provider, in the browser: a relying party run by the test (a local
HTTP server that catches the redirect) sends Debian's chromium to the authorization page
the provider's discovery document names (/ui/vault/identity/oidc/provider/<name>/authorize);
the user signs in with the UI's own sign-in (userpass) and comes back; the page asks the
server for a code and sends the browser to the relying party's redirect_uri; the relying
party then exchanges the code with its PKCE verifier at the token endpoint and checks the
ID token against the provider's published keys (joserfc). Refusals that the server makes
after accepting the redirect_uri go back to the relying party as OAuth 2.0 error parameters;
an unknown client or a redirect_uri the client did not register never leave the page."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from joserfc import jwk, jwt
from joserfc.jwt import JWTClaimsRegistry
from playwright.sync_api import Browser, Page, expect

from tests.serverproc import ServerProcess
from tests.ui.browser import Watched, chromium, watched_page


@dataclass
class RelyingParty:
    """A browser app's callback: records every query it receives."""

    url: str
    received: list[dict[str, str]] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)


@contextmanager
def relying_party() -> Iterator[RelyingParty]:
    holder: list[RelyingParty] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            split = urllib.parse.urlsplit(self.path)
            if split.path == "/callback":
                holder[0].received.append(dict(urllib.parse.parse_qsl(split.query)))
                holder[0].arrived.set()
            body = b"<!doctype html><title>app</title><p>back at the app</p>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder.append(RelyingParty(f"http://127.0.0.1:{server.server_address[1]}"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder[0]
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Setup:
    provider: str
    client_id: str
    mount: str
    username: str
    password: str
    entity_id: str
    rp: RelyingParty

    @property
    def redirect_uri(self) -> str:
        return self.rp.url + "/callback"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


def _entity_of(server: ServerProcess, mount: str, username: str, password: str) -> str:
    with server.http() as anonymous:
        login = anonymous.post(f"/v1/auth/{mount}/login/{username}", json={"password": password})
        assert login.status_code == 200, login.text
        return str(login.json()["auth"]["entity_id"])


@pytest.fixture
def setup(dev_server: ServerProcess) -> Iterator[Setup]:
    suffix = uuid.uuid4().hex[:6]
    mount = f"people-{suffix}"
    password = "pw-" + secrets.token_hex(8)
    with relying_party() as rp, dev_server.http(dev_server.root_token) as root:
        body = {"type": "userpass", "config": {"listing_visibility": "unauth"}}
        assert root.post(f"/v1/sys/auth/{mount}", json=body).status_code == 204
        for name in ("ada", "bob"):
            user = {"password": password, "token_policies": ["default"]}
            assert root.post(f"/v1/auth/{mount}/users/{name}", json=user).status_code == 204
        entity_id = _entity_of(dev_server, mount, "ada", password)
        scope = {"template": '{"username": {{identity.entity.name}}}'}
        assert root.post(f"/v1/identity/oidc/scope/who-{suffix}", json=scope).status_code == 204
        assignment = {"entity_ids": [entity_id]}
        answer = root.post(f"/v1/identity/oidc/assignment/ada-{suffix}", json=assignment)
        assert answer.status_code == 204
        client = {
            "redirect_uris": [rp.url + "/callback"],
            "assignments": [f"ada-{suffix}"],
            "client_type": "public",
        }
        assert root.post(f"/v1/identity/oidc/client/app-{suffix}", json=client).status_code == 204
        client_id = root.get(f"/v1/identity/oidc/client/app-{suffix}").json()["data"]["client_id"]
        provider = {"allowed_client_ids": [client_id], "scopes_supported": [f"who-{suffix}"]}
        answer = root.post(f"/v1/identity/oidc/provider/idp-{suffix}", json=provider)
        assert answer.status_code == 204, answer.text
        try:
            yield Setup(f"idp-{suffix}", client_id, mount, "ada", password, entity_id, rp)
        finally:
            root.delete(f"/v1/sys/auth/{mount}")
            root.delete(f"/v1/identity/oidc/provider/idp-{suffix}")
            root.delete(f"/v1/identity/oidc/client/app-{suffix}")


@pytest.fixture
def ui(browser: Browser, dev_server: ServerProcess, setup: Setup) -> Iterator[Watched]:
    watched = watched_page(browser, dev_server.addr)
    try:
        yield watched
        # the browser's only trip away from Strongroom: the relying party's callback
        allowed = f"third-party request: {setup.redirect_uri}?"
        foreign = [f for f in watched.foreign if not f.startswith(allowed)]
        assert [*watched.errors, *foreign, *watched.csp_violations()] == []
    finally:
        watched.page.context.close()


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _authorize_url(server: ServerProcess, s: Setup, challenge: str, **extra: str) -> str:
    # the relying party learns the address from the provider's discovery document
    with server.http() as anonymous:
        base = f"/v1/identity/oidc/provider/{s.provider}"
        config = anonymous.get(f"{base}/.well-known/openid-configuration").json()
    params = {
        "response_type": "code",
        "client_id": s.client_id,
        "redirect_uri": s.redirect_uri,
        "scope": f"openid {s.provider.replace('idp-', 'who-')}",
        "state": "st-" + secrets.token_hex(8),
        "nonce": "n-" + secrets.token_hex(8),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    return str(config["authorization_endpoint"]) + "?" + urllib.parse.urlencode(params)


def _sign_in_with_userpass(page: Page, s: Setup) -> None:
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_text("Sign in to continue to the application")).to_be_visible()
    page.get_by_label("Method").select_option(label=f"userpass ({s.mount}/)")
    page.get_by_label("Username").fill(s.username)
    page.get_by_label("Password").fill(s.password)
    page.get_by_role("button", name="Sign in").click()


def _back_at_the_app(page: Page, s: Setup) -> dict[str, str]:
    assert s.rp.arrived.wait(10), "the browser never reached the relying party"
    page.wait_for_url(s.redirect_uri + "?*")
    s.rp.arrived.clear()
    return s.rp.received[-1]


def test_code_flow_with_pkce_through_the_browser(
    ui: Watched, dev_server: ServerProcess, setup: Setup
) -> None:
    page = ui.page
    verifier, challenge = _pkce()
    url = _authorize_url(dev_server, setup, challenge)
    sent = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    assert url.startswith(f"{dev_server.addr}/ui/vault/identity/oidc/provider/{setup.provider}/")

    page.goto(url)  # no token in this tab: the UI's sign-in first, then back
    _sign_in_with_userpass(page, setup)
    back = _back_at_the_app(page, setup)
    assert set(back) == {"code", "state"} and back["state"] == sent["state"]
    # the address to come back to after the sign-in was used once and forgotten
    assert page.evaluate("sessionStorage.getItem('strongroom.return')") is None

    # the relying party's half: the code and the verifier at the token endpoint
    base = f"/v1/identity/oidc/provider/{setup.provider}"
    form = {
        "grant_type": "authorization_code",
        "code": back["code"],
        "redirect_uri": setup.redirect_uri,
        "client_id": setup.client_id,
        "code_verifier": verifier,
    }
    with dev_server.http() as anonymous:
        issued = anonymous.post(f"{base}/token", data=form)
        assert issued.status_code == 200, issued.text
        again = anonymous.post(f"{base}/token", data=form)  # a code is single-use
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
        keys = jwk.KeySet.import_key_set(anonymous.get(f"{base}/.well-known/keys").json())
    claims = jwt.decode(issued.json()["id_token"], keys, algorithms=["RS256"]).claims
    JWTClaimsRegistry(
        iss={"essential": True, "value": f"{dev_server.addr}{base}"},
        aud={"essential": True, "value": setup.client_id},
        sub={"essential": True, "value": setup.entity_id},
        nonce={"essential": True, "value": sent["nonce"]},
    ).validate(claims)
    assert claims["username"].startswith("entity_")  # the client's scope template

    # signed in now: a second authorization goes straight back to the app
    _, challenge = _pkce()
    url = _authorize_url(dev_server, setup, challenge)
    page.goto(url)
    back = _back_at_the_app(page, setup)
    assert back["state"] == dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))["state"]
    assert len(setup.rp.received) == 2

    # prompt=login: the application wants a fresh sign-in, even in this signed-in tab
    page.goto(_authorize_url(dev_server, setup, _pkce()[1], prompt="login"))
    _sign_in_with_userpass(page, setup)  # the sign-in screen is shown again
    back = _back_at_the_app(page, setup)
    assert "code" in back and len(setup.rp.received) == 3


def test_a_refusal_after_the_redirect_uri_is_accepted_goes_back_as_an_oauth_error(
    ui: Watched, dev_server: ServerProcess, setup: Setup
) -> None:
    page = ui.page
    url = _authorize_url(dev_server, setup, _pkce()[1])
    state = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))["state"]
    page.goto(url)
    # bob is not in the client's assignment
    _sign_in_with_userpass(page, Setup(**{**setup.__dict__, "username": "bob"}))
    back = _back_at_the_app(page, setup)
    assert back["error"] == "access_denied" and back["state"] == state
    assert "code" not in back and "assignment" in back["error_description"]

    # a request without the openid scope: invalid_request, also sent back
    page.goto(_authorize_url(dev_server, setup, _pkce()[1], scope="profile"))
    back = _back_at_the_app(page, setup)
    assert back["error"] == "invalid_request" and "openid" in back["error_description"]


@pytest.mark.parametrize(
    "bad",
    [
        {"client_id": "no-such-client"},
        {"redirect_uri": "https://evil.example/callback"},
        {"redirect_uri": "javascript:alert(1)//"},
        {"redirect_uri": ""},
    ],
    ids=["unknown-client", "unregistered-redirect", "script-redirect", "no-redirect"],
)
def test_an_unknown_client_or_redirect_uri_stays_on_the_page(
    ui: Watched, dev_server: ServerProcess, setup: Setup, bad: dict[str, str]
) -> None:
    page = ui.page
    page.goto(_authorize_url(dev_server, setup, _pkce()[1]))
    _sign_in_with_userpass(page, setup)
    assert setup.rp.arrived.wait(10)
    page.wait_for_url(setup.redirect_uri + "?*")
    page.goto(_authorize_url(dev_server, setup, _pkce()[1], **bad))
    expect(page.get_by_role("heading", name="Authorization failed")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text(
        "invalid_client_id" if "client_id" in bad else "redirect_uri"
    )
    assert page.url.startswith(f"{dev_server.addr}/ui/vault/identity/oidc/provider/")
    assert len(setup.rp.received) == 1  # only the sign-in's own round trip


def test_prompt_none_without_a_token_redirects_nowhere(
    ui: Watched, dev_server: ServerProcess, setup: Setup
) -> None:
    page = ui.page
    page.goto(_authorize_url(dev_server, setup, _pkce()[1], prompt="none"))
    expect(page.get_by_role("heading", name="Sign-in required")).to_be_visible()
    assert setup.rp.received == []
    assert page.evaluate("sessionStorage.getItem('strongroom.token')") is None


def test_max_age_asks_for_a_fresh_sign_in_then_answers_login_required(
    ui: Watched, dev_server: ServerProcess, setup: Setup
) -> None:
    """``max_age_violation``: the page signs the user in again; a sign-in that still does
    not satisfy ``max_age`` (0 here: no sign-in can) goes back as ``login_required``."""
    page = ui.page
    page.goto(_authorize_url(dev_server, setup, _pkce()[1]))
    _sign_in_with_userpass(page, setup)
    assert "code" in _back_at_the_app(page, setup)
    url = _authorize_url(dev_server, setup, _pkce()[1], max_age="0")
    page.goto(url)
    _sign_in_with_userpass(page, setup)  # the signed-in tab is asked to sign in again
    back = _back_at_the_app(page, setup)
    assert back["error"] == "login_required" and "code" not in back
    assert back["state"] == dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))["state"]
