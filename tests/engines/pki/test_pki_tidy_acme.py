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


async def test_revocations_from_before_the_index_are_indexed_once(
    make_config: Callable[..., BackendConfig], storage: MemoryStorage
) -> None:
    """A mount whose revoked/ entries predate the CRL index gets it built from them."""
    from cryptography import x509

    backend = await pki.factory(make_config("pki"))
    assert isinstance(backend, PKIBackend)
    caller = Caller(backend, storage)
    await caller.write("root/generate/internal", {"common_name": "R", "key_type": "ec"})
    await caller.write("roles/r", {"allow_any_name": True, "key_type": "ec"})
    serials = []
    for i in range(3):
        issued = await caller.write("issue/r", {"common_name": f"l{i}.test", "ttl": "1h"})
        assert issued is not None and issued.data is not None
        serials.append(issued.data["serial_number"])
    await caller.write("revoke", {"serial_number": serials[0]})
    # simulate older data: two more revocations written without index entries
    issuer_id = (await backend.store.issuers())[0].id
    for serial in serials[1:]:
        der = await backend.store.cert_der(serial)
        assert der is not None
        record = {
            "serial_number": serial,
            "certificate_bytes": "",
            "revocation_time": 1.0,
            "issuer_id": issuer_id,
        }
        storage.data[f"revoked/{serial.replace(':', '-')}"] = orjson.dumps(record)
    del storage.data["crls/index-ready"]
    await caller.write("crl/rotate")
    response = await caller.read("cert/crl")
    assert response is not None and response.data is not None
    crl = x509.load_pem_x509_crl(response.data["certificate"].encode())
    listed = {format(entry.serial_number, "x") for entry in crl}
    assert listed == {s.replace(":", "").lstrip("0") for s in serials}
    assert "crls/index-ready" in storage.data
    await backend.cleanup()


async def test_auto_rebuild_and_delta_schedule(
    make_config: Callable[..., BackendConfig], storage: MemoryStorage, clock: FakeClock
) -> None:
    """The background task rebuilds a full CRL once it is within the grace period of its
    next update, and the delta CRL every delta_rebuild_interval."""
    import asyncio

    from cryptography import x509

    backend = PKIBackend(make_config("pki"), crl_interval=0.01)
    caller = Caller(backend, storage)
    await caller.write("root/generate/internal", {"common_name": "R", "key_type": "ec"})
    await caller.write(
        "config/crl",
        {
            "auto_rebuild": True,
            "auto_rebuild_grace_period": "2h",
            "expiry": "3h",
            "enable_delta": True,
            "delta_rebuild_interval": "1m",
        },
    )
    issuer = (await backend.store.issuers())[0]

    def number(delta: bool) -> int:
        der = storage.data[f"crls/{issuer.id}{'-delta' if delta else ''}"]
        crl = x509.load_der_x509_crl(der)
        return int(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)

    full, delta = number(False), number(True)
    await backend.initialize()
    try:
        # not yet due: 3 h expiry, 2 h grace -> due in 1 h
        await asyncio.sleep(0.1)
        assert number(False) == full
        clock.advance(3601)
        for _ in range(200):
            await asyncio.sleep(0.01)
            if number(False) > full and number(True) > delta:
                break
        assert number(False) > full
        assert number(True) > delta
    finally:
        await backend.cleanup()
