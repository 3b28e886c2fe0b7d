"""The OIDC flow on ``workers = 2`` (one active, one performance standby sharing a SQLite
file): a login started on one worker finishes on whichever worker the callback reaches, and
bursts of callbacks with one state, each on a fresh connection (so the kernel spreads them
over both processes), still mint exactly one token."""

from __future__ import annotations

import asyncio
import urllib.parse

import httpx

from tests.auth.oidc_provider import run_provider
from tests.ha.cluster import wait_until
from tests.ha.test_workers import _leaders, call, workers  # noqa: F401 (a fixture)
from tests.serverproc import ServerProcess

REDIRECT = "http://localhost:8250/oidc/callback"


def test_oidc_logins_across_worker_processes(workers: tuple[ServerProcess, str]) -> None:  # noqa: F811
    server, root = workers
    wait_until(lambda: _leaders(server, root) == {True, False}, what="one active, one standby")
    with run_provider(user={"sub": "w-1"}, redirect_uris=[REDIRECT]) as provider:
        assert (
            call(server, "POST", "/v1/sys/auth/oidc", root, json={"type": "oidc"}).status_code
            == 204
        )
        config = {
            "oidc_discovery_url": provider.url,
            "oidc_client_id": provider.client_id,
            "oidc_client_secret": provider.client_secret,
        }
        answer = call(server, "POST", "/v1/auth/oidc/config", root, json=config)
        assert answer.status_code == 204, answer.text
        role = {"user_claim": "sub", "allowed_redirect_uris": [REDIRECT]}
        assert call(server, "POST", "/v1/auth/oidc/role/web", root, json=role).status_code == 204

        async def burst(state: str, code: str) -> list[httpx.Response]:
            async def one() -> httpx.Response:
                # a client per request: a new connection, handed to either worker
                async with httpx.AsyncClient(base_url=server.addr, timeout=30) as client:
                    return await client.get(
                        "/v1/auth/oidc/oidc/callback", params={"state": state, "code": code}
                    )

            return list(await asyncio.gather(*(one() for _ in range(6))))

        for _ in range(10):
            body = {"role": "web", "redirect_uri": REDIRECT}
            started = call(server, "POST", "/v1/auth/oidc/oidc/auth_url", json=body)
            assert started.status_code == 200, started.text
            redirect = httpx.get(started.json()["data"]["auth_url"], timeout=10)
            back = dict(
                urllib.parse.parse_qsl(urllib.parse.urlsplit(redirect.headers["location"]).query)
            )
            answers = asyncio.run(burst(back["state"], back["code"]))
            winners = [a for a in answers if a.status_code == 200]
            assert len(winners) == 1, [a.text for a in answers]
            assert winners[0].json()["auth"]["client_token"]
            losers = [a for a in answers if a.status_code != 200]
            assert all(a.status_code == 400 for a in losers), [a.text for a in losers]
            assert all("Expired or missing OAuth state" in a.text for a in losers)
