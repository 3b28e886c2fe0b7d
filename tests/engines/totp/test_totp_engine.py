"""The TOTP engine driven directly on a FakeClock: RFC 6238 vectors, skew, replay, errors."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyotp
import pytest

from strongroom.clock import FakeClock
from strongroom.engines import totp
from strongroom.errors import InvalidRequest
from strongroom.logical import BackendConfig, Response
from tests.engines.conftest import Caller, MemoryStorage

pytestmark = pytest.mark.anyio

VECTORS = json.loads((Path(__file__).parents[2] / "vectors" / "rfc6238.json").read_text())


def data(response: Response | None) -> dict[str, Any]:
    assert response is not None and response.data is not None
    return response.data


@pytest.fixture
async def tp(make_config: Callable[..., BackendConfig], storage: MemoryStorage) -> Caller:
    backend = await totp.factory(make_config("totp"))
    return Caller(backend, storage)


def set_time(clock: FakeClock, when: float) -> None:
    clock.advance(when - clock.now())


def b32(raw: str) -> str:
    return base64.b32encode(raw.encode()).decode()


@pytest.mark.parametrize("algorithm", ["SHA1", "SHA256", "SHA512"])
async def test_rfc6238_vectors(tp: Caller, clock: FakeClock, algorithm: str) -> None:
    seed = b32(VECTORS["seeds"][algorithm])
    for vector in VECTORS["vectors"]:
        name = f"v{algorithm}{vector['time']}"
        await tp.write(
            f"keys/{name}", {"key": seed, "algorithm": algorithm, "digits": 8, "skew": 0}
        )
        set_time(clock, float(vector["time"]))
        assert data(await tp.read(f"code/{name}"))["code"] == vector[algorithm]
        assert data(await tp.write(f"code/{name}", {"code": vector[algorithm]}))["valid"]


async def test_skew_window(tp: Caller, clock: FakeClock) -> None:
    secret = pyotp.random_base32()
    ref = pyotp.TOTP(secret)
    set_time(clock, 1_700_000_010.0)
    await tp.write("keys/s1", {"key": secret, "skew": 1})
    await tp.write("keys/s0", {"key": secret, "skew": 0})
    previous = ref.at(1_700_000_010 - 30)
    following = ref.at(1_700_000_010 + 30)
    too_old = ref.at(1_700_000_010 - 60)
    assert data(await tp.write("code/s1", {"code": previous}))["valid"] is True
    assert data(await tp.write("code/s1", {"code": following}))["valid"] is True
    assert data(await tp.write("code/s1", {"code": too_old}))["valid"] is False
    assert data(await tp.write("code/s0", {"code": previous}))["valid"] is False
    assert data(await tp.write("code/s0", {"code": following}))["valid"] is False


async def test_replay_refused_until_step_leaves_window(tp: Caller, clock: FakeClock) -> None:
    secret = pyotp.random_base32()
    set_time(clock, 1_700_000_000.0)  # the start of a 30 s step
    await tp.write("keys/r", {"key": secret})
    code = pyotp.TOTP(secret).at(1_700_000_000)
    assert data(await tp.write("code/r", {"code": code}))["valid"] is True
    with pytest.raises(InvalidRequest, match="code already used"):
        await tp.write("code/r", {"code": code})
    clock.advance(30)  # still inside the skew window: still refused
    with pytest.raises(InvalidRequest, match="code already used"):
        await tp.write("code/r", {"code": code})
    clock.advance(30)  # out of the window: no longer valid at all
    assert data(await tp.write("code/r", {"code": code}))["valid"] is False
    # the next step's code is fine
    fresh = pyotp.TOTP(secret).at(clock.now())
    assert data(await tp.write("code/r", {"code": fresh}))["valid"] is True


async def test_replay_record_stays_small(
    tp: Caller, clock: FakeClock, storage: MemoryStorage
) -> None:
    secret = pyotp.random_base32()
    set_time(clock, 1_700_000_000.0)
    await tp.write("keys/small", {"key": secret})
    for _ in range(50):
        code = pyotp.TOTP(secret).at(clock.now())
        assert data(await tp.write("code/small", {"code": code}))["valid"] is True
        clock.advance(30)
    record = json.loads(storage.data["used/small"])
    assert len(record) <= 2


@pytest.mark.parametrize("round_", range(10))
async def test_concurrent_burst_one_wins(tp: Caller, clock: FakeClock, round_: int) -> None:
    secret = pyotp.random_base32()
    set_time(clock, 1_700_000_000.0 + round_)
    await tp.write("keys/burst", {"key": secret})
    code = pyotp.TOTP(secret).at(clock.now())

    async def attempt() -> bool:
        try:
            return bool(data(await tp.write("code/burst", {"code": code}))["valid"])
        except InvalidRequest:
            return False

    results = await asyncio.gather(*(attempt() for _ in range(25)))
    assert results.count(True) == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"generate": True, "issuer": "I", "account_name": "a", "digits": 7}, "6 or 8"),
        ({"generate": True, "issuer": "I", "account_name": "a", "skew": 2}, "skew"),
        ({"generate": True, "issuer": "I", "account_name": "a", "algorithm": "MD5"}, "algorithm"),
        ({"generate": True, "issuer": "I", "account_name": "a", "period": 0}, "period"),
        ({"generate": True, "issuer": "I", "account_name": "a", "key_size": 0}, "key_size"),
        ({"generate": True, "issuer": "I", "account_name": "a", "qr_size": -1}, "qr_size"),
        ({"generate": True, "issuer": "I"}, "account_name"),
        ({"generate": True, "account_name": "a"}, "issuer"),
        ({"generate": True, "issuer": "I", "account_name": "a", "key": "JBSWY3DP"}, "generate"),
        ({}, "key value is required"),
        ({"key": "not base32!"}, "base32"),
        ({"url": "http://example.com/"}, "otpauth"),
        ({"url": "otpauth://totp/x?secret=!!!"}, "base32"),
        ({"url": "otpauth://totp/x"}, "key value is required"),
        ({"url": "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&digits=7"}, "6 or 8"),
        ({"url": "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&algorithm=MD5"}, "algorithm"),
        ({"url": "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&period=x"}, "period"),
    ],
)
async def test_bad_input(
    tp: Caller, storage: MemoryStorage, body: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidRequest, match=message) as info:
        await tp.write("keys/bad", body)
    assert "JBSWY3DP" not in str(info.value)
    assert storage.data == {}


async def test_url_import_wins_over_fields(tp: Caller) -> None:
    url = "otpauth://totp/Iss:acct?secret=JBSWY3DPEHPK3PXP&issuer=Iss&digits=8&algorithm=SHA256&period=60"
    await tp.write("keys/u", {"url": url, "digits": 6, "issuer": "Other", "period": 30})
    assert data(await tp.read("keys/u")) == {
        "account_name": "acct",
        "algorithm": "SHA256",
        "digits": 8,
        "issuer": "Iss",
        "period": 60,
    }


async def test_bad_codes(tp: Caller) -> None:
    await tp.write("keys/c", {"key": pyotp.random_base32()})
    with pytest.raises(InvalidRequest, match="code value is required"):
        await tp.write("code/c", {})
    with pytest.raises(InvalidRequest, match="digits"):
        await tp.write("code/c", {"code": "12345"})
    with pytest.raises(InvalidRequest, match="digits"):
        await tp.write("code/c", {"code": "abcdef"})
    with pytest.raises(InvalidRequest, match="unknown key"):
        await tp.write("code/nope", {"code": "123456"})
    with pytest.raises(InvalidRequest, match="unknown key"):
        await tp.read("code/nope")


@pytest.mark.parametrize("round_", range(10))
async def test_burst_across_two_backends_one_wins(
    make_config: Callable[..., BackendConfig],
    storage: MemoryStorage,
    clock: FakeClock,
    round_: int,
) -> None:
    """Two backends over one storage (two processes): their locks are separate, so only
    the storage guard keeps the step single-use."""
    first = Caller(await totp.factory(make_config("totp")), storage)
    second = Caller(await totp.factory(make_config("totp")), storage)
    secret = pyotp.random_base32()
    set_time(clock, 1_700_000_000.0 + round_)
    await first.write("keys/shared", {"key": secret})
    code = pyotp.TOTP(secret).at(clock.now())

    async def attempt(caller: Caller) -> bool:
        try:
            return bool(data(await caller.write("code/shared", {"code": code}))["valid"])
        except InvalidRequest:
            return False

    results = await asyncio.gather(*(attempt(c) for _ in range(12) for c in (first, second)))
    assert results.count(True) == 1
