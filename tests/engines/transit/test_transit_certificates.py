"""transit keys/:name/csr, keys/:name/set-certificate and byok-export over HTTP, against a
real dev server; certificates are checked with `cryptography` (and `openssl`)."""

from __future__ import annotations

import base64
import datetime
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.serverproc import ServerProcess


@pytest.fixture
def http(dev_server: ServerProcess) -> httpx.Client:
    return dev_server.http(dev_server.root_token)


def _mount(http: httpx.Client) -> str:
    path = f"transit-cert-{uuid.uuid4().hex[:6]}"
    assert http.post(f"/v1/sys/mounts/{path}", json={"type": "transit"}).status_code == 204
    return path


def _ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "transit test CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


@pytest.mark.parametrize("key_type", ["ecdsa-p256", "ed25519", "rsa-2048"])
def test_csr_then_set_certificate(http: httpx.Client, key_type: str, tmp_path: Path) -> None:
    mount = _mount(http)
    assert http.post(f"/v1/{mount}/keys/k", json={"type": key_type}).status_code in (200, 204)
    # a template CSR gives the subject and extensions
    template_key = ec.generate_private_key(ec.SECP256R1())
    template = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "svc.example")]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("svc.example")]), critical=False)
        .sign(template_key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )
    body = http.post(f"/v1/{mount}/keys/k/csr", json={"csr": template}).json()["data"]
    assert body["name"] == "k" and body["type"] == key_type
    csr = x509.load_pem_x509_csr(body["csr"].encode())
    assert csr.is_signature_valid
    assert csr.subject.rfc4514_string() == "CN=svc.example"
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.value.get_values_for_type(x509.DNSName) == ["svc.example"]
    # the CSR's key is the transit key (openssl agrees the signature holds)
    (tmp_path / "req.pem").write_text(body["csr"])
    check = subprocess.run(
        ["openssl", "req", "-in", str(tmp_path / "req.pem"), "-verify", "-noout"],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr
    public = http.get(f"/v1/{mount}/keys/k").json()["data"]["keys"]["1"]["public_key"]
    csr_public = csr.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if key_type != "ed25519":
        assert csr_public.decode().strip() == public.strip()
    # a CA signs it; the chain is stored for version 1 and shown on read
    ca_key, ca = _ca()
    now = datetime.datetime.now(datetime.UTC)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(hours=1))
        .sign(ca_key, hashes.SHA256())
    )
    chain = (
        leaf.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM)
    ).decode()
    resp = http.post(f"/v1/{mount}/keys/k/set-certificate", json={"certificate_chain": chain})
    assert resp.status_code == 204, resp.text
    stored = http.get(f"/v1/{mount}/keys/k").json()["data"]["keys"]["1"]["certificate_chain"]
    assert stored == chain
    # a chain whose leaf is someone else's key is refused, and nothing changes
    other = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca.subject)
        .public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(hours=1))
        .sign(ca_key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )
    resp = http.post(f"/v1/{mount}/keys/k/set-certificate", json={"certificate_chain": other})
    assert resp.status_code == 400 and "does not match" in resp.json()["errors"][0]
    assert http.get(f"/v1/{mount}/keys/k").json()["data"]["keys"]["1"]["certificate_chain"] == chain


def test_csr_refusals(http: httpx.Client) -> None:
    mount = _mount(http)
    http.post(f"/v1/{mount}/keys/aes", json={"type": "aes256-gcm96"})
    resp = http.post(f"/v1/{mount}/keys/aes/csr", json={})
    assert resp.status_code == 400 and "does not support signing" in resp.json()["errors"][0]
    http.post(f"/v1/{mount}/keys/ec", json={"type": "ecdsa-p256"})
    resp = http.post(f"/v1/{mount}/keys/ec/csr", json={"csr": "not a csr"})
    assert resp.status_code == 400
    resp = http.post(f"/v1/{mount}/keys/ec/set-certificate", json={"certificate_chain": ""})
    assert resp.status_code == 400
    resp = http.post(f"/v1/{mount}/keys/none/csr", json={})
    assert resp.status_code == 400 and "not found" in resp.json()["errors"][0]


@pytest.mark.parametrize("key_type", ["aes256-gcm96", "ecdsa-p256", "ed25519", "hmac"])
def test_byok_export_then_import_elsewhere(http: httpx.Client, key_type: str) -> None:
    """Move a key between two transit mounts the way two Vaults do it: the destination's
    wrapping key is imported (public half) at the source, byok-export wraps the source key
    for it, and the destination imports the result. What one encrypts/signs, the other
    decrypts/verifies."""
    source_mount, dest_mount = _mount(http), _mount(http)
    wrapping = http.get(f"/v1/{dest_mount}/wrapping_key").json()["data"]["public_key"]
    resp = http.post(
        f"/v1/{source_mount}/keys/dest/import",
        json={"type": "rsa-4096", "public_key": wrapping},
    )
    assert resp.status_code == 204, resp.text
    http.post(f"/v1/{source_mount}/keys/src", json={"type": key_type, "exportable": True})
    resp = http.get(f"/v1/{source_mount}/byok-export/dest/src")
    assert resp.status_code == 200, resp.text
    exported = resp.json()["data"]
    assert exported["name"] == "src" and set(exported["keys"]) == {"1"}
    resp = http.post(
        f"/v1/{dest_mount}/keys/copy/import",
        json={"type": key_type, "ciphertext": exported["keys"]["1"]},
    )
    assert resp.status_code == 204, resp.text
    message = base64.b64encode(b"byok round trip").decode()
    if key_type == "aes256-gcm96":
        sealed = http.post(f"/v1/{source_mount}/encrypt/src", json={"plaintext": message})
        opened = http.post(
            f"/v1/{dest_mount}/decrypt/copy",
            json={"ciphertext": sealed.json()["data"]["ciphertext"]},
        )
        assert opened.json()["data"]["plaintext"] == message
    elif key_type == "hmac":
        a = http.post(f"/v1/{source_mount}/hmac/src", json={"input": message}).json()
        b = http.post(f"/v1/{dest_mount}/hmac/copy", json={"input": message}).json()
        assert a["data"]["hmac"] == b["data"]["hmac"]
    else:
        signed = http.post(f"/v1/{source_mount}/sign/src", json={"input": message}).json()
        verified = http.post(
            f"/v1/{dest_mount}/verify/copy",
            json={"input": message, "signature": signed["data"]["signature"]},
        )
        assert verified.json()["data"]["valid"] is True


def test_byok_export_refusals(http: httpx.Client) -> None:
    mount = _mount(http)
    http.post(f"/v1/{mount}/keys/rsa", json={"type": "rsa-2048"})
    http.post(f"/v1/{mount}/keys/locked", json={"type": "aes256-gcm96"})
    http.post(f"/v1/{mount}/keys/ec", json={"type": "ecdsa-p256"})
    resp = http.get(f"/v1/{mount}/byok-export/rsa/locked")
    assert resp.status_code == 400 and "not exportable" in resp.json()["errors"][0]
    resp = http.get(f"/v1/{mount}/byok-export/ec/rsa")
    assert resp.status_code == 400 and "must be an RSA key" in resp.json()["errors"][0]
    resp = http.get(f"/v1/{mount}/byok-export/rsa/locked", params={"hash": "MD5"})
    assert resp.status_code == 400
    assert http.get(f"/v1/{mount}/byok-export/rsa/none").status_code == 404
