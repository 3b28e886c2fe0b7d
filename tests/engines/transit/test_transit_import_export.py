"""BYOK import (wrapped exactly as Vault documents), export, backup and restore.

Material imported here is generated locally, so every check is an interoperability check:
ciphertexts made by the engine decrypt with the local key and signatures verify with local
public keys.
"""

from __future__ import annotations

import base64
import functools
import json
import os
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

from strongroom.engines.transit._store import WRAPPING_KEY_PATH
from strongroom.errors import CryptoError, InvalidRequest
from tests.engines.conftest import Caller, MemoryStorage
from tests.engines.transit.conftest import b64, data, unb64

pytestmark = pytest.mark.anyio

MESSAGE = b"interoperable"
_PKCS8 = (serialization.Encoding.DER, serialization.PrivateFormat.PKCS8)


@functools.cache
def _wrapping_der() -> bytes:
    """One RSA-4096 wrapping key for the whole module (generating one takes a second)."""
    key = rsa.generate_private_key(65537, 4096)
    return key.private_bytes(*_PKCS8, serialization.NoEncryption())


@pytest.fixture
def seeded(storage: MemoryStorage) -> None:
    storage.data[WRAPPING_KEY_PATH] = orjson.dumps(
        {"type": "rsa-4096", "key": b64(_wrapping_der())}
    )


def pkcs8(private: Any) -> bytes:
    return bytes(private.private_bytes(*_PKCS8, serialization.NoEncryption()))


async def wrap(
    tr: Caller, target: bytes, hash_cls: type[hashes.HashAlgorithm] = hashes.SHA256
) -> str:
    """Vault's BYOK recipe: RSA-OAEP(ephemeral AES-256 key) || AES-KWP(ephemeral, target)."""
    pem = data(await tr.read("wrapping_key"))["public_key"]
    wrapping = load_pem_public_key(pem.encode())
    assert isinstance(wrapping, rsa.RSAPublicKey) and wrapping.key_size == 4096
    ephemeral = os.urandom(32)
    oaep = padding.OAEP(mgf=padding.MGF1(hash_cls()), algorithm=hash_cls(), label=None)
    return b64(wrapping.encrypt(ephemeral, oaep) + aes_key_wrap_with_padding(ephemeral, target))


def _sig(signature: str, urlsafe: bool = False) -> bytes:
    payload = signature.split(":", 2)[2]
    if urlsafe:
        return base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    return base64.b64decode(payload)


# ---- wrapping key and BYOK ---------------------------------------------------------------------


async def test_wrapping_key_is_generated_once_and_kept(tr: Caller, storage: MemoryStorage) -> None:
    first = data(await tr.read("wrapping_key"))["public_key"]
    assert first.startswith("-----BEGIN PUBLIC KEY-----")
    public = load_pem_public_key(first.encode())
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 4096
    assert data(await tr.read("wrapping_key"))["public_key"] == first
    assert WRAPPING_KEY_PATH in storage.data


@pytest.mark.parametrize("hash_cls", [hashes.SHA256, hashes.SHA1, hashes.SHA512])
async def test_import_aes_and_decrypt_locally(
    tr: Caller, seeded: None, hash_cls: type[hashes.HashAlgorithm]
) -> None:
    local_key = os.urandom(32)
    body = {
        "ciphertext": await wrap(tr, local_key, hash_cls),
        "hash_function": hash_cls.name.upper().replace("-", ""),
    }
    assert await tr.write("keys/byok/import", body) is None
    info = data(await tr.read("keys/byok"))
    assert info["imported_key"] is True and info["imported_key_allow_rotation"] is False
    ct = data(await tr.write("encrypt/byok", {"plaintext": b64(MESSAGE)}))["ciphertext"]
    raw = base64.b64decode(ct.split(":", 2)[2])
    assert AESGCM(local_key).decrypt(raw[:12], raw[12:], None) == MESSAGE
    local_ct = b"\x07" * 12 + AESGCM(local_key).encrypt(b"\x07" * 12, b"from outside", None)
    out = data(await tr.write("decrypt/byok", {"ciphertext": "vault:v1:" + b64(local_ct)}))
    assert unb64(out["plaintext"]) == b"from outside"


@pytest.mark.parametrize(
    ("key_type", "curve", "size"),
    [("ecdsa-p256", ec.SECP256R1(), 32), ("ecdsa-p384", ec.SECP384R1(), 48)],
)
async def test_import_ecdsa_and_verify_locally(
    tr: Caller, seeded: None, key_type: str, curve: ec.EllipticCurve, size: int
) -> None:
    local = ec.generate_private_key(curve)
    await tr.write("keys/ec/import", {"type": key_type, "ciphertext": await wrap(tr, pkcs8(local))})
    shown = data(await tr.read("keys/ec"))["keys"]["1"]["public_key"]
    assert load_pem_public_key(shown.encode()) == local.public_key()
    asn1 = data(await tr.write("sign/ec", {"input": b64(MESSAGE)}))["signature"]
    local.public_key().verify(_sig(asn1), MESSAGE, ec.ECDSA(hashes.SHA256()))
    jws = data(await tr.write("sign/ec", {"input": b64(MESSAGE), "marshaling_algorithm": "jws"}))[
        "signature"
    ]
    raw = _sig(jws, urlsafe=True)
    assert len(raw) == 2 * size
    der = utils.encode_dss_signature(
        int.from_bytes(raw[:size], "big"), int.from_bytes(raw[size:], "big")
    )
    local.public_key().verify(der, MESSAGE, ec.ECDSA(hashes.SHA256()))
    # and a signature made locally verifies in the engine
    mine = "vault:v1:" + b64(local.sign(MESSAGE, ec.ECDSA(hashes.SHA256())))
    assert data(await tr.write("verify/ec", {"input": b64(MESSAGE), "signature": mine}))["valid"]


async def test_import_ed25519_and_verify_locally(tr: Caller, seeded: None) -> None:
    local = ed25519.Ed25519PrivateKey.generate()
    await tr.write(
        "keys/ed/import", {"type": "ed25519", "ciphertext": await wrap(tr, pkcs8(local))}
    )
    signature = data(await tr.write("sign/ed", {"input": b64(MESSAGE)}))["signature"]
    local.public_key().verify(_sig(signature), MESSAGE)
    # ed25519 signatures are deterministic: the engine and the local key agree byte for byte
    assert _sig(signature) == local.sign(MESSAGE)
    await tr.write("keys/ed/config", {"exportable": True})
    exported = unb64(data(await tr.read("export/signing-key/ed/1"))["keys"]["1"])
    assert (
        exported[:32] == local.private_bytes_raw()
        and exported[32:] == local.public_key().public_bytes_raw()
    )


async def test_import_rsa_both_ways(tr: Caller, seeded: None) -> None:
    local = rsa.generate_private_key(65537, 2048)
    await tr.write(
        "keys/r/import", {"type": "rsa-2048", "ciphertext": await wrap(tr, pkcs8(local))}
    )
    signature = data(await tr.write("sign/r", {"input": b64(MESSAGE)}))["signature"]
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)
    local.public_key().verify(_sig(signature), MESSAGE, pss, hashes.SHA256())
    oaep = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)
    ct = "vault:v1:" + b64(local.public_key().encrypt(MESSAGE, oaep))
    assert unb64(data(await tr.write("decrypt/r", {"ciphertext": ct}))["plaintext"]) == MESSAGE
    with pytest.raises(InvalidRequest, match="invalid key size"):
        await tr.write(
            "keys/r3/import", {"type": "rsa-3072", "ciphertext": await wrap(tr, pkcs8(local))}
        )


async def test_import_hmac(tr: Caller, seeded: None) -> None:
    local_key = os.urandom(40)
    await tr.write("keys/h/import", {"type": "hmac", "ciphertext": await wrap(tr, local_key)})
    assert data(await tr.read("keys/h"))["key_size"] == 40
    from cryptography.hazmat.primitives import hmac as crypto_hmac

    mac = crypto_hmac.HMAC(local_key, hashes.SHA256())
    mac.update(MESSAGE)
    assert data(await tr.write("hmac/h", {"input": b64(MESSAGE)}))["hmac"] == "vault:v1:" + b64(
        mac.finalize()
    )


async def test_import_errors(tr: Caller, seeded: None) -> None:
    good = await wrap(tr, os.urandom(32))
    await tr.write("keys/k/import", {"ciphertext": good})
    with pytest.raises(InvalidRequest, match="cannot be used with an existing key"):
        await tr.write("keys/k/import", {"ciphertext": good})
    with pytest.raises(InvalidRequest, match="convergent encryption"):
        await tr.write("keys/c/import", {"ciphertext": good, "convergent_encryption": True})
    with pytest.raises(InvalidRequest, match="allow_rotation must be set"):
        await tr.write("keys/c/import", {"ciphertext": good, "auto_rotate_period": "2h"})
    with pytest.raises(InvalidRequest, match="too short"):
        await tr.write("keys/c/import", {"ciphertext": b64(b"x" * 100)})
    with pytest.raises(CryptoError, match="failed to unwrap the imported key") as caught:
        await tr.write("keys/c/import", {"ciphertext": b64(os.urandom(600))})
    assert "600" not in str(caught.value)
    with pytest.raises(InvalidRequest, match="unknown hash function: MD5"):
        await tr.write("keys/c/import", {"ciphertext": good, "hash_function": "MD5"})
    with pytest.raises(CryptoError):  # wrapped with SHA256, unwrapped as SHA1
        await tr.write("keys/c/import", {"ciphertext": good, "hash_function": "SHA1"})
    with pytest.raises(InvalidRequest, match="invalid key size 16 bytes for key type aes256"):
        await tr.write("keys/c/import", {"ciphertext": await wrap(tr, os.urandom(16))})
    ec_der = pkcs8(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(InvalidRequest, match="invalid key type: expected ed25519"):
        await tr.write("keys/c/import", {"type": "ed25519", "ciphertext": await wrap(tr, ec_der)})
    with pytest.raises(InvalidRequest, match="invalid curve: expected P-384"):
        await tr.write(
            "keys/c/import", {"type": "ecdsa-p384", "ciphertext": await wrap(tr, ec_der)}
        )
    with pytest.raises(InvalidRequest, match="not a PKCS#8 private key"):
        await tr.write(
            "keys/c/import", {"type": "ecdsa-p256", "ciphertext": await wrap(tr, b"junk")}
        )
    with pytest.raises(InvalidRequest, match="unknown key type"):
        await tr.write("keys/c/import", {"type": "des", "ciphertext": good})
    assert await tr.read("keys/c") is None


async def test_imported_rotation_and_versions(tr: Caller, seeded: None) -> None:
    await tr.write("keys/k/import", {"ciphertext": await wrap(tr, os.urandom(32))})
    with pytest.raises(InvalidRequest, match="does not allow rotation"):
        await tr.write("keys/k/rotate")
    second = os.urandom(32)
    await tr.write("keys/k/import_version", {"ciphertext": await wrap(tr, second)})
    out = data(await tr.write("encrypt/k", {"plaintext": b64(MESSAGE)}))
    assert out["key_version"] == 2
    raw = base64.b64decode(out["ciphertext"].split(":", 2)[2])
    assert AESGCM(second).decrypt(raw[:12], raw[12:], None) == MESSAGE

    await tr.write(
        "keys/r/import", {"ciphertext": await wrap(tr, os.urandom(32)), "allow_rotation": True}
    )
    assert data(await tr.write("keys/r/rotate"))["imported_key"] is False
    with pytest.raises(InvalidRequest, match="can only be used with an imported key"):
        await tr.write("keys/r/import_version", {"ciphertext": await wrap(tr, os.urandom(32))})
    with pytest.raises(InvalidRequest, match="no key found with name none"):
        await tr.write("keys/none/import_version", {"ciphertext": await wrap(tr, os.urandom(32))})


async def test_public_key_import_then_private_half(tr: Caller, seeded: None) -> None:
    local = ec.generate_private_key(ec.SECP256R1())
    public_pem = (
        local.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    await tr.write("keys/p/import", {"type": "ecdsa-p256", "public_key": public_pem})
    mine = "vault:v1:" + b64(local.sign(MESSAGE, ec.ECDSA(hashes.SHA256())))
    assert data(await tr.write("verify/p", {"input": b64(MESSAGE), "signature": mine}))["valid"]
    with pytest.raises(InvalidRequest, match="does not contain a private part"):
        await tr.write("sign/p", {"input": b64(MESSAGE)})
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(InvalidRequest, match="key pair does not match"):
        await tr.write(
            "keys/p/import_version", {"ciphertext": await wrap(tr, pkcs8(other)), "version": 1}
        )
    await tr.write(
        "keys/p/import_version", {"ciphertext": await wrap(tr, pkcs8(local)), "version": 1}
    )
    signature = data(await tr.write("sign/p", {"input": b64(MESSAGE)}))["signature"]
    local.public_key().verify(_sig(signature), MESSAGE, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidRequest, match="private key imported, key version cannot be updated"):
        await tr.write(
            "keys/p/import_version", {"ciphertext": await wrap(tr, pkcs8(local)), "version": 1}
        )
    with pytest.raises(InvalidRequest, match="does not support public_key import"):
        await tr.write("keys/s/import", {"type": "aes256-gcm96", "public_key": public_pem})
    with pytest.raises(InvalidRequest, match="not in PEM format"):
        await tr.write("keys/s/import", {"type": "ecdsa-p256", "public_key": "nope"})


async def test_rsa_public_key_import_encrypts_only(tr: Caller) -> None:
    local = rsa.generate_private_key(65537, 2048)
    public_pem = (
        local.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    await tr.write("keys/r/import", {"type": "rsa-2048", "public_key": public_pem})
    ct = data(await tr.write("encrypt/r", {"plaintext": b64(MESSAGE)}))["ciphertext"]
    oaep = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)
    assert local.decrypt(base64.b64decode(ct.split(":", 2)[2]), oaep) == MESSAGE
    with pytest.raises(InvalidRequest, match="does not contain a private part"):
        await tr.write("decrypt/r", {"ciphertext": ct})


# ---- export --------------------------------------------------------------------------------------


async def test_export_kinds_and_versions(tr: Caller) -> None:
    await tr.write("keys/k", {})
    with pytest.raises(InvalidRequest, match="not exportable"):
        await tr.read("export/encryption-key/k")
    await tr.write("keys/k/config", {"exportable": True})
    await tr.write("keys/k/rotate")
    both = data(await tr.read("export/encryption-key/k"))
    assert (
        both["name"] == "k" and both["type"] == "aes256-gcm96" and set(both["keys"]) == {"1", "2"}
    )
    assert all(len(unb64(v)) == 32 for v in both["keys"].values())
    assert set(data(await tr.read("export/encryption-key/k/latest"))["keys"]) == {"2"}
    assert data(await tr.read("export/hmac-key/k/v1"))["keys"]["1"] != both["keys"]["1"]
    with pytest.raises(InvalidRequest, match="signing not supported"):
        await tr.read("export/signing-key/k")
    with pytest.raises(
        InvalidRequest, match="unknown key type aes256-gcm96 for export type public-key"
    ):
        await tr.read("export/public-key/k")
    with pytest.raises(InvalidRequest, match="invalid export type: secret-key"):
        await tr.read("export/secret-key/k")
    with pytest.raises(InvalidRequest, match="invalid key version"):
        await tr.read("export/encryption-key/k/two")
    with pytest.raises(InvalidRequest, match="does not exist"):
        await tr.read("export/encryption-key/k/3")
    await tr.write("keys/k/config", {"min_decryption_version": 2})
    with pytest.raises(InvalidRequest, match="below minimum decryption version"):
        await tr.read("export/encryption-key/k/1")
    assert set(data(await tr.read("export/encryption-key/k"))["keys"]) == {"2"}
    assert await tr.read("export/encryption-key/none") is None


@pytest.mark.parametrize("key_type", ["ecdsa-p256", "ed25519", "rsa-2048"])
async def test_export_asymmetric(tr: Caller, key_type: str) -> None:
    await tr.write("keys/a", {"type": key_type})
    public = data(await tr.read("export/public-key/a/1"))["keys"]["1"]  # never needs exportable
    await tr.write("keys/a/config", {"exportable": True})
    private = data(await tr.read("export/signing-key/a/1"))["keys"]["1"]
    signature = data(await tr.write("sign/a", {"input": b64(MESSAGE)}))["signature"]
    if key_type == "ed25519":
        key = ed25519.Ed25519PrivateKey.from_private_bytes(unb64(private)[:32])
        assert b64(key.public_key().public_bytes_raw()) == public
        key.public_key().verify(_sig(signature), MESSAGE)
    elif key_type == "ecdsa-p256":
        assert private.startswith("-----BEGIN EC PRIVATE KEY-----") and not private.endswith("\n")
        ec_key = load_pem_private_key(private.encode(), None)
        assert isinstance(ec_key, ec.EllipticCurvePrivateKey)
        assert load_pem_public_key(public.encode()) == ec_key.public_key()
        ec_key.public_key().verify(_sig(signature), MESSAGE, ec.ECDSA(hashes.SHA256()))
    else:
        assert private.startswith("-----BEGIN RSA PRIVATE KEY-----")
        rsa_key = load_pem_private_key(private.encode(), None)
        assert isinstance(rsa_key, rsa.RSAPrivateKey)
        assert data(await tr.read("export/encryption-key/a/1"))["keys"]["1"] == private
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
        rsa_key.public_key().verify(_sig(signature), MESSAGE, pss, hashes.SHA256())


# ---- backup and restore ------------------------------------------------------------------------


async def test_backup_requires_both_flags(tr: Caller) -> None:
    await tr.write("keys/k", {})
    with pytest.raises(InvalidRequest, match="exporting is disallowed"):
        await tr.read("backup/k")
    await tr.write("keys/k/config", {"exportable": True})
    with pytest.raises(InvalidRequest, match="plaintext backup is disallowed"):
        await tr.read("backup/k")
    with pytest.raises(InvalidRequest, match='key "none" not found'):
        await tr.read("backup/none")


@pytest.mark.parametrize(
    "key_type", ["aes256-gcm96", "chacha20-poly1305", "ecdsa-p521", "ed25519", "rsa-2048", "hmac"]
)
async def test_backup_restore_round_trip(tr: Caller, clock: Any, key_type: str) -> None:
    await tr.write("keys/k", {"type": key_type, "exportable": True, "allow_plaintext_backup": True})
    await tr.write("keys/k/rotate")
    before = data(await tr.read("export/hmac-key/k"))["keys"]
    backup = data(await tr.read("backup/k"))["backup"]
    document = json.loads(base64.b64decode(backup))
    assert document["policy"]["name"] == "k" and document["policy"]["latest_version"] == 2
    assert data(await tr.read("keys/k"))["backup_info"]["version"] == 2
    clock.advance(5)
    assert await tr.write("restore/copy", {"backup": backup}) is None
    restored = data(await tr.read("keys/copy"))
    assert restored["type"] == key_type and restored["latest_version"] == 2
    assert restored["restore_info"] == {"time": "2023-11-14T22:13:25Z", "version": 2}
    assert data(await tr.read("export/hmac-key/copy"))["keys"] == before
    if key_type in ("aes256-gcm96", "chacha20-poly1305"):
        ct = data(await tr.write("encrypt/k", {"plaintext": b64(MESSAGE), "key_version": 1}))[
            "ciphertext"
        ]
        assert (
            unb64(data(await tr.write("decrypt/copy", {"ciphertext": ct}))["plaintext"]) == MESSAGE
        )
    elif key_type != "hmac":
        signature = data(await tr.write("sign/copy", {"input": b64(MESSAGE)}))["signature"]
        assert data(await tr.write("verify/k", {"input": b64(MESSAGE), "signature": signature}))[
            "valid"
        ]
    with pytest.raises(InvalidRequest, match='key "copy" already exists'):
        await tr.write("restore", {"backup": backup, "name": "copy"})
    await tr.write("restore", {"backup": backup, "name": "copy", "force": True})


async def test_restore_keeps_trim_and_versions(tr: Caller) -> None:
    await tr.write("keys/k", {"exportable": True, "allow_plaintext_backup": True})
    for _ in range(3):
        await tr.write("keys/k/rotate")
    await tr.write("keys/k/config", {"min_decryption_version": 3, "min_encryption_version": 3})
    await tr.write("keys/k/trim", {"min_available_version": 2})
    backup = data(await tr.read("backup/k"))["backup"]
    await tr.write("restore/t", {"backup": backup})
    info = data(await tr.read("keys/t"))
    assert (
        info["min_available_version"],
        info["min_decryption_version"],
        info["latest_version"],
    ) == (2, 3, 4)
    await tr.write("keys/t/config", {"min_decryption_version": 2})
    assert set(data(await tr.read("export/encryption-key/t"))["keys"]) == {"2", "3", "4"}


async def test_restore_errors(tr: Caller) -> None:
    with pytest.raises(InvalidRequest, match="'backup' must be supplied"):
        await tr.write("restore", {})
    for junk in ("%%%", b64(b"{}"), b64(b"not json")):
        with pytest.raises(InvalidRequest, match="invalid backup") as caught:
            await tr.write("restore", {"backup": junk})
        assert junk not in str(caught.value)


async def test_restore_a_vault_format_backup(tr: Caller) -> None:
    """A backup shaped as Vault writes it: numeric type, EC numbers as JSON integers, an
    archive indexed from version 0, RFC 3339 times with offsets."""
    local = ec.generate_private_key(ec.SECP256R1())
    numbers = local.private_numbers()
    entry = {
        "key": None,
        "hmac_key": b64(os.urandom(32)),
        "time": "2017-12-08T11:50:08.613837-05:00",
        "ec_x": numbers.public_numbers.x,
        "ec_y": numbers.public_numbers.y,
        "ec_d": numbers.private_value,
        "creation_time": 1512751808,
    }
    document = {
        "policy": {
            "name": "vault-ec",
            "keys": {"1": entry},
            "derived": False,
            "kdf": 0,
            "exportable": True,
            "min_decryption_version": 1,
            "min_encryption_version": 0,
            "latest_version": 1,
            "archive_version": 1,
            "deletion_allowed": False,
            "convergent_version": 0,
            "type": 1,
            "backup_info": {"time": "2017-12-08T11:50:29.228157-05:00", "version": 1},
            "restore_info": None,
            "allow_plaintext_backup": True,
            "auto_rotate_period": 0,
        },
        "archived_keys": {
            "keys": [{"key": None, "hmac_key": None, "time": "0001-01-01T00:00:00Z"}, entry]
        },
    }
    await tr.write("restore", {"backup": b64(json.dumps(document).encode())})
    info = data(await tr.read("keys/vault-ec"))
    assert info["type"] == "ecdsa-p256"
    assert info["keys"]["1"]["creation_time"] == "2017-12-08T16:50:08.613837Z"
    assert info["backup_info"]["time"] == "2017-12-08T16:50:29.228157Z"
    signature = data(await tr.write("sign/vault-ec", {"input": b64(MESSAGE)}))["signature"]
    local.public_key().verify(_sig(signature), MESSAGE, ec.ECDSA(hashes.SHA256()))
    # and our backup of it carries the same numbers back
    again = json.loads(base64.b64decode(data(await tr.read("backup/vault-ec"))["backup"]))
    assert again["policy"]["keys"]["1"]["ec_d"] == numbers.private_value
    assert again["policy"]["type"] == 1
