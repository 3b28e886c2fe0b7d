"""hash/ and random/: known-answer digests and every URL form of random/."""

from __future__ import annotations

import binascii
import hashlib

import pytest

from strongroom.errors import InvalidRequest
from tests.engines.conftest import Caller
from tests.engines.transit.conftest import b64, data, unb64

pytestmark = pytest.mark.anyio

# NIST's "abc" vectors (FIPS 180-4 / FIPS 202 examples)
ABC = {
    "sha2-224": "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7",
    "sha2-256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    "sha2-384": "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
    "8086072ba1e7cc2358baeca134c825a7",
    "sha2-512": "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
    "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
    "sha3-224": "e642824c3f8cf24ad09234ee7d3c766fc9a3a5168d0c94ad73b46fdf",
    "sha3-256": "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532",
    "sha3-384": "ec01498288516fc926459f58e2c6ad8df9b473cb0fc08c2596da7cf0e49be4b2"
    "98d88cea927ac7f539f1edf228376d25",
    "sha3-512": "b751850b1a57168a5693cd924b6b096e08f621827444f70d884f5d0240d2712e"
    "10e116e9192af3c91a7ec57647e3934057340b4cf408d5a56592f8274eec53f0",
}


@pytest.mark.parametrize("algorithm", list(ABC))
async def test_hash_known_answers(tr: Caller, algorithm: str) -> None:
    body = {"input": b64(b"abc")}
    assert data(await tr.write(f"hash/{algorithm}", body))["sum"] == ABC[algorithm]
    assert data(await tr.write("hash", body | {"algorithm": algorithm}))["sum"] == ABC[algorithm]
    as_b64 = data(await tr.write(f"hash/{algorithm}", body | {"format": "base64"}))["sum"]
    assert binascii.hexlify(unb64(as_b64)).decode() == ABC[algorithm]


async def test_hash_defaults_and_errors(tr: Caller) -> None:
    expected = hashlib.sha256(b"").hexdigest()
    assert data(await tr.write("hash", {"input": ""}))["sum"] == expected
    with pytest.raises(InvalidRequest, match="input missing"):
        await tr.write("hash", {})
    with pytest.raises(InvalidRequest, match="unsupported algorithm md5"):
        await tr.write("hash/md5", {"input": ""})
    with pytest.raises(InvalidRequest, match="unsupported encoding format"):
        await tr.write("hash", {"input": "", "format": "raw"})
    with pytest.raises(InvalidRequest, match="unable to decode input as base64"):
        await tr.write("hash", {"input": "!!"})


@pytest.mark.parametrize(
    ("path", "body", "size", "fmt"),
    [
        ("random", {}, 32, "base64"),
        ("random", {"bytes": 7, "format": "hex"}, 7, "hex"),
        ("random/64", {}, 64, "base64"),
        ("random/seal", {"bytes": 5}, 5, "base64"),
        ("random/all/12", {"format": "hex"}, 12, "hex"),
        ("random/platform/131072", {}, 131072, "base64"),
    ],
)
async def test_random_forms(
    tr: Caller, path: str, body: dict[str, object], size: int, fmt: str
) -> None:
    out = data(await tr.write(path, body))["random_bytes"]
    raw = binascii.unhexlify(out) if fmt == "hex" else unb64(out)
    assert len(raw) == size
    assert data(await tr.write(path, body))["random_bytes"] != out


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("random", {"bytes": 0}, "cannot be less than 1"),
        ("random/131073", {}, "should be less than 131072"),
        ("random/moon", {}, "error parsing url-set byte count"),
        ("random/moon/12", {}, "unsupported entropy source"),
        ("random", {"source": "moon"}, "unsupported entropy source"),
        ("random", {"format": "raw"}, "unsupported encoding format"),
    ],
)
async def test_random_errors(tr: Caller, path: str, body: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        await tr.write(path, body)
