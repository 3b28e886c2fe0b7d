"""encrypt/, decrypt/, rewrap/, datakey/: formats, derivation, convergence, AAD, batches, errors.

Ciphertexts are checked against local ``cryptography`` with exported keys, so the wire format
(``vault:v<N>:base64(nonce || ciphertext || tag)``) and the derivations are pinned down.
"""

from __future__ import annotations

import base64
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from strongroom.engines.transit._crypto import AUTH_FAILED, TOO_OLD
from strongroom.errors import CryptoError, InvalidRequest
from strongroom.logical import Operation, Request
from tests.engines.conftest import Caller
from tests.engines.transit.conftest import b64, data, unb64, update_only

pytestmark = pytest.mark.anyio

SECRET = b"attack at dawn \x00\xff"


async def _exported(tr: Caller, name: str, version: int = 1) -> bytes:
    await tr.write(f"keys/{name}/config", {"exportable": True})
    keys = data(await tr.read(f"export/encryption-key/{name}/{version}"))["keys"]
    return unb64(keys[str(version)])


def _split(ciphertext: str) -> tuple[int, bytes]:
    prefix, version, payload = ciphertext.split(":")
    assert prefix == "vault" and version.startswith("v")
    return int(version[1:]), base64.b64decode(payload)


@pytest.mark.parametrize("key_type", ["aes128-gcm96", "aes256-gcm96", "chacha20-poly1305"])
async def test_aead_format_and_local_decrypt(tr: Caller, key_type: str) -> None:
    await tr.write("keys/k", {"type": key_type})
    out = data(await tr.write("encrypt/k", {"plaintext": b64(SECRET)}))
    assert out["key_version"] == 1
    version, raw = _split(out["ciphertext"])
    assert version == 1 and len(raw) == 12 + len(SECRET) + 16
    key = await _exported(tr, "k")
    assert len(key) == (16 if key_type == "aes128-gcm96" else 32)
    aead = ChaCha20Poly1305(key) if key_type.startswith("chacha") else AESGCM(key)
    assert aead.decrypt(raw[:12], raw[12:], None) == SECRET
    # and the other way: a locally made ciphertext decrypts in the engine
    local = "vault:v1:" + b64(b"\x01" * 12 + aead.encrypt(b"\x01" * 12, b"local", None))
    assert unb64(data(await tr.write("decrypt/k", {"ciphertext": local}))["plaintext"]) == b"local"


async def test_random_nonces(tr: Caller) -> None:
    await tr.write("keys/k", {})
    a = data(await tr.write("encrypt/k", {"plaintext": b64(SECRET)}))["ciphertext"]
    b = data(await tr.write("encrypt/k", {"plaintext": b64(SECRET)}))["ciphertext"]
    assert a != b and _split(a)[1][:12] != _split(b)[1][:12]


async def test_empty_plaintext(tr: Caller) -> None:
    await tr.write("keys/k", {})
    ct = data(await tr.write("encrypt/k", {"plaintext": ""}))["ciphertext"]
    assert data(await tr.write("decrypt/k", {"ciphertext": ct})) == {"plaintext": ""}


@pytest.mark.parametrize("scheme", [None, "oaep", "pkcs1v15"])
async def test_rsa_encryption(tr: Caller, scheme: str | None) -> None:
    await tr.write("keys/r", {"type": "rsa-2048", "exportable": True})
    body = {"plaintext": b64(SECRET)} | ({"padding_scheme": scheme} if scheme else {})
    ct = data(await tr.write("encrypt/r", body))["ciphertext"]
    pem = data(await tr.read("export/encryption-key/r/1"))["keys"]["1"]
    assert pem.startswith("-----BEGIN RSA PRIVATE KEY-----")
    private = load_pem_private_key(pem.encode(), None)
    if scheme == "pkcs1v15":
        pad: padding.AsymmetricPadding = padding.PKCS1v15()
    else:
        pad = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)
    assert private.decrypt(_split(ct)[1], pad) == SECRET  # type: ignore[union-attr]
    decrypt_body = {"ciphertext": ct} | ({"padding_scheme": scheme} if scheme else {})
    assert unb64(data(await tr.write("decrypt/r", decrypt_body))["plaintext"]) == SECRET


async def test_derived_keys_follow_hkdf(tr: Caller) -> None:
    await tr.write("keys/d", {"derived": True})
    ctx = b"tenant-42"
    with pytest.raises(InvalidRequest, match="missing 'context' for key derivation"):
        await tr.write("encrypt/d", {"plaintext": b64(SECRET)})
    ct = data(await tr.write("encrypt/d", {"plaintext": b64(SECRET), "context": b64(ctx)}))
    raw = _split(ct["ciphertext"])[1]
    root = await _exported(tr, "d")
    derived = HKDF(hashes.SHA256(), 32, salt=None, info=ctx).derive(root)
    assert AESGCM(derived).decrypt(raw[:12], raw[12:], None) == SECRET
    with pytest.raises(CryptoError, match=AUTH_FAILED):
        await tr.write("decrypt/d", {"ciphertext": ct["ciphertext"], "context": b64(b"tenant-43")})
    with pytest.raises(InvalidRequest, match="missing 'context'"):
        await tr.write("decrypt/d", {"ciphertext": ct["ciphertext"]})


@pytest.mark.parametrize("key_type", ["aes128-gcm96", "aes256-gcm96", "chacha20-poly1305"])
async def test_convergent_encryption_v3(tr: Caller, key_type: str) -> None:
    await tr.write("keys/c", {"type": key_type, "derived": True, "convergent_encryption": True})
    body = {"plaintext": b64(SECRET), "context": b64(b"ctx")}
    first = data(await tr.write("encrypt/c", body))["ciphertext"]
    assert data(await tr.write("encrypt/c", body))["ciphertext"] == first
    other = data(await tr.write("encrypt/c", body | {"context": b64(b"ctx2")}))["ciphertext"]
    assert other != first
    # Vault's convergent version 3: HKDF yields enc key || 32-byte nonce key, and the nonce is
    # HMAC-SHA256(nonce key, plaintext) truncated to 12 bytes
    size = 16 if key_type == "aes128-gcm96" else 32
    material = HKDF(hashes.SHA256(), size + 32, salt=None, info=b"ctx").derive(
        await _exported(tr, "c")
    )
    mac = crypto_hmac.HMAC(material[size:], hashes.SHA256())
    mac.update(SECRET)
    raw = _split(first)[1]
    assert raw[:12] == mac.finalize()[:12]
    aead = ChaCha20Poly1305 if key_type.startswith("chacha") else AESGCM
    assert aead(material[:size]).decrypt(raw[:12], raw[12:], None) == SECRET
    with pytest.raises(InvalidRequest, match="provided nonce not allowed"):
        await tr.write("encrypt/c", body | {"nonce": b64(b"\x00" * 12)})


async def test_associated_data(tr: Caller) -> None:
    await tr.write("keys/k", {})
    ad = b64(b"order-7")
    ct = data(await tr.write("encrypt/k", {"plaintext": b64(SECRET), "associated_data": ad}))
    raw = _split(ct["ciphertext"])[1]
    assert AESGCM(await _exported(tr, "k")).decrypt(raw[:12], raw[12:], b"order-7") == SECRET
    out = await tr.write("decrypt/k", {"ciphertext": ct["ciphertext"], "associated_data": ad})
    assert unb64(data(out)["plaintext"]) == SECRET
    for wrong in ({}, {"associated_data": b64(b"order-8")}):
        with pytest.raises(CryptoError, match=AUTH_FAILED):
            await tr.write("decrypt/k", {"ciphertext": ct["ciphertext"]} | wrong)
    await tr.write("keys/r", {"type": "rsa-2048"})
    with pytest.raises(InvalidRequest, match="associated_data' provided for non-AEAD"):
        await tr.write("encrypt/r", {"plaintext": b64(SECRET), "associated_data": ad})


async def test_tampering_gives_one_flat_error(tr: Caller) -> None:
    await tr.write("keys/k", {})
    ct = data(await tr.write("encrypt/k", {"plaintext": b64(SECRET)}))["ciphertext"]
    raw = _split(ct)[1]
    variants = [raw[:i] + bytes([raw[i] ^ 1]) + raw[i + 1 :] for i in range(len(raw))]
    variants += [raw[:5], raw[:-1], b"", raw + b"\x00"]
    for variant in variants:
        with pytest.raises(CryptoError) as caught:
            await tr.write("decrypt/k", {"ciphertext": "vault:v1:" + b64(variant)})
        message = str(caught.value)
        assert message == AUTH_FAILED
        assert b64(SECRET) not in message
        assert not variant or b64(variant) not in message


@pytest.mark.parametrize(
    ("ciphertext", "message"),
    [
        ("v1:abcd", "invalid ciphertext: no prefix"),
        ("vault:v1", "wrong number of fields"),
        ("vault:vX:abcd", "version number could not be decoded"),
        ("vault:v9:abcd", "version is too new"),
        ("vault:v1:@@@@", AUTH_FAILED),
    ],
)
async def test_malformed_ciphertexts(tr: Caller, ciphertext: str, message: str) -> None:
    await tr.write("keys/k", {})
    with pytest.raises(InvalidRequest, match=message) as caught:
        await tr.write("decrypt/k", {"ciphertext": ciphertext})
    assert "abcd" not in str(caught.value)


async def test_request_errors(tr: Caller) -> None:
    await tr.write("keys/k", {})
    await tr.write("keys/e", {"type": "ed25519"})
    with pytest.raises(InvalidRequest, match="missing plaintext to encrypt"):
        await tr.write("encrypt/k", {})
    with pytest.raises(InvalidRequest, match="missing ciphertext to decrypt"):
        await tr.write("decrypt/k", {})
    with pytest.raises(InvalidRequest, match="unable to decode plaintext as base64"):
        await tr.write("encrypt/k", {"plaintext": "not base64!"})
    with pytest.raises(InvalidRequest, match="encryption key not found"):
        await update_only(tr, "encrypt/missing", {"plaintext": ""})
    with pytest.raises(
        InvalidRequest, match="message encryption not supported for key type ed25519"
    ):
        await tr.write("encrypt/e", {"plaintext": ""})
    with pytest.raises(InvalidRequest, match="message decryption not supported"):
        await tr.write("decrypt/e", {"ciphertext": "vault:v1:AAAA"})
    with pytest.raises(InvalidRequest, match="provided nonce not allowed"):
        await tr.write("encrypt/k", {"plaintext": "", "nonce": b64(b"\x00" * 12)})
    with pytest.raises(InvalidRequest, match="padding_scheme' invalid"):
        await tr.write("encrypt/k", {"plaintext": "", "padding_scheme": "oaep"})


async def test_key_versions_and_min_decryption(tr: Caller) -> None:
    await tr.write("keys/k", {})
    v1 = data(await tr.write("encrypt/k", {"plaintext": b64(b"one")}))["ciphertext"]
    await tr.write("keys/k/rotate")
    out = data(await tr.write("encrypt/k", {"plaintext": b64(b"two")}))
    assert out["key_version"] == 2 and out["ciphertext"].startswith("vault:v2:")
    pinned = data(await tr.write("encrypt/k", {"plaintext": b64(b"x"), "key_version": 1}))
    assert pinned["key_version"] == 1 and pinned["ciphertext"].startswith("vault:v1:")
    with pytest.raises(InvalidRequest, match="higher than the latest key version"):
        await tr.write("encrypt/k", {"plaintext": "", "key_version": 3})
    await tr.write("keys/k/config", {"min_encryption_version": 2})
    with pytest.raises(InvalidRequest, match="less than the minimum encryption key version"):
        await tr.write("encrypt/k", {"plaintext": "", "key_version": 1})
    assert unb64(data(await tr.write("decrypt/k", {"ciphertext": v1}))["plaintext"]) == b"one"
    await tr.write("keys/k/config", {"min_decryption_version": 2})
    with pytest.raises(InvalidRequest, match="disallowed by policy"):
        await tr.write("decrypt/k", {"ciphertext": v1})
    assert TOO_OLD == "ciphertext or signature version is disallowed by policy (too old)"


async def test_rewrap(tr: Caller) -> None:
    await tr.write("keys/k", {"derived": True})
    ctx = b64(b"c")
    v1 = data(await tr.write("encrypt/k", {"plaintext": b64(SECRET), "context": ctx}))
    await tr.write("keys/k/rotate")
    rewrapped = data(await tr.write("rewrap/k", {"ciphertext": v1["ciphertext"], "context": ctx}))
    assert rewrapped["key_version"] == 2 and rewrapped["ciphertext"].startswith("vault:v2:")
    back = data(
        await tr.write("decrypt/k", {"ciphertext": rewrapped["ciphertext"], "context": ctx})
    )
    assert unb64(back["plaintext"]) == SECRET
    batch = data(
        await tr.write(
            "rewrap/k",
            {"batch_input": [{"ciphertext": v1["ciphertext"], "context": ctx, "reference": "r1"}]},
        )
    )
    assert batch["batch_results"][0]["key_version"] == 2
    assert batch["batch_results"][0]["reference"] == "r1"
    with pytest.raises(CryptoError):
        await tr.write("rewrap/k", {"ciphertext": v1["ciphertext"], "context": b64(b"other")})


async def test_batch_encrypt_decrypt_and_status_rules(tr: Caller) -> None:
    await tr.write("keys/k", {})
    items = [{"plaintext": b64(bytes([i]) * i), "reference": f"ref-{i}"} for i in range(5)]
    enc = await tr.write("encrypt/k", {"batch_input": items})
    assert enc is not None and enc.status is None
    results = data(enc)["batch_results"]
    assert [r["reference"] for r in results] == [f"ref-{i}" for i in range(5)]
    assert all(r["key_version"] == 1 for r in results)
    dec_items = [{"ciphertext": r["ciphertext"], "reference": r["reference"]} for r in results]
    dec_items.append({"ciphertext": "vault:v1:" + b64(b"\x00" * 40), "reference": "bad"})
    dec = await tr.write("decrypt/k", {"batch_input": dec_items})
    assert dec is not None and dec.status == 400  # one failed item: 400, results still present
    out = data(dec)["batch_results"]
    assert [unb64(r["plaintext"]) for r in out[:5]] == [bytes([i]) * i for i in range(5)]
    assert out[5] == {"error": AUTH_FAILED, "reference": "bad"}
    partial = await tr.write(
        "decrypt/k", {"batch_input": dec_items, "partial_failure_response_code": 207}
    )
    assert partial is not None and partial.status == 207
    all_bad = await tr.write(
        "decrypt/k", {"batch_input": dec_items[5:], "partial_failure_response_code": 207}
    )
    assert all_bad is not None and all_bad.status == 400
    bad_enc = await tr.write(
        "encrypt/k", {"batch_input": [{"plaintext": "%%%"}, {"plaintext": b64(b"ok")}]}
    )
    assert bad_enc is not None and bad_enc.status == 400
    assert "error" in data(bad_enc)["batch_results"][0]
    assert data(bad_enc)["batch_results"][1]["key_version"] == 1


async def test_batch_request_level_errors(tr: Caller) -> None:
    await tr.write("keys/k", {"derived": True})
    with pytest.raises(InvalidRequest, match="context should be set either in all"):
        await tr.write(
            "encrypt/k",
            {"batch_input": [{"plaintext": "", "context": b64(b"a")}, {"plaintext": ""}]},
        )
    with pytest.raises(InvalidRequest, match="missing batch input to process"):
        await tr.write("encrypt/k", {"batch_input": []})
    with pytest.raises(InvalidRequest, match="expected a map"):
        await tr.write("encrypt/k", {"batch_input": ["x"]})
    with pytest.raises(InvalidRequest, match="missing plaintext to encrypt"):
        await tr.write("encrypt/k", {"batch_input": [{"context": b64(b"a")}]})
    with pytest.raises(InvalidRequest, match="missing ciphertext"):
        await tr.write("decrypt/k", {"batch_input": [{"context": b64(b"a")}]})
    batch = [{"plaintext": b64(b"x"), "context": b64(c)} for c in (b"a", b"b")]
    out = data(await tr.write("encrypt/k", {"batch_input": batch}))["batch_results"]
    dec = [
        {"ciphertext": r["ciphertext"], "context": b64(c)}
        for r, c in zip(out, (b"a", b"b"), strict=True)
    ]
    assert all(
        unb64(r["plaintext"]) == b"x"
        for r in data(await tr.write("decrypt/k", {"batch_input": dec}))["batch_results"]
    )


async def test_upsert_on_create(tr: Caller) -> None:
    created = await tr.request(
        Operation.CREATE, "encrypt/new", {"plaintext": b64(SECRET), "context": b64(b"c")}
    )
    assert data(created)["key_version"] == 1
    info = data(await tr.read("keys/new"))
    assert info["derived"] is True and info["type"] == "aes256-gcm96"
    raced = await tr.backend.handle(  # CREATE as decided before another request created it
        Request(
            Operation.CREATE,
            "encrypt/new",
            {"plaintext": "", "context": b64(b"c")},
            storage=tr.storage,
        )
    )
    assert raced is not None and "created beforehand" in raced.warnings[0]
    chacha = await tr.request(
        Operation.CREATE, "encrypt/cc", {"plaintext": "", "type": "chacha20-poly1305"}
    )
    assert data(chacha) and data(await tr.read("keys/cc"))["type"] == "chacha20-poly1305"
    with pytest.raises(InvalidRequest, match="not supported for this operation"):
        await tr.request(Operation.CREATE, "encrypt/x", {"plaintext": "", "type": "ecdsa-p256"})
    with pytest.raises(InvalidRequest, match="unknown key type ed25519"):
        await tr.request(Operation.CREATE, "encrypt/x", {"plaintext": "", "type": "ed25519"})
    with pytest.raises(InvalidRequest, match="convergent encryption requires derivation"):
        await tr.request(
            Operation.CREATE, "encrypt/x", {"plaintext": "", "convergent_encryption": True}
        )
    # an update (no create capability) never creates
    with pytest.raises(InvalidRequest, match="encryption key not found"):
        await update_only(tr, "encrypt/y", {"plaintext": ""})
    exists = Request(Operation.UPDATE, "encrypt/new", {}, storage=tr.storage)
    assert await tr.backend.exists(exists) is True
    assert await tr.backend.exists(replace(exists, path="encrypt/y")) is False


@pytest.mark.parametrize("bits", [128, 256, 512])
async def test_datakey(tr: Caller, bits: int) -> None:
    await tr.write("keys/k", {})
    plain = data(await tr.write("datakey/plaintext/k", {"bits": bits}))
    assert len(unb64(plain["plaintext"])) == bits // 8 and plain["key_version"] == 1
    back = data(await tr.write("decrypt/k", {"ciphertext": plain["ciphertext"]}))
    assert back["plaintext"] == plain["plaintext"]
    wrapped = data(await tr.write("datakey/wrapped/k", {"bits": bits}))
    assert "plaintext" not in wrapped and wrapped["ciphertext"].startswith("vault:v1:")


async def test_datakey_errors(tr: Caller) -> None:
    await tr.write("keys/k", {})
    with pytest.raises(InvalidRequest, match="invalid bits value"):
        await tr.write("datakey/plaintext/k", {"bits": 64})
    with pytest.raises(InvalidRequest, match="must be 'plaintext' or 'wrapped'"):
        await tr.write("datakey/other/k", {})
    with pytest.raises(InvalidRequest, match="encryption key not found"):
        await tr.write("datakey/plaintext/none", {})
