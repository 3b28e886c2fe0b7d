"""strongroom.testing: in-process unsealed cores that share nothing."""

from __future__ import annotations

import pytest

from strongroom.testing import unsealed_core

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
