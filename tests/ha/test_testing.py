"""strongroom.testing: in-process unsealed cores that share nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from strongroom.testing import ha_cluster, unsealed_core

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_unsealed_core_serves_the_api() -> None:
    async with unsealed_core() as tc:
        status, body = await tc.request("POST", "secret/data/a", {"data": {"k": "v"}})
        assert status == 200, body
        status, body = await tc.request("GET", "secret/data/a")
        assert status == 200 and body["data"]["data"] == {"k": "v"}
        status, body = await tc.request("GET", "secret/data/a", token="")
        assert status == 403
        await tc.core.seal()
        status, _ = await tc.request("GET", "secret/data/a")
        assert status == 503
        await tc.unseal()
        status, body = await tc.request("GET", "secret/data/a")
        assert status == 200 and body["data"]["data"] == {"k": "v"}


async def test_two_cores_in_one_process_share_nothing() -> None:
    async with unsealed_core() as one, unsealed_core() as two:
        body = {"data": {"password": "p1"}}
        assert (await one.request("POST", "secret/data/shared", body))[0] == 200
        # the same bytes written on the other core decode to the same record there, yet
        # neither core can read the other's secret or use the other's tokens
        assert (await two.request("GET", "secret/data/shared"))[0] == 404
        assert (await two.request("GET", "secret/data/shared", token=one.root_token))[0] == 403
        status, created = await one.request("POST", "auth/token/create", {"policies": ["x"]})
        assert status == 200
        token = created["auth"]["client_token"]
        assert (await one.request("GET", "auth/token/lookup-self", token=token))[0] == 200
        assert (await two.request("GET", "auth/token/lookup-self", token=token))[0] == 403
        assert one.core.memos is not two.core.memos
        assert one.core.memos.info and not any(
            entry.id_hash in {e.id_hash for e, _ in one.core.memos.info.values()}
            for entry, _ in two.core.memos.info.values()
        )
        await one.core.seal()
        assert not one.core.memos.info  # sealing drops the token memos
        assert (await two.request("GET", "auth/token/lookup-self"))[0] == 200


async def test_an_in_process_ha_cluster(tmp_path: Path) -> None:
    async with ha_cluster(tmp_path / "ha.db", nodes=2) as (active, standby):
        assert active.core.cluster is not None and active.core.cluster.active
        assert standby.core.cluster is not None and not standby.core.cluster.active
        status, _ = await active.request("POST", "secret/data/a", {"data": {"k": 1}})
        assert status == 200
        status, body = await standby.request("GET", "secret/data/a")  # served locally
        assert status == 200 and body["data"]["data"] == {"k": 1}
        status, headers, raw = await standby.raw_request("POST", "secret/data/a", {"data": {}})
        assert status == 307, raw
        assert headers["location"] == active.core.settings.api_addr + "/v1/secret/data/a"
        status, made = await active.request("POST", "auth/token/create", {"policies": ["x"]})
        token = made["auth"]["client_token"]
        assert (await standby.request("GET", "auth/token/lookup-self", token=token))[0] == 200
        await active.request("POST", "auth/token/revoke", {"token": token})
        assert (await standby.request("GET", "auth/token/lookup-self", token=token))[0] == 403
        # the active steps down: the standby takes over
        await active.core.cluster.step_down()
        for _ in range(200):
            if standby.core.cluster.active and not standby.core.sealed:  # promoted and loaded
                break
            await asyncio.sleep(0.02)
        assert standby.core.cluster.active and not active.core.cluster.active
        status, _ = await standby.request("POST", "secret/data/b", {"data": {"k": 2}})
        assert status == 200
