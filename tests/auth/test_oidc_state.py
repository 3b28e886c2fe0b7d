"""The OIDC flow's pending logins driven in process with a fake clock: they expire after 10
minutes, are swept, and never put the state itself into a storage key; plus the redirect
URI rules."""

from __future__ import annotations

import time
import urllib.parse

import httpx
import pytest

from strongroom.auth import jwt
from strongroom.auth.jwt import _oidc_state
from strongroom.auth.jwt._oidc import valid_redirect
from strongroom.clock import FakeClock
from strongroom.errors import InvalidRequest, RateLimited
from strongroom.logical import Operation, Response
from tests.auth.conftest import AuthCaller, MakeAuth
from tests.auth.oidc_provider import Provider, run_provider
from tests.engines.conftest import MemoryStorage

pytestmark = pytest.mark.anyio

REDIRECT = "http://localhost:8250/oidc/callback"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=time.time())  # the provider signs with the real time


async def _mount(make_auth: MakeAuth, provider: Provider) -> AuthCaller:
    caller = await make_auth(jwt.factory, "oidc")
    await caller.write(
        "config",
        {
            "oidc_discovery_url": provider.url,
            "oidc_client_id": provider.client_id,
            "oidc_client_secret": provider.client_secret,
        },
    )
    await caller.write(
        "role/web",
        {"user_claim": "sub", "allowed_redirect_uris": [REDIRECT], "token_policies": "dev"},
    )
    return caller


async def _start(caller: AuthCaller) -> str:
    response = await caller.request(
        Operation.UPDATE, "oidc/auth_url", {"role": "web", "redirect_uri": REDIRECT}, token=None
    )
    assert response is not None and response.data is not None
    return str(response.data["auth_url"])


def _authorize(auth_url: str) -> dict[str, str]:
    answer = httpx.get(auth_url, follow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(answer.headers["location"]).query))


async def _callback(caller: AuthCaller, back: dict[str, str]) -> Response | None:
    return await caller.request(Operation.READ, "oidc/callback", back, token=None)


async def test_state_expires_after_ten_minutes_and_is_swept(
    make_auth: MakeAuth, clock: FakeClock, storage: MemoryStorage
) -> None:
    with run_provider(user={"sub": "u1"}, redirect_uris=[REDIRECT], clock=clock.now) as provider:
        caller = await _mount(make_auth, provider)
        back = _authorize(await _start(caller))
        keys = [k for k in storage.data if "oidc/state/" in k]
        assert len(keys) == 1
        assert back["state"] not in keys[0]  # the key is a hash of the state
        assert back["state"].encode() not in storage.data[keys[0]]

        clock.advance(601)
        with pytest.raises(InvalidRequest, match="Expired or missing OAuth state"):
            await _callback(caller, back)
        assert len([k for k in storage.data if "oidc/state/" in k]) == 1

        # the next auth_url sweeps the expired record away, keeping its own
        auth_url = await _start(caller)
        assert len([k for k in storage.data if "oidc/state/" in k]) == 1
        clock.advance(599)  # the provider's clock too: the ID token is fresh
        fresh = _authorize(auth_url)
        response = await _callback(caller, fresh)
        assert response is not None and response.auth is not None
        assert response.auth.alias_name == "u1"
        assert response.auth.metadata == {"role": "web"}
        assert not [k for k in storage.data if "oidc/state/" in k]


async def test_pending_logins_are_capped_per_mount(
    make_auth: MakeAuth, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_oidc_state, "MAX_PENDING", 3)
    with run_provider(user={"sub": "u1"}, redirect_uris=[REDIRECT], clock=clock.now) as provider:
        caller = await _mount(make_auth, provider)
        urls = [await _start(caller) for _ in range(3)]
        with pytest.raises(RateLimited, match="too many OIDC logins are pending"):
            await _start(caller)
        # a finished login makes room
        response = await _callback(caller, _authorize(urls[0]))
        assert response is not None and response.auth is not None
        await _start(caller)
        with pytest.raises(RateLimited):
            await _start(caller)
        # expired ones are swept when the mount is full (at most every 10 s)
        clock.advance(601)
        await _start(caller)
        await _start(caller)


async def test_renewal_needs_the_role(make_auth: MakeAuth) -> None:
    with run_provider(user={"sub": "u1"}, redirect_uris=[REDIRECT]) as provider:
        caller = await _mount(make_auth, provider)
        response = await _callback(caller, _authorize(await _start(caller)))
        assert response is not None and response.auth is not None
        renewed = await caller.renew(response.auth, "oidc/callback")
        assert renewed.policies == ("dev",)
        await caller.delete("role/web")
        with pytest.raises(InvalidRequest, match="role no longer exists"):
            await caller.renew(response.auth, "oidc/callback")


def test_redirect_uri_rules() -> None:
    allowed = ["https://vault.example/ui/vault/auth/oidc/oidc/callback", "http://127.0.0.1/cb"]
    assert valid_redirect("https://vault.example/ui/vault/auth/oidc/oidc/callback", allowed)
    assert valid_redirect("HTTPS://VAULT.EXAMPLE/ui/vault/auth/oidc/oidc/callback", allowed)
    assert not valid_redirect(
        "https://vault.example:8443/ui/vault/auth/oidc/oidc/callback", allowed
    )
    assert not valid_redirect("https://vault.example/ui/vault/auth/oidc/oidc/callback/x", allowed)
    assert valid_redirect("http://127.0.0.1:53121/cb", allowed)  # loopback: any port
    assert not valid_redirect("http://127.0.0.1:53121/other", allowed)
    assert not valid_redirect("http://127.0.0.2.evil.example/cb", allowed)
    assert not valid_redirect("http://[::1", allowed)
