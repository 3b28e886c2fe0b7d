"""Transit over HTTP through hvac against a real ``strongroom server -dev``.

Every endpoint and key type is exercised at least once. Endpoints hvac has no helper for (and
key types hvac's client refuses: aes128-gcm96, hmac) go through hvac's own adapter.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Iterator
from typing import Any

import hvac
import hvac.exceptions
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

from tests.serverproc import ServerProcess

MESSAGE = b"hello over http"


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


@pytest.fixture(scope="module")
def mount(dev_server: ServerProcess) -> Iterator[tuple[hvac.Client, str]]:
    client = dev_server.client(dev_server.root_token)
    path = f"transit-{uuid.uuid4().hex[:8]}"
    client.sys.enable_secrets_engine("transit", path=path)
    try:
        yield client, path
    finally:
        client.sys.disable_secrets_engine(path)


@pytest.fixture
def transit(mount: tuple[hvac.Client, str]) -> Any:
    return mount[0].secrets.transit


def test_key_lifecycle(mount: tuple[hvac.Client, str], transit: Any) -> None:
    _, mp = mount
    transit.create_key("life", mount_point=mp)
    info = transit.read_key("life", mount_point=mp)["data"]
    assert info["type"] == "aes256-gcm96" and info["latest_version"] == 1
    assert "life" in transit.list_keys(mount_point=mp)["data"]["keys"]
    rotated = transit.rotate_key("life", mount_point=mp)
    assert rotated["data"]["latest_version"] == 2
    transit.rotate_key("life", mount_point=mp)
    transit.update_key_configuration(
        "life",
        min_decryption_version=2,
        min_encryption_version=3,
        deletion_allowed=True,
        exportable=True,
        allow_plaintext_backup=True,
        auto_rotate_period="24h",
        mount_point=mp,
    )
    info = transit.read_key("life", mount_point=mp)["data"]
    assert info["min_decryption_version"] == 2 and info["auto_rotate_period"] == 86400
    trimmed = transit.trim_key("life", min_version=2, mount_point=mp)
    assert trimmed.status_code == 204
    assert transit.read_key("life", mount_point=mp)["data"]["min_available_version"] == 2
    exported = transit.export_key("life", key_type="encryption-key", mount_point=mp)
    assert set(exported["data"]["keys"]) == {"2", "3"}
    assert transit.export_key("life", key_type="hmac-key", version="latest", mount_point=mp)
    transit.delete_key("life", mount_point=mp)
    with pytest.raises(hvac.exceptions.InvalidPath):
        transit.read_key("life", mount_point=mp)
    transit.create_key("keep", mount_point=mp)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="deletion is not allowed"):
        transit.delete_key("keep", mount_point=mp)


@pytest.mark.parametrize(
    "key_type",
    ["aes128-gcm96", "aes256-gcm96", "chacha20-poly1305", "rsa-2048", "rsa-3072", "rsa-4096"],
)
def test_encrypt_decrypt_every_encryption_type(
    mount: tuple[hvac.Client, str], transit: Any, key_type: str
) -> None:
    client, mp = mount
    name = f"enc-{key_type}"
    # hvac's create_key refuses aes128-gcm96, so post it through hvac's adapter
    client.adapter.post(f"/v1/{mp}/keys/{name}", json={"type": key_type})
    ct = transit.encrypt_data(name, plaintext=b64(MESSAGE), mount_point=mp)["data"]
    assert ct["key_version"] == 1 and ct["ciphertext"].startswith("vault:v1:")
    back = transit.decrypt_data(name, ciphertext=ct["ciphertext"], mount_point=mp)["data"]
    assert unb64(back["plaintext"]) == MESSAGE
    transit.rotate_key(name, mount_point=mp)
    rewrapped = transit.rewrap_data(name, ciphertext=ct["ciphertext"], mount_point=mp)["data"]
    assert rewrapped["ciphertext"].startswith("vault:v2:")


def test_derived_convergent_aad_and_batches(mount: tuple[hvac.Client, str], transit: Any) -> None:
    client, mp = mount
    transit.create_key("conv", derived=True, convergent_encryption=True, mount_point=mp)
    ctx = b64(b"tenant")
    one = transit.encrypt_data("conv", plaintext=b64(MESSAGE), context=ctx, mount_point=mp)
    two = transit.encrypt_data("conv", plaintext=b64(MESSAGE), context=ctx, mount_point=mp)
    assert one["data"]["ciphertext"] == two["data"]["ciphertext"]
    transit.create_key("aad", mount_point=mp)
    ad = b64(b"header")
    ct = transit.encrypt_data("aad", plaintext=b64(MESSAGE), associated_data=ad, mount_point=mp)
    ciphertext = ct["data"]["ciphertext"]
    with pytest.raises(
        hvac.exceptions.InvalidRequest, match="cipher: message authentication failed"
    ):
        transit.decrypt_data("aad", ciphertext=ciphertext, mount_point=mp)
    back = transit.decrypt_data("aad", ciphertext=ciphertext, associated_data=ad, mount_point=mp)
    assert unb64(back["data"]["plaintext"]) == MESSAGE

    items = [{"plaintext": b64(bytes([i])), "context": ctx, "reference": str(i)} for i in range(10)]
    results = transit.encrypt_data("conv", batch_input=items, mount_point=mp)["data"][
        "batch_results"
    ]
    assert [r["reference"] for r in results] == [str(i) for i in range(10)]
    decrypt = [{"ciphertext": r["ciphertext"], "context": ctx} for r in results]
    plain = transit.decrypt_data("conv", ciphertext=None, batch_input=decrypt, mount_point=mp)
    assert [unb64(r["plaintext"]) for r in plain["data"]["batch_results"]] == [
        bytes([i]) for i in range(10)
    ]
    rewrap = transit.rewrap_data("conv", ciphertext=None, batch_input=decrypt, mount_point=mp)
    assert len(rewrap["data"]["batch_results"]) == 10

    # one bad item: HTTP 400 (the body still has every result), unless overridden
    bad = [*decrypt[:2], {"ciphertext": "vault:v1:" + b64(os.urandom(40)), "context": ctx}]
    with pytest.raises(hvac.exceptions.InvalidRequest):
        transit.decrypt_data("conv", ciphertext=None, batch_input=bad, mount_point=mp)
    partial = client.adapter.post(
        f"/v1/{mp}/decrypt/conv", json={"batch_input": bad, "partial_failure_response_code": 207}
    )
    assert partial.status_code == 207
    out = partial.json()["data"]["batch_results"]
    assert out[2]["error"] == "cipher: message authentication failed" and "plaintext" in out[0]


def test_upsert_datakey_random_hash(mount: tuple[hvac.Client, str], transit: Any) -> None:
    client, mp = mount
    created = transit.encrypt_data("upserted", plaintext=b64(MESSAGE), mount_point=mp)
    assert created["data"]["key_version"] == 1
    assert transit.read_key("upserted", mount_point=mp)["data"]["type"] == "aes256-gcm96"
    key = transit.generate_data_key("upserted", key_type="plaintext", bits=512, mount_point=mp)[
        "data"
    ]
    assert len(unb64(key["plaintext"])) == 64
    opened = transit.decrypt_data("upserted", ciphertext=key["ciphertext"], mount_point=mp)
    assert opened["data"]["plaintext"] == key["plaintext"]
    wrapped = transit.generate_data_key("upserted", key_type="wrapped", mount_point=mp)["data"]
    assert "plaintext" not in wrapped
    rnd = transit.generate_random_bytes(n_bytes=16, output_format="hex", mount_point=mp)
    assert len(bytes.fromhex(rnd["data"]["random_bytes"])) == 16
    for path in ("random/24", "random/seal", "random/all/8"):
        got = client.adapter.post(f"/v1/{mp}/{path}", json={})["data"]["random_bytes"]
        assert len(unb64(got)) == {"random/24": 24, "random/seal": 32, "random/all/8": 8}[path]
    digest = transit.hash_data(b64(b"abc"), algorithm="sha2-256", mount_point=mp)["data"]["sum"]
    assert digest == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    sha3 = client.adapter.post(f"/v1/{mp}/hash/sha3-256", json={"input": b64(b"abc")})
    assert sha3["data"]["sum"].startswith("3a985da7")


@pytest.mark.parametrize(
    "key_type", ["ed25519", "ecdsa-p256", "ecdsa-p384", "ecdsa-p521", "rsa-2048"]
)
def test_sign_verify_every_signing_type(
    mount: tuple[hvac.Client, str], transit: Any, key_type: str
) -> None:
    _, mp = mount
    name = f"sig-{key_type}"
    transit.create_key(name, key_type=key_type, mount_point=mp)
    signed = transit.sign_data(name, hash_input=b64(MESSAGE), mount_point=mp)["data"]
    assert signed["key_version"] == 1
    ok = transit.verify_signed_data(
        name, hash_input=b64(MESSAGE), signature=signed["signature"], mount_point=mp
    )
    assert ok["data"]["valid"] is True
    bad = transit.verify_signed_data(
        name, hash_input=b64(b"x"), signature=signed["signature"], mount_point=mp
    )
    assert bad["data"]["valid"] is False
    public = transit.read_key(name, mount_point=mp)["data"]["keys"]["1"]["public_key"]
    raw_sig = unb64(signed["signature"].split(":", 2)[2])
    if key_type == "ed25519":
        ed25519.Ed25519PublicKey.from_public_bytes(unb64(public)).verify(raw_sig, MESSAGE)
    elif key_type.startswith("ecdsa"):
        key = serialization.load_pem_public_key(public.encode())
        assert isinstance(key, ec.EllipticCurvePublicKey)
        key.verify(raw_sig, MESSAGE, ec.ECDSA(hashes.SHA256()))
        jws = transit.sign_data(
            name, hash_input=b64(MESSAGE), marshaling_algorithm="jws", mount_point=mp
        )
        sig = jws["data"]["signature"]
        assert (
            "=" not in sig
            and transit.verify_signed_data(
                name,
                hash_input=b64(MESSAGE),
                signature=sig,
                marshaling_algorithm="jws",
                mount_point=mp,
            )["data"]["valid"]
        )
    else:
        key = serialization.load_pem_public_key(public.encode())
        assert isinstance(key, rsa.RSAPublicKey)
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
        key.verify(raw_sig, MESSAGE, pss, hashes.SHA256())
        v15 = transit.sign_data(
            name,
            hash_input=b64(MESSAGE),
            signature_algorithm="pkcs1v15",
            hash_algorithm="sha2-512",
            mount_point=mp,
        )["data"]["signature"]
        assert transit.verify_signed_data(
            name,
            hash_input=b64(MESSAGE),
            signature=v15,
            signature_algorithm="pkcs1v15",
            hash_algorithm="sha2-512",
            mount_point=mp,
        )["data"]["valid"]
        salted = transit.sign_data(
            name, hash_input=b64(MESSAGE), salt_length="hash", mount_point=mp
        )
        assert salted["data"]["signature"].startswith("vault:v1:")


def test_sign_batch_and_hmac(mount: tuple[hvac.Client, str], transit: Any) -> None:
    client, mp = mount
    transit.create_key("edd", key_type="ed25519", derived=True, mount_point=mp)
    batch = [
        {"input": b64(b"a"), "context": b64(b"c1")},
        {"input": b64(b"b"), "context": b64(b"c2")},
    ]
    signed = transit.sign_data("edd", batch_input=batch, mount_point=mp)["data"]["batch_results"]
    assert all("publickey" in r for r in signed)
    checks = [item | {"signature": r["signature"]} for item, r in zip(batch, signed, strict=True)]
    verified = client.adapter.post(f"/v1/{mp}/verify/edd", json={"batch_input": checks})
    assert [r["valid"] for r in verified["data"]["batch_results"]] == [True, True]

    client.adapter.post(f"/v1/{mp}/keys/mac", json={"type": "hmac", "key_size": 64})
    mac = transit.generate_hmac(
        "mac", hash_input=b64(MESSAGE), algorithm="sha2-512", mount_point=mp
    )
    tag = mac["data"]["hmac"]
    ok = transit.verify_signed_data(
        "mac", hash_input=b64(MESSAGE), hmac=tag, hash_algorithm="sha2-512", mount_point=mp
    )
    assert ok["data"]["valid"] is True
    many = client.adapter.post(
        f"/v1/{mp}/hmac/mac", json={"batch_input": [{"input": b64(b"1")}, {"input": b64(b"2")}]}
    )
    assert len(many["data"]["batch_results"]) == 2


def test_backup_restore(mount: tuple[hvac.Client, str], transit: Any) -> None:
    _, mp = mount
    transit.create_key("bk", exportable=True, allow_plaintext_backup=True, mount_point=mp)
    ct = transit.encrypt_data("bk", plaintext=b64(MESSAGE), mount_point=mp)["data"]["ciphertext"]
    backup = transit.backup_key("bk", mount_point=mp)["data"]["backup"]
    transit.restore_key(backup, name="bk-copy", mount_point=mp)
    back = transit.decrypt_data("bk-copy", ciphertext=ct, mount_point=mp)["data"]["plaintext"]
    assert unb64(back) == MESSAGE
    with pytest.raises(hvac.exceptions.InvalidRequest, match="already exists"):
        transit.restore_key(backup, name="bk-copy", mount_point=mp)
    transit.restore_key(backup, name="bk-copy", force=True, mount_point=mp)


def test_byok_import_and_engine_config(mount: tuple[hvac.Client, str], transit: Any) -> None:
    client, mp = mount
    pem = client.adapter.get(f"/v1/{mp}/wrapping_key")["data"]["public_key"]
    wrapping = serialization.load_pem_public_key(pem.encode())
    assert isinstance(wrapping, rsa.RSAPublicKey) and wrapping.key_size == 4096
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)

    def wrap(target: bytes) -> str:
        ephemeral = os.urandom(32)
        return b64(wrapping.encrypt(ephemeral, oaep) + aes_key_wrap_with_padding(ephemeral, target))

    aes = os.urandom(32)
    client.adapter.post(f"/v1/{mp}/keys/byok-aes/import", json={"ciphertext": wrap(aes)})
    ct = transit.encrypt_data("byok-aes", plaintext=b64(MESSAGE), mount_point=mp)["data"][
        "ciphertext"
    ]
    raw = unb64(ct.split(":", 2)[2])
    assert AESGCM(aes).decrypt(raw[:12], raw[12:], None) == MESSAGE
    second = os.urandom(32)
    client.adapter.post(f"/v1/{mp}/keys/byok-aes/import_version", json={"ciphertext": wrap(second)})
    assert transit.read_key("byok-aes", mount_point=mp)["data"]["latest_version"] == 2

    local = ec.generate_private_key(ec.SECP256R1())
    der = local.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    client.adapter.post(
        f"/v1/{mp}/keys/byok-ec/import", json={"type": "ecdsa-p256", "ciphertext": wrap(der)}
    )
    signature = transit.sign_data("byok-ec", hash_input=b64(MESSAGE), mount_point=mp)["data"][
        "signature"
    ]
    local.public_key().verify(unb64(signature.split(":", 2)[2]), MESSAGE, ec.ECDSA(hashes.SHA256()))

    assert client.adapter.get(f"/v1/{mp}/cache-config")["data"] == {"size": 0}
    client.adapter.post(f"/v1/{mp}/cache-config", json={"size": 100})
    assert client.adapter.get(f"/v1/{mp}/cache-config")["data"] == {"size": 100}
    client.adapter.post(f"/v1/{mp}/config/keys", json={"disable_upsert": True})
    with pytest.raises(hvac.exceptions.InvalidRequest, match="encryption key not found"):
        transit.encrypt_data("never-made", plaintext=b64(MESSAGE), mount_point=mp)
    client.adapter.post(f"/v1/{mp}/config/keys", json={"disable_upsert": False})


def test_policy_separates_encrypt_from_decrypt(
    mount: tuple[hvac.Client, str], dev_server: ServerProcess
) -> None:
    root, mp = mount
    root.secrets.transit.create_key("a", mount_point=mp)
    root.sys.create_or_update_acl_policy(
        f"{mp}-encrypt-only", f'path "{mp}/encrypt/a" {{\n  capabilities = ["update"]\n}}\n'
    )
    token = root.auth.token.create(policies=[f"{mp}-encrypt-only"], ttl="1h")["auth"][
        "client_token"
    ]
    limited = dev_server.client(token).secrets.transit
    ct = limited.encrypt_data("a", plaintext=b64(MESSAGE), mount_point=mp)["data"]["ciphertext"]
    with pytest.raises(hvac.exceptions.Forbidden):
        limited.decrypt_data("a", ciphertext=ct, mount_point=mp)
    # update without create cannot upsert a new key
    with pytest.raises(hvac.exceptions.Forbidden):
        limited.encrypt_data("b", plaintext=b64(MESSAGE), mount_point=mp)
    plain = root.secrets.transit.decrypt_data("a", ciphertext=ct, mount_point=mp)["data"][
        "plaintext"
    ]
    assert unb64(plain) == MESSAGE
