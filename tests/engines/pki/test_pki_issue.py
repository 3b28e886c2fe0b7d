"""Root generation, roles and issuing through hvac's PKI methods against a real server;
chains checked by ``openssl verify``; a mutual-TLS handshake with issued certificates."""

from __future__ import annotations

import base64
import socket
import ssl
import threading
from pathlib import Path
from typing import Any

import httpx
import hvac
import hvac.exceptions
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.engines.pki.helpers import root, verify, write

KEY_TYPES = [
    ("rsa", 2048),
    ("rsa", 3072),
    ("rsa", 4096),
    ("ec", 256),
    ("ec", 384),
    ("ec", 521),
    ("ed25519", 0),
]


def pem_cert(text: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(text.encode())


def csr_pem(key: Any, cn: str, sans: list[str] | None = None) -> str:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    )
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False
        )
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm).public_bytes(serialization.Encoding.PEM).decode()


@pytest.mark.parametrize(("key_type", "key_bits"), KEY_TYPES)
def test_root_generate_each_key_type(
    client: hvac.Client, mount: str, key_type: str, key_bits: int
) -> None:
    data = root(client, mount, key_type=key_type, key_bits=key_bits, common_name="My Root")
    assert {
        "certificate",
        "issuing_ca",
        "serial_number",
        "expiration",
        "issuer_id",
        "key_id",
    } <= set(data)
    cert = pem_cert(data["certificate"])
    assert cert.subject == cert.issuer
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    public = cert.public_key()
    if key_type == "rsa":
        assert isinstance(public, rsa.RSAPublicKey) and public.key_size == key_bits
    elif key_type == "ec":
        assert isinstance(public, ec.EllipticCurvePublicKey) and public.curve.key_size == key_bits
    else:
        assert isinstance(public, ed25519.Ed25519PublicKey)
    assert "private_key" not in data
    assert data["serial_number"] == ":".join(
        f"{b:02x}"
        for b in cert.serial_number.to_bytes((cert.serial_number.bit_length() + 7) // 8, "big")
    )


def test_root_exported_and_existing(client: hvac.Client, mount: str) -> None:
    exported = client.secrets.pki.generate_root(
        "exported", "Exported", extra_params={"key_type": "ec", "key_name": "k1"}, mount_point=mount
    )["data"]
    key = serialization.load_pem_private_key(exported["private_key"].encode(), None)
    assert exported["private_key_type"] == "ec"
    assert exported["key_name"] == "k1"
    assert key.public_key() == pem_cert(exported["certificate"]).public_key()
    existing = client.secrets.pki.generate_root(
        "existing",
        "Again",
        extra_params={"key_ref": "k1", "issuer_name": "again"},
        mount_point=mount,
    )["data"]
    assert existing["key_id"] == exported["key_id"]
    assert "private_key" not in existing
    assert pem_cert(existing["certificate"]).public_key() == key.public_key()


def test_issue_names_formats_and_openssl_verify(
    client: hvac.Client, mount: str, tmp_path: Path
) -> None:
    ca = root(client, mount)
    client.secrets.pki.create_or_update_role(
        "web",
        {
            "allowed_domains": ["example.com"],
            "allow_subdomains": True,
            "allowed_uri_sans": ["spiffe://cluster.local/ns/*/sa/*"],
            "allowed_other_sans": ["1.3.6.1.4.1.311.20.2.3;UTF8:*@example.com"],
            "key_type": "ec",
            "ou": ["Ops"],
            "organization": ["Strongroom"],
        },
        mount_point=mount,
    )
    data = client.secrets.pki.generate_certificate(
        "web",
        "api.example.com",
        extra_params={
            "alt_names": "www.example.com,ops@mail.example.com",
            "ip_sans": "127.0.0.1,::1",
            "uri_sans": "spiffe://cluster.local/ns/prod/sa/api",
            "other_sans": "1.3.6.1.4.1.311.20.2.3;UTF8:dev@example.com",
            "ttl": "2h",
        },
        mount_point=mount,
    )["data"]
    cert = pem_cert(data["certificate"])
    assert data["issuing_ca"] == ca["certificate"]
    assert data["ca_chain"] == [ca["certificate"]]
    assert data["private_key_type"] == "ec"
    assert int(cert.not_valid_after_utc.timestamp()) == data["expiration"]
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert 7200 <= lifetime.total_seconds() <= 7200 + 31
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["api.example.com", "www.example.com"]
    assert sans.get_values_for_type(x509.RFC822Name) == ["ops@mail.example.com"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://cluster.local/ns/prod/sa/api"
    ]
    other = sans.get_values_for_type(x509.OtherName)
    assert other[0].type_id.dotted_string == "1.3.6.1.4.1.311.20.2.3"
    assert other[0].value == b"\x0c\x0fdev@example.com"
    subject = cert.subject
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "Ops"
    ekus = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(ekus) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    verify(tmp_path, ca["certificate"], data["certificate"])
    # the key matches the certificate
    key = serialization.load_pem_private_key(data["private_key"].encode(), None)
    assert key.public_key() == cert.public_key()
    assert data["private_key"].startswith("-----BEGIN EC PRIVATE KEY-----")

    # the stored certificate reads back by serial, authenticated or not
    fetched = client.secrets.pki.read_certificate(data["serial_number"], mount_point=mount)
    assert fetched["data"]["certificate"] == data["certificate"]
    raw = httpx.get(f"{client.url}/v1/{mount}/cert/{data['serial_number']}/raw")
    assert raw.status_code == 200 and raw.headers["content-type"] == "application/pkix-cert"
    assert x509.load_der_x509_certificate(raw.content) == cert
    serials = client.secrets.pki.list_certificates(mount_point=mount)["data"]["keys"]
    assert data["serial_number"] in serials

    # der, pem_bundle, pkcs8, exclude_cn_from_sans
    der = client.secrets.pki.generate_certificate(
        "web",
        "der.example.com",
        extra_params={
            "format": "der",
            "private_key_format": "pkcs8",
            "exclude_cn_from_sans": True,
            "ttl": "1h",
        },
        mount_point=mount,
    )["data"]
    der_cert = x509.load_der_x509_certificate(base64.b64decode(der["certificate"]))
    assert x509.load_der_x509_certificate(base64.b64decode(der["issuing_ca"])) == pem_cert(
        ca["certificate"]
    )
    serialization.load_der_private_key(base64.b64decode(der["private_key"]), None)
    with pytest.raises(x509.ExtensionNotFound):
        der_cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    bundle = client.secrets.pki.generate_certificate(
        "web",
        "b.example.com",
        extra_params={"format": "pem_bundle", "private_key_format": "pkcs8", "ttl": "1h"},
        mount_point=mount,
    )["data"]
    assert bundle["certificate"].startswith("-----BEGIN PRIVATE KEY-----")
    assert "-----BEGIN CERTIFICATE-----" in bundle["certificate"]


def test_sign_csr_and_sign_verbatim(client: hvac.Client, mount: str, tmp_path: Path) -> None:
    ca = root(client, mount)
    client.secrets.pki.create_or_update_role(
        "svc",
        {"allowed_domains": "svc.internal", "allow_subdomains": True, "key_type": "any"},
        mount_point=mount,
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    csr = csr_pem(key, "a.svc.internal", ["b.svc.internal"])
    data = client.secrets.pki.sign_certificate(
        "svc", csr=csr, common_name="a.svc.internal", extra_params={"ttl": "1h"}, mount_point=mount
    )["data"]
    assert "private_key" not in data
    cert = pem_cert(data["certificate"])
    assert cert.public_key() == key.public_key()
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(sans.get_values_for_type(x509.DNSName)) == {"a.svc.internal", "b.svc.internal"}
    verify(tmp_path, ca["certificate"], data["certificate"])

    verbatim_csr = csr_pem(ec.generate_private_key(ec.SECP256R1()), "anything.at.all", ["x.y"])
    verbatim = client.secrets.pki.sign_verbatim(
        verbatim_csr, extra_params={"ttl": "1h"}, mount_point=mount
    )["data"]
    vcert = pem_cert(verbatim["certificate"])
    assert vcert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "anything.at.all"
    verify(tmp_path, ca["certificate"], verbatim["certificate"])


def test_issuer_scoped_issue_and_remove_roots(client: hvac.Client, mount: str) -> None:
    first = root(client, mount, issuer_name="first")
    second = client.secrets.pki.generate_root(
        "internal",
        "Second",
        extra_params={"key_type": "ec", "issuer_name": "second"},
        mount_point=mount,
    )["data"]
    write(client, f"{mount}/roles/r", allow_any_name=True, key_type="ec")
    via_second = write(client, f"{mount}/issuer/second/issue/r", common_name="x.test", ttl="1h")
    assert via_second["issuing_ca"] == second["certificate"]
    default = write(client, f"{mount}/issue/r", common_name="x.test", ttl="1h")
    assert default["issuing_ca"] == first["certificate"]
    no_roots = write(
        client, f"{mount}/issue/r", common_name="x.test", ttl="1h", remove_roots_from_chain=True
    )
    assert no_roots["ca_chain"] == []


def test_generate_lease_revocation_revokes_the_certificate(client: hvac.Client, mount: str) -> None:
    root(client, mount)
    write(client, f"{mount}/roles/leased", allow_any_name=True, key_type="ec", generate_lease=True)
    response = client.write_data(
        f"{mount}/issue/leased", data={"common_name": "l.test", "ttl": "1h"}
    )
    lease_id = response["lease_id"]
    assert lease_id.startswith(f"{mount}/issue/leased/")
    assert 3500 <= response["lease_duration"] <= 3600
    serial = response["data"]["serial_number"]
    before = client.secrets.pki.read_certificate(serial, mount_point=mount)["data"]
    assert before["revocation_time"] == 0
    client.sys.revoke_lease(lease_id)
    after = client.secrets.pki.read_certificate(serial, mount_point=mount)["data"]
    assert after["revocation_time"] > 0
    assert serial in client.list(f"{mount}/certs/revoked")["data"]["keys"]


def test_no_store(client: hvac.Client, mount: str) -> None:
    root(client, mount)
    write(client, f"{mount}/roles/ephemeral", allow_any_name=True, key_type="ec", no_store=True)
    data = write(client, f"{mount}/issue/ephemeral", common_name="e.test", ttl="1h")
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.secrets.pki.read_certificate(data["serial_number"], mount_point=mount)


def _bad(client: hvac.Client, path: str, **body: Any) -> str:
    with pytest.raises(hvac.exceptions.InvalidRequest) as info:
        client.write_data(path, data=body)
    return str(info.value)


def test_bad_input_gets_400s(client: hvac.Client, mount: str) -> None:
    root(client, mount, ttl="48h")
    write(
        client,
        f"{mount}/roles/strict",
        allowed_domains="example.com",
        allow_subdomains=True,
        key_type="rsa",
        key_bits=2048,
        allow_ip_sans=False,
    )
    assert "not allowed by this role" in _bad(
        client, f"{mount}/issue/strict", common_name="evil.org"
    )
    assert "subject alternate name evil.org not allowed" in _bad(
        client, f"{mount}/issue/strict", common_name="a.example.com", alt_names="evil.org"
    )
    assert "IP Subject Alternative Names are not allowed" in _bad(
        client, f"{mount}/issue/strict", common_name="a.example.com", ip_sans="10.0.0.1"
    )
    assert "could not be parsed" in _bad(
        client,
        f"{mount}/sign/strict",
        csr="-----BEGIN CERTIFICATE REQUEST-----\nnot base64\n-----END CERTIFICATE REQUEST-----",
    )
    weak_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    weak = csr_pem(weak_key, "a.example.com")
    assert "RSA keys < 2048 bits are unsafe" in _bad(client, f"{mount}/sign/strict", csr=weak)
    assert "RSA keys < 2048 bits are unsafe and not supported: got 1024" in _bad(
        client, f"{mount}/roles/weak", key_type="rsa", key_bits=1024
    )
    message = _bad(client, f"{mount}/issue/strict", common_name="a.example.com", ttl="72h")
    assert "beyond the expiration of the CA certificate" in message
    assert "unknown role" in _bad(client, f"{mount}/issue/nope", common_name="a.example.com")
    assert "common_name field is required" in _bad(client, f"{mount}/issue/strict")
    # leaf_not_after_behavior=truncate caps the leaf at the CA's notAfter instead
    write(client, f"{mount}/issuer/default", leaf_not_after_behavior="truncate")
    capped = write(client, f"{mount}/issue/strict", common_name="a.example.com", ttl="72h")
    ca_end = pem_cert(capped["issuing_ca"]).not_valid_after_utc
    assert pem_cert(capped["certificate"]).not_valid_after_utc == ca_end


def test_raw_ca_endpoints_unauthenticated(client: hvac.Client, mount: str) -> None:
    ca = root(client, mount)
    base = f"{client.url}/v1/{mount}"
    der = httpx.get(f"{base}/ca")
    assert der.status_code == 200 and der.headers["content-type"] == "application/pkix-cert"
    assert x509.load_der_x509_certificate(der.content) == pem_cert(ca["certificate"])
    pem = httpx.get(f"{base}/ca/pem")
    assert pem.headers["content-type"] == "application/pem-certificate-chain"
    assert pem.text.strip() == ca["certificate"]
    assert httpx.get(f"{base}/ca_chain").text.strip() == ca["certificate"]
    assert httpx.get(f"{base}/issuer/default/pem").text.strip() == ca["certificate"]
    assert httpx.get(f"{base}/issuer/default/json").json()["data"]["issuer_id"] == ca["issuer_id"]
    # but writes and reads of issuer config still need a token
    assert httpx.get(f"{base}/issuer/default").status_code == 403
    assert httpx.post(f"{base}/issuer/default", json={"issuer_name": "x"}).status_code == 403
    assert httpx.post(f"{base}/roles/r", json={}).status_code == 403


def test_mutual_tls_with_issued_certificates(
    client: hvac.Client, mount: str, tmp_path: Path
) -> None:
    ca = root(client, mount)
    write(client, f"{mount}/roles/mtls", allow_any_name=True, key_type="ec")
    server = write(
        client, f"{mount}/issue/mtls", common_name="localhost", ip_sans="127.0.0.1", ttl="1h"
    )
    client_cert = write(client, f"{mount}/issue/mtls", common_name="client.test", ttl="1h")
    files: dict[str, Path] = {}
    for name, data in (("server", server), ("client", client_cert)):
        files[name + ".crt"] = tmp_path / f"{name}.crt"
        files[name + ".crt"].write_text(data["certificate"] + "\n")
        files[name + ".key"] = tmp_path / f"{name}.key"
        files[name + ".key"].write_text(data["private_key"] + "\n")
    (tmp_path / "ca.pem").write_text(ca["certificate"] + "\n")

    server_ctx = ssl.create_default_context(
        ssl.Purpose.CLIENT_AUTH, cafile=str(tmp_path / "ca.pem")
    )
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    server_ctx.load_cert_chain(files["server.crt"], files["server.key"])
    client_ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    client_ctx.load_cert_chain(files["client.crt"], files["client.key"])

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    seen: dict[str, Any] = {}

    def serve() -> None:
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            seen["peer"] = tls.getpeercert()
            tls.sendall(tls.recv(5))

    thread = threading.Thread(target=serve)
    thread.start()
    with (
        socket.create_connection(("127.0.0.1", port)) as raw,
        client_ctx.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(b"hello")
        assert tls.recv(5) == b"hello"
    thread.join(10)
    listener.close()
    subject = dict(item[0] for item in seen["peer"]["subject"])
    assert subject["commonName"] == "client.test"


def test_role_refuses_unknown_usages_and_root_warns_without_aia(
    client: hvac.Client, mount: str
) -> None:
    response = client.write_data(
        f"{mount}/root/generate/internal", data={"common_name": "W", "key_type": "ec", "ttl": "1h"}
    )
    assert any("authority information access" in w for w in response["warnings"])
    assert "unknown ext key usage" in _bad(client, f"{mount}/roles/x", ext_key_usage="Teleport")
    assert "unknown key usage" in _bad(client, f"{mount}/roles/x", key_usage="Everything")
    assert "invalid ext_key_usage_oids" in _bad(
        client, f"{mount}/roles/x", ext_key_usage_oids="x.y"
    )
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.secrets.pki.read_role("x", mount_point=mount)
