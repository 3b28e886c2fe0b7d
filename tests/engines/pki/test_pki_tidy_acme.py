"""``tidy_acme`` on the backend itself with a FakeClock: ACME records only age by days,
which a test against a real clock cannot wait for."""

from __future__ import annotations

import datetime
from collections.abc import Callable

import orjson
import pytest

from strongroom.clock import FakeClock
from strongroom.engines import pki
from strongroom.engines.pki import PKIBackend
from strongroom.logical import BackendConfig
from tests.engines.conftest import Caller, MemoryStorage

pytestmark = pytest.mark.anyio


def stamp(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_tidy_acme_removes_expired_orders_and_idle_accounts(
    make_config: Callable[..., BackendConfig], storage: MemoryStorage, clock: FakeClock
) -> None:
    backend = await pki.factory(make_config("pki"))
    assert isinstance(backend, PKIBackend)
    caller = Caller(backend, storage)
    now = clock.now()
    day = 86400

    def put(key: str, value: object) -> None:
        storage.data[key] = orjson.dumps(value)

    # busy: one expired order (two days ago) and one live order
    put(
        "acme/accounts/busy",
        {
            "id": "busy",
            "thumbprint": "t-busy",
            "created": stamp(now - 30 * day),
            "orders": ["old", "live"],
        },
    )
    put("acme/thumbprints/t-busy", {"id": "busy"})
    put(
        "acme/orders/old",
        {"id": "old", "account": "busy", "expires": stamp(now - 2 * day), "authorizations": ["a1"]},
    )
    put("acme/authz/a1", {"id": "a1"})
    put(
        "acme/orders/live",
        {"id": "live", "account": "busy", "expires": stamp(now + day), "authorizations": ["a2"]},
    )
    put("acme/authz/a2", {"id": "a2"})
    # idle: old and without orders; fresh: new and without orders
    put(
        "acme/accounts/idle",
        {"id": "idle", "thumbprint": "t-idle", "created": stamp(now - 10 * day), "orders": []},
    )
    put("acme/thumbprints/t-idle", {"id": "idle"})
    put(
        "acme/accounts/fresh",
        {"id": "fresh", "thumbprint": "t-fresh", "created": stamp(now - 60), "orders": []},
    )

    response = await caller.write("tidy", {"tidy_acme": True, "acme_account_safety_buffer": "24h"})
    assert response is not None and response.status == 202
    assert backend.tidier.task is not None
    await backend.tidier.task
    status = (await caller.read("tidy-status")).data  # type: ignore[union-attr]
    assert status["state"] == "Finished"
    assert status["acme_orders_deleted_count"] == 1
    assert status["acme_account_deleted_count"] == 1
    keys = set(storage.data)
    assert "acme/orders/old" not in keys and "acme/authz/a1" not in keys
    assert {
        "acme/orders/live",
        "acme/authz/a2",
        "acme/accounts/busy",
        "acme/accounts/fresh",
    } <= keys
    assert "acme/accounts/idle" not in keys and "acme/thumbprints/t-idle" not in keys
    assert orjson.loads(storage.data["acme/accounts/busy"])["orders"] == ["live"]
    await backend.cleanup()
