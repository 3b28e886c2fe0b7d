"""Granular invalidation on an HA standby (in-process cluster, strongroom.testing): a token
write drops only that token's cache entry; a mount table change reloads only the mounts
that changed. Correctness first: the changed things are seen at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from strongroom.testing import TestCore, ha_cluster

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _caught_up(standby: TestCore) -> None:
    cluster = standby.core.cluster
    assert cluster is not None
    await cluster.ensure_fresh()


async def _token(active: TestCore, **body: object) -> str:
    status, made = await active.request("POST", "auth/token/create", {"policies": ["x"], **body})
    assert status == 200, made
    return str(made["auth"]["client_token"])


async def test_a_token_write_drops_only_that_tokens_cache_entry(tmp_path: Path) -> None:
    async with ha_cluster(tmp_path / "ha.db", nodes=2) as (active, standby):
        one = await _token(active, ttl="1h", renewable=True)
        two = await _token(active, ttl="1h", renewable=True)
        for token in (one, two):
            status, _ = await standby.request("GET", "auth/token/lookup-self", token=token)
            assert status == 200  # served by the standby: now in its token cache
        tokens = standby.core.tokens
        assert tokens.cached(one) and tokens.cached(two)
        # a write to token one (renew) on the active
        status, renewed = await active.request(
            "POST", "auth/token/renew-self", {"increment": "2h"}, token=one
        )
        assert status == 200, renewed
        await _caught_up(standby)
        assert not tokens.cached(one)  # dropped: the next lookup reads the new entry
        assert tokens.cached(two)  # untouched
        status, body = await standby.request("GET", "auth/token/lookup-self", token=one)
        assert status == 200 and body["data"]["ttl"] > 3600
        # revoking two on the active is refused on the standby at once
        assert (await active.request("POST", "auth/token/revoke", {"token": two}))[0] == 204
        assert (await standby.request("GET", "auth/token/lookup-self", token=two))[0] == 403
        assert (await standby.request("GET", "auth/token/lookup-self", token=one))[0] == 200
        # creating and revoking other tokens leaves one's cache entry alone
        assert tokens.cached(one)
        three = await _token(active)
        assert (await active.request("POST", "auth/token/revoke", {"token": three}))[0] == 204
        await _caught_up(standby)
        assert tokens.cached(one)


async def test_a_mount_change_reloads_only_that_mount(tmp_path: Path) -> None:
    async with ha_cluster(tmp_path / "ha.db", nodes=2) as (active, standby):
        for path in ("a", "b"):
            status, _ = await active.request("POST", f"sys/mounts/{path}", {"type": "kv-v2"})
            assert status == 204
            status, _ = await active.request("POST", f"{path}/data/k", {"data": {"p": path}})
            assert status == 200
        await _caught_up(standby)
        router = standby.core.router
        route_a, route_b = router.get("a/"), router.get("b/")
        assert route_a is not None and route_b is not None
        # tune a: the standby sees the new settings; b keeps its route, a its backend
        status, _ = await active.request("POST", "sys/mounts/a/tune", {"default_lease_ttl": "7m"})
        assert status == 204
        status, body = await standby.request("GET", "sys/mounts/a/tune")
        assert status == 200 and body["default_lease_ttl"] == 420
        assert router.get("b/") is route_b
        tuned = router.get("a/")
        assert tuned is not None and tuned.backend is route_a.backend
        assert tuned.entry.config.default_lease_ttl == 420
        # move a to c: served at c on the standby, gone at a
        status, _ = await active.request("POST", "sys/remount", {"from": "a", "to": "c"})
        assert status in (200, 204)
        status, body = await standby.request("GET", "c/data/k")
        assert status == 200 and body["data"]["data"] == {"p": "a"}
        assert router.get("a/") is None and router.get("b/") is route_b
        # disable b: gone on the standby at once; a new mount appears at once
        assert (await active.request("DELETE", "sys/mounts/b"))[0] == 204
        status, _ = await active.request("POST", "sys/mounts/d", {"type": "kv", "options": {}})
        assert status == 204
        await _caught_up(standby)
        assert router.get("b/") is None
        assert router.get("d/") is not None
        status, body = await standby.request("GET", "sys/mounts")
        assert status == 200 and "b/" not in body["data"] and "d/" in body["data"]
        # an auth method enabled and disabled
        assert (await active.request("POST", "sys/auth/up", {"type": "userpass"}))[0] == 204
        await _caught_up(standby)
        assert router.get("auth/up/") is not None
        assert (await active.request("DELETE", "sys/auth/up"))[0] == 204
        await _caught_up(standby)
        assert router.get("auth/up/") is None
