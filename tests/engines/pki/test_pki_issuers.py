"""Issuers and keys, intermediates (root → intermediate → leaf, verified by openssl),
imports, rotation and deletion."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import hvac
import hvac.exceptions
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.engines.pki.helpers import root, verify, write


def pem_cert(text: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(text.encode())


@pytest.fixture
def second_mount(client: hvac.Client) -> Iterator[str]:
    path = f"pki-int-{uuid.uuid4().hex[:8]}"
    client.sys.enable_secrets_engine("pki", path=path)
    try:
        yield path
    finally:
        client.sys.disable_secrets_engine(path)


def test_root_intermediate_leaf_chain(
    client: hvac.Client, mount: str, second_mount: str, tmp_path: Path
) -> None:
    ca = root(client, mount, common_name="Root X1", max_path_length=2)
    csr = client.secrets.pki.generate_intermediate(
        "internal",
        "Intermediate Y1",
        extra_params={"key_type": "ec", "key_name": "int-key"},
        mount_point=second_mount,
    )["data"]
    assert csr["csr"].startswith("-----BEGIN CERTIFICATE REQUEST-----")
    assert csr["key_name"] == "int-key"
    signed = client.secrets.pki.sign_intermediate(
        csr["csr"], "Intermediate Y1", extra_params={"ttl": "240h"}, mount_point=mount
    )["data"]
    inter = pem_cert(signed["certificate"])
    assert inter.issuer == pem_cert(ca["certificate"]).subject
    assert inter.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 1
    assert signed["ca_chain"] == [ca["certificate"]]
    imported = client.secrets.pki.set_signed_intermediate(
        signed["certificate"] + "\n" + ca["certificate"], mount_point=second_mount
    )["data"]
    assert len(imported["imported_issuers"]) == 2
    issuer_id = next(i for i, k in imported["mapping"].items() if k)
    assert imported["mapping"][issuer_id] == csr["key_id"]
    assert write(client, f"{second_mount}/config/issuers")["default"] == issuer_id
    issuer = client.read(f"{second_mount}/issuer/default")["data"]
    assert issuer["ca_chain"] == [signed["certificate"], ca["certificate"]]

    write(client, f"{second_mount}/roles/leaf", allow_any_name=True, key_type="ec")
    leaf = write(client, f"{second_mount}/issue/leaf", common_name="leaf.test", ttl="1h")
    assert leaf["ca_chain"] == [signed["certificate"], ca["certificate"]]
    verify(tmp_path, ca["certificate"], leaf["certificate"], untrusted=signed["certificate"])
    no_root = write(
        client,
        f"{second_mount}/issue/leaf",
        common_name="leaf.test",
        ttl="1h",
        remove_roots_from_chain=True,
    )
    assert no_root["ca_chain"] == [signed["certificate"]]


def test_sign_self_issued_and_import_bundle(
    client: hvac.Client, mount: str, second_mount: str, tmp_path: Path
) -> None:
    ca = root(client, mount, common_name="Signer")
    other = client.secrets.pki.generate_root(
        "exported", "Other Root", extra_params={"key_type": "ec"}, mount_point=second_mount
    )["data"]
    resigned = write(client, f"{mount}/root/sign-self-issued", certificate=other["certificate"])
    cross = pem_cert(resigned["certificate"])
    assert cross.issuer == pem_cert(ca["certificate"]).subject
    assert cross.subject == pem_cert(other["certificate"]).subject
    assert cross.public_key() == pem_cert(other["certificate"]).public_key()
    verify(tmp_path, ca["certificate"], resigned["certificate"])

    bundle = other["private_key"] + "\n" + other["certificate"]
    fresh = f"pki-imp-{uuid.uuid4().hex[:8]}"
    client.sys.enable_secrets_engine("pki", path=fresh)
    try:
        data = write(client, f"{fresh}/issuers/import/bundle", pem_bundle=bundle)
        assert len(data["imported_issuers"]) == 1 and len(data["imported_keys"]) == 1
        again = write(client, f"{fresh}/issuers/import/bundle", pem_bundle=bundle)
        assert again["imported_issuers"] is None
        assert again["existing_issuers"] == data["imported_issuers"]
        write(client, f"{fresh}/roles/r", allow_any_name=True, key_type="ec")
        leaf = write(client, f"{fresh}/issue/r", common_name="a.test", ttl="1h")
        verify(tmp_path, other["certificate"], leaf["certificate"])
        legacy = write(client, f"{fresh}/config/ca", pem_bundle=bundle)
        assert legacy["existing_issuers"] == data["imported_issuers"]
    finally:
        client.sys.disable_secrets_engine(fresh)


def test_issuers_and_keys_api(client: hvac.Client, mount: str) -> None:
    first = root(client, mount, issuer_name="first", key_name="first-key")
    listing = client.list(f"{mount}/issuers")["data"]
    assert listing["keys"] == [first["issuer_id"]]
    assert listing["key_info"][first["issuer_id"]]["is_default"] is True
    assert listing["key_info"][first["issuer_id"]]["issuer_name"] == "first"

    issuer = client.read(f"{mount}/issuer/first")["data"]
    assert issuer["issuer_id"] == first["issuer_id"]
    assert issuer["usage"] == "crl-signing,issuing-certificates,ocsp-signing,read-only"
    assert issuer["leaf_not_after_behavior"] == "err"
    updated = write(
        client,
        f"{mount}/issuer/first",
        issuer_name="renamed",
        leaf_not_after_behavior="truncate",
        ocsp_servers=["http://ocsp.test/"],
    )
    assert updated["issuer_name"] == "renamed"
    assert updated["ocsp_servers"] == ["http://ocsp.test/"]
    patched = client.adapter.request(
        "PATCH",
        f"/v1/{mount}/issuer/renamed",
        json={"usage": "issuing-certificates,read-only"},
        headers={"Content-Type": "application/merge-patch+json"},
    )["data"]
    assert patched["usage"] == "issuing-certificates,read-only"
    assert patched["leaf_not_after_behavior"] == "truncate"
    with pytest.raises(hvac.exceptions.InvalidRequest):
        write(client, f"{mount}/issuer/renamed", leaf_not_after_behavior="sometimes")

    keys = client.list(f"{mount}/keys")["data"]
    assert keys["keys"] == [first["key_id"]]
    assert keys["key_info"][first["key_id"]]["key_name"] == "first-key"
    key = client.read(f"{mount}/key/first-key")["data"]
    assert key["key_type"] == "ec" and key["key_id"] == first["key_id"]
    generated = write(client, f"{mount}/keys/generate/exported", key_type="ec", key_name="spare")
    assert generated["private_key"].startswith("-----BEGIN EC PRIVATE KEY-----")
    assert "private_key" not in write(client, f"{mount}/keys/generate/internal", key_type="ed25519")
    imported_key = ec.generate_private_key(ec.SECP384R1())
    pem = imported_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    imported = write(client, f"{mount}/keys/import", pem_bundle=pem, key_name="imported")
    assert imported["key_type"] == "ec" and imported["key_name"] == "imported"
    assert (
        write(client, f"{mount}/config/keys", default="imported")["default"] == imported["key_id"]
    )
    assert client.read(f"{mount}/config/keys")["data"]["default"] == imported["key_id"]
    renamed = write(client, f"{mount}/key/spare", key_name="spare2")
    assert renamed["key_name"] == "spare2"
    with pytest.raises(hvac.exceptions.InvalidRequest) as info:
        client.delete(f"{mount}/key/first-key")
    assert "in use by one or more issuers" in str(info.value)
    client.delete(f"{mount}/key/spare2")
    assert "spare2" not in str(client.list(f"{mount}/keys")["data"])

    # a second root from an existing key; then rotate / replace / delete
    rotated = write(
        client,
        f"{mount}/root/rotate/internal",
        common_name="Next Root",
        key_type="ec",
        issuer_name="next",
        ttl="720h",
    )
    assert client.read(f"{mount}/config/issuers")["data"]["default"] == first["issuer_id"]
    replaced = write(client, f"{mount}/root/replace", default="next")
    assert replaced["default"] == rotated["issuer_id"]
    write(client, f"{mount}/config/issuers", default="renamed")
    assert client.read(f"{mount}/config/issuers")["data"]["default"] == first["issuer_id"]
    with pytest.raises(hvac.exceptions.InvalidRequest):
        write(client, f"{mount}/config/issuers", default="no-such-issuer")
    client.delete(f"{mount}/issuer/next")
    assert client.list(f"{mount}/issuers")["data"]["keys"] == [first["issuer_id"]]
    client.delete(f"{mount}/root")
    assert client.list(f"{mount}/issuers") is None  # hvac's answer to a 404
    assert client.list(f"{mount}/keys") is None


def test_sign_intermediate_respects_path_length(
    client: hvac.Client, mount: str, second_mount: str
) -> None:
    root(client, mount, common_name="Tight Root", max_path_length=0)
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Sub")]))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )
    with pytest.raises(hvac.exceptions.InvalidRequest) as info:
        write(client, f"{mount}/root/sign-intermediate", csr=csr, common_name="Sub")
    assert "max_path_length is 0" in str(info.value)


def test_hvac_pki_methods_round_trip(client: hvac.Client, mount: str, second_mount: str) -> None:
    pki = client.secrets.pki
    ca = root(client, mount, common_name="Hvac Root")
    assert pki.read_ca_certificate(mount_point=mount).strip() == ca["certificate"]
    assert pki.read_ca_certificate_chain(mount_point=mount).strip() == ca["certificate"]
    pki.set_urls({"ocsp_servers": ["http://ocsp.example/"]}, mount_point=mount)
    assert pki.read_urls(mount_point=mount)["data"]["ocsp_servers"] == ["http://ocsp.example/"]
    pki.set_crl_configuration(expiry="24h", mount_point=mount)
    assert pki.read_crl_configuration(mount_point=mount)["data"]["expiry"] == "24h"
    pki.create_or_update_role("one", {"allow_any_name": True, "key_type": "ec"}, mount_point=mount)
    pki.create_or_update_role("two", {"allow_any_name": True, "key_type": "ec"}, mount_point=mount)
    assert pki.list_roles(mount_point=mount)["data"]["keys"] == ["one", "two"]
    pki.delete_role("two", mount_point=mount)
    assert pki.list_roles(mount_point=mount)["data"]["keys"] == ["one"]
    leaf = pki.generate_certificate("one", "r.test", extra_params={"ttl": "1h"}, mount_point=mount)
    pki.revoke_certificate(leaf["data"]["serial_number"], mount_point=mount)
    crl = x509.load_pem_x509_crl(pki.read_crl(mount_point=mount).encode())
    assert crl.get_revoked_certificate_by_serial_number(
        pem_cert(leaf["data"]["certificate"]).serial_number
    )
    assert pki.rotate_crl(mount_point=mount)["data"] == {"success": True}
    assert pki.tidy(extra_params={"tidy_cert_store": True}, mount_point=mount).status_code == 202
    issuer = pki.read_issuer("default", mount_point=mount)["data"]
    assert pki.list_issuers(mount_point=mount)["data"]["keys"] == [issuer["issuer_id"]]
    assert (
        pki.update_issuer("default", {"issuer_name": "hv"}, mount_point=mount)["data"][
            "issuer_name"
        ]
        == "hv"
    )

    # an intermediate in the same mount, then revoked: its parent's CRL lists it
    csr = pki.generate_intermediate(
        "internal", "Sub CA", extra_params={"key_type": "ec"}, mount_point=second_mount
    )
    signed = pki.sign_intermediate(
        csr["data"]["csr"], "Sub CA", extra_params={"ttl": "100h"}, mount_point=mount
    )
    imported = write(
        client, f"{mount}/issuers/import/cert", pem_bundle=signed["data"]["certificate"]
    )
    sub_id = imported["imported_issuers"][0]
    revoked = pki.revoke_issuer(sub_id, mount_point=mount)["data"]
    assert revoked["revoked"] is True and revoked["revocation_time"] > 0
    crl = x509.load_pem_x509_crl(pki.read_crl(mount_point=mount).encode())
    assert crl.get_revoked_certificate_by_serial_number(
        pem_cert(signed["data"]["certificate"]).serial_number
    )
    pki.delete_issuer(sub_id, mount_point=mount)
    assert pki.list_issuers(mount_point=mount)["data"]["keys"] == [issuer["issuer_id"]]
    pki.delete_root(mount_point=mount)
    with pytest.raises(hvac.exceptions.InvalidPath):
        pki.list_issuers(mount_point=mount)
    pki.submit_ca_information(ca["certificate"], mount_point=mount)
    assert len(pki.list_issuers(mount_point=mount)["data"]["keys"]) == 1
