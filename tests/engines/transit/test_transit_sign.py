"""sign/, verify/, hmac/: every signing key type, checked against local ``cryptography``."""

from __future__ import annotations

import base64

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from strongroom.errors import InvalidRequest
from tests.engines.conftest import Caller
from tests.engines.transit.conftest import b64, data, unb64

pytestmark = pytest.mark.anyio

MESSAGE = b"the quick brown fox"
CURVES = {"ecdsa-p256": 32, "ecdsa-p384": 48, "ecdsa-p521": 66}
HASHES = {
    "sha1": hashes.SHA1,
    "sha2-224": hashes.SHA224,
    "sha2-256": hashes.SHA256,
    "sha2-384": hashes.SHA384,
    "sha2-512": hashes.SHA512,
    "sha3-224": hashes.SHA3_224,
    "sha3-256": hashes.SHA3_256,
    "sha3-384": hashes.SHA3_384,
    "sha3-512": hashes.SHA3_512,
}


def _sig_bytes(signature: str, urlsafe: bool = False) -> bytes:
    payload = signature.split(":", 2)[2]
    if urlsafe:
        assert "=" not in payload and "+" not in payload and "/" not in payload
        return base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    return base64.b64decode(payload)


async def _public(tr: Caller, name: str, version: int = 1) -> object:
    info = data(await tr.read(f"keys/{name}"))
    text = info["keys"][str(version)]["public_key"]
    if info["type"] == "ed25519":
        return ed25519.Ed25519PublicKey.from_public_bytes(base64.b64decode(text))
    return load_pem_public_key(text.encode())


async def _sign(tr: Caller, name: str, **body: object) -> dict[str, object]:
    return data(await tr.write(f"sign/{name}", {"input": b64(MESSAGE)} | body))


async def _verify(tr: Caller, name: str, signature: str, **body: object) -> bool:
    out = data(
        await tr.write(f"verify/{name}", {"input": b64(MESSAGE), "signature": signature} | body)
    )
    return bool(out["valid"])


async def test_ed25519(tr: Caller) -> None:
    await tr.write("keys/e", {"type": "ed25519"})
    out = await _sign(tr, "e")
    assert out["key_version"] == 1 and "public_key" not in out
    signature = str(out["signature"])
    public = await _public(tr, "e")
    assert isinstance(public, ed25519.Ed25519PublicKey)
    public.verify(_sig_bytes(signature), MESSAGE)
    assert await _verify(tr, "e", signature)
    assert not await _verify(tr, "e", signature, input=b64(b"other"))


@pytest.mark.parametrize("key_type", list(CURVES))
@pytest.mark.parametrize("hash_name", ["sha2-256", "sha2-384", "sha3-512"])
async def test_ecdsa_asn1(tr: Caller, key_type: str, hash_name: str) -> None:
    await tr.write("keys/ec", {"type": key_type})
    signature = str((await _sign(tr, "ec", hash_algorithm=hash_name))["signature"])
    public = await _public(tr, "ec")
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(_sig_bytes(signature), MESSAGE, ec.ECDSA(HASHES[hash_name]()))
    assert await _verify(tr, "ec", signature, hash_algorithm=hash_name)
    assert not await _verify(tr, "ec", signature, hash_algorithm="sha2-224")
    # the URL form of the hash algorithm
    url_sig = data(await tr.write(f"sign/ec/{hash_name}", {"input": b64(MESSAGE)}))["signature"]
    checked = await tr.write(
        f"verify/ec/{hash_name}", {"input": b64(MESSAGE), "signature": url_sig}
    )
    assert data(checked)["valid"] is True


@pytest.mark.parametrize("key_type", list(CURVES))
async def test_ecdsa_jws_is_raw_r_s(tr: Caller, key_type: str) -> None:
    await tr.write("keys/ec", {"type": key_type})
    signature = str((await _sign(tr, "ec", marshaling_algorithm="jws"))["signature"])
    raw = _sig_bytes(signature, urlsafe=True)
    size = CURVES[key_type]
    assert len(raw) == 2 * size
    der = utils.encode_dss_signature(
        int.from_bytes(raw[:size], "big"), int.from_bytes(raw[size:], "big")
    )
    public = await _public(tr, "ec")
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(der, MESSAGE, ec.ECDSA(hashes.SHA256()))
    assert await _verify(tr, "ec", signature, marshaling_algorithm="jws")
    with pytest.raises(InvalidRequest):
        await _verify(tr, "ec", signature)  # not standard base64 DER


async def test_ecdsa_prehashed(tr: Caller) -> None:
    await tr.write("keys/ec", {"type": "ecdsa-p256"})
    digest = hashes.Hash(hashes.SHA384())
    digest.update(MESSAGE)
    prehashed = digest.finalize()
    out = data(await tr.write("sign/ec", {"input": b64(prehashed), "prehashed": True}))
    public = await _public(tr, "ec")
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(_sig_bytes(str(out["signature"])), MESSAGE, ec.ECDSA(hashes.SHA384()))
    verified = await tr.write(
        "verify/ec",
        {"input": b64(prehashed), "prehashed": True, "signature": out["signature"]},
    )
    assert data(verified)["valid"] is True
    with pytest.raises(InvalidRequest, match="unsupported digest length"):
        await tr.write("sign/ec", {"input": b64(b"short"), "prehashed": True})


@pytest.mark.parametrize(
    ("salt_length", "local_salt"),
    [
        ("auto", padding.PSS.MAX_LENGTH),
        ("hash", 32),
        ("20", 20),
        ("-1", 32),
        ("0", padding.PSS.MAX_LENGTH),
    ],
)
async def test_rsa_pss(tr: Caller, salt_length: str, local_salt: int) -> None:
    await tr.write("keys/r", {"type": "rsa-2048"})
    signature = str((await _sign(tr, "r", salt_length=salt_length))["signature"])
    public = await _public(tr, "r")
    assert isinstance(public, rsa.RSAPublicKey)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=local_salt)
    public.verify(_sig_bytes(signature), MESSAGE, pss, hashes.SHA256())
    assert await _verify(tr, "r", signature, salt_length=salt_length)
    assert await _verify(tr, "r", signature)  # "auto" detects the salt length


async def test_rsa_pkcs1v15_prehashed_and_errors(tr: Caller) -> None:
    await tr.write("keys/r", {"type": "rsa-2048"})
    signature = str(
        (await _sign(tr, "r", signature_algorithm="pkcs1v15", hash_algorithm="sha2-512"))[
            "signature"
        ]
    )
    public = await _public(tr, "r")
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(_sig_bytes(signature), MESSAGE, padding.PKCS1v15(), hashes.SHA512())
    assert await _verify(
        tr, "r", signature, signature_algorithm="pkcs1v15", hash_algorithm="sha2-512"
    )
    assert not await _verify(
        tr, "r", signature, signature_algorithm="pss", hash_algorithm="sha2-512"
    )
    digest = hashes.Hash(hashes.SHA256())
    digest.update(MESSAGE)
    pre = data(
        await tr.write(
            "sign/r",
            {"input": b64(digest.finalize()), "prehashed": True, "signature_algorithm": "pkcs1v15"},
        )
    )
    public.verify(_sig_bytes(pre["signature"]), MESSAGE, padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(InvalidRequest, match="does not match the hash algorithm"):
        await tr.write("sign/r", {"input": b64(b"abc"), "prehashed": True})
    with pytest.raises(InvalidRequest, match="requested salt length 9999 is invalid"):
        await _sign(tr, "r", salt_length="9999")
    with pytest.raises(InvalidRequest, match="salt length neither"):
        await _sign(tr, "r", salt_length="big")
    with pytest.raises(InvalidRequest, match="unsupported rsa signature algorithm"):
        await _sign(tr, "r", signature_algorithm="raw")
    with pytest.raises(InvalidRequest, match="hash_algorithm=none"):
        await _sign(tr, "r", hash_algorithm="none")
    with pytest.raises(InvalidRequest, match='invalid hash algorithm "md5"'):
        await _sign(tr, "r", hash_algorithm="md5")
    with pytest.raises(InvalidRequest, match='invalid marshaling type "der"'):
        await _sign(tr, "r", marshaling_algorithm="der")


async def test_derived_ed25519(tr: Caller) -> None:
    await tr.write("keys/e", {"type": "ed25519", "derived": True})
    assert data(await tr.read("keys/e"))["keys"]["1"]["public_key"] == ""
    with pytest.raises(InvalidRequest, match="missing 'context'"):
        await _sign(tr, "e")
    out = await _sign(tr, "e", context=b64(b"user-1"))
    public_key = str(out["public_key"])
    shown = data(await tr.read("keys/e", context=b64(b"user-1")))["keys"]["1"]["public_key"]
    assert shown == public_key
    ed25519.Ed25519PublicKey.from_public_bytes(unb64(public_key)).verify(
        _sig_bytes(str(out["signature"])), MESSAGE
    )
    # the same context derives the same key, hence the same (deterministic) signature
    assert (await _sign(tr, "e", context=b64(b"user-1")))["signature"] == out["signature"]
    assert await _verify(tr, "e", str(out["signature"]), context=b64(b"user-1"))
    assert not await _verify(tr, "e", str(out["signature"]), context=b64(b"user-2"))


async def test_versions(tr: Caller) -> None:
    await tr.write("keys/e", {"type": "ecdsa-p256"})
    v1 = str((await _sign(tr, "e"))["signature"])
    await tr.write("keys/e/rotate")
    v2 = await _sign(tr, "e")
    assert v2["key_version"] == 2 and str(v2["signature"]).startswith("vault:v2:")
    assert await _verify(tr, "e", v1) and await _verify(tr, "e", str(v2["signature"]))
    assert not await _verify(tr, "e", "vault:v2:" + v1.split(":", 2)[2])
    assert (await _sign(tr, "e", key_version=1))["key_version"] == 1
    await tr.write("keys/e/config", {"min_decryption_version": 2, "min_encryption_version": 2})
    with pytest.raises(InvalidRequest, match="disallowed by policy"):
        await _verify(tr, "e", v1)
    with pytest.raises(InvalidRequest, match="less than the minimum encryption key version"):
        await _sign(tr, "e", key_version=1)
    with pytest.raises(InvalidRequest, match="version is too new"):
        await _verify(tr, "e", "vault:v7:" + v1.split(":", 2)[2])


async def test_batches(tr: Caller) -> None:
    await tr.write("keys/e", {"type": "ed25519", "derived": True})
    items = [
        {"input": b64(b"a"), "context": b64(b"c1"), "reference": "one"},
        {"input": "%%%", "context": b64(b"c1"), "reference": "bad"},
        {"input": b64(b"b"), "context": b64(b"c2")},
    ]
    signed = await tr.write("sign/e", {"batch_input": items})
    assert signed is not None and signed.status is None  # sign batches answer 200
    results = data(signed)["batch_results"]
    assert results[0]["reference"] == "one" and results[0]["key_version"] == 1
    assert "publickey" in results[0]
    assert results[1]["error"] and results[1]["reference"] == "bad"
    assert results[2]["reference"] == ""
    checks = [
        {"input": b64(b"a"), "context": b64(b"c1"), "signature": results[0]["signature"]},
        {"input": b64(b"a"), "context": b64(b"c2"), "signature": results[0]["signature"]},
        {"input": b64(b"b"), "context": b64(b"c2"), "signature": "nope"},
    ]
    verified = data(await tr.write("verify/e", {"batch_input": checks}))["batch_results"]
    assert [r["valid"] for r in verified] == [True, False, False]
    assert "no prefix" in verified[2]["error"]
    with pytest.raises(InvalidRequest, match="missing 'signature'"):
        await tr.write("verify/e", {"batch_input": [checks[0], {"input": b64(b"a")}]})


async def test_sign_verify_request_errors(tr: Caller) -> None:
    await tr.write("keys/k", {})
    with pytest.raises(InvalidRequest, match="does not support signing"):
        await _sign(tr, "k")
    with pytest.raises(InvalidRequest, match="does not support verification"):
        await _verify(tr, "k", "vault:v1:AAAA")
    with pytest.raises(InvalidRequest, match="signing key not found"):
        await _sign(tr, "none")
    with pytest.raises(InvalidRequest, match="neither a 'signature' nor an 'hmac'"):
        await tr.write("verify/k", {"input": b64(MESSAGE)})
    with pytest.raises(InvalidRequest, match="provide one of 'signature' or 'hmac'"):
        await tr.write("verify/k", {"input": "", "signature": "x", "hmac": "y"})


@pytest.mark.parametrize("algorithm", list(HASHES))
async def test_hmac_matches_local(tr: Caller, algorithm: str) -> None:
    await tr.write("keys/k", {"exportable": True})
    out = data(await tr.write(f"hmac/k/{algorithm}", {"input": b64(MESSAGE)}))
    key = unb64(data(await tr.read("export/hmac-key/k/1"))["keys"]["1"])
    mac = crypto_hmac.HMAC(key, HASHES[algorithm]())
    mac.update(MESSAGE)
    assert out["hmac"] == "vault:v1:" + b64(mac.finalize())
    body = {"input": b64(MESSAGE), "hmac": out["hmac"], "algorithm": algorithm}
    assert data(await tr.write("verify/k", body))["valid"] is True
    assert data(await tr.write(f"verify/k/{algorithm}", body | {"input": ""}))["valid"] is False


async def test_hmac_key_type_versions_and_batch(tr: Caller) -> None:
    await tr.write("keys/h", {"type": "hmac", "key_size": 48, "exportable": True})
    key = unb64(data(await tr.read("export/hmac-key/h/1"))["keys"]["1"])
    assert len(key) == 48
    first = data(await tr.write("hmac/h", {"input": b64(MESSAGE)}))["hmac"]
    mac = crypto_hmac.HMAC(key, hashes.SHA256())
    mac.update(MESSAGE)
    assert first == "vault:v1:" + b64(mac.finalize())
    await tr.write("keys/h/rotate")
    second = data(await tr.write("hmac/h", {"input": b64(MESSAGE)}))["hmac"]
    assert second.startswith("vault:v2:") and second[9:] != first[9:]
    pinned = data(await tr.write("hmac/h", {"input": b64(MESSAGE), "key_version": 1}))["hmac"]
    assert pinned == first
    batch = await tr.write(
        "hmac/h", {"batch_input": [{"input": b64(b"x"), "reference": "r"}, {}, {"input": "%"}]}
    )
    assert batch is not None and batch.status is None
    results = data(batch)["batch_results"]
    assert results[0]["hmac"].startswith("vault:v2:") and results[0]["reference"] == "r"
    assert results[1]["error"] == "missing input for HMAC"
    assert "base64" in results[2]["error"]
    checks = [{"input": b64(MESSAGE), "hmac": first}, {"input": b64(MESSAGE), "hmac": "x"}]
    verified = data(await tr.write("verify/h", {"batch_input": checks}))["batch_results"]
    assert verified[0]["valid"] is True and "no prefix" in verified[1]["error"]
    await tr.write("keys/h/config", {"min_decryption_version": 2})
    with pytest.raises(InvalidRequest, match="cannot verify HMAC: version is too old"):
        await tr.write("verify/h", {"input": b64(MESSAGE), "hmac": first})
    with pytest.raises(InvalidRequest, match="version is too new"):
        await tr.write("verify/h", {"input": b64(MESSAGE), "hmac": "vault:v9:AAAA"})
    with pytest.raises(InvalidRequest, match="unsupported algorithm md5"):
        await tr.write("hmac/h/md5", {"input": ""})
    with pytest.raises(InvalidRequest, match="missing input for HMAC"):
        await tr.write("hmac/h", {})
    with pytest.raises(InvalidRequest, match="encryption key not found"):
        await tr.write("hmac/none", {"input": ""})


async def test_local_signature_does_not_verify_with_other_key(tr: Caller) -> None:
    await tr.write("keys/a", {"type": "ed25519"})
    await tr.write("keys/b", {"type": "ed25519"})
    signature = str((await _sign(tr, "a"))["signature"])
    assert not await _verify(tr, "b", signature)
    public = await _public(tr, "b")
    assert isinstance(public, ed25519.Ed25519PublicKey)
    with pytest.raises(InvalidSignature):
        public.verify(_sig_bytes(signature), MESSAGE)
