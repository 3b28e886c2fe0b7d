"""PKI over HTTP: issuers/generate/{root,intermediate}/:type and intermediate/cross-sign
(Vault's other names for root/intermediate generation), issuer/:ref/resign-crls and
issuer/:ref/sign-revocation-list (CRLs checked with cryptography against the issuer)."""

from __future__ import annotations

import base64
import datetime

import hvac
import pytest
from cryptography import x509

from tests.engines.pki.helpers import root, write


def _crl(pem: str) -> x509.CertificateRevocationList:
    return x509.load_pem_x509_crl(pem.encode())


def test_issuers_generate_and_cross_sign(client: hvac.Client, mount: str) -> None:
    made = write(client, f"{mount}/issuers/generate/root/internal", common_name="Alt Root")
    cert = x509.load_pem_x509_certificate(made["certificate"].encode())
    assert cert.subject == cert.issuer and made["issuer_id"]
    csr = write(client, f"{mount}/issuers/generate/intermediate/internal", common_name="Alt Int")
    assert csr["csr"].startswith("-----BEGIN CERTIFICATE REQUEST-----") and csr["key_id"]
    # cross-sign: a CSR for an existing key, named by key_ref
    cross = write(
        client, f"{mount}/intermediate/cross-sign", common_name="Alt Root", key_ref=made["key_id"]
    )
    request = x509.load_pem_x509_csr(cross["csr"].encode())
    assert request.public_key() == cert.public_key()
    with pytest.raises(hvac.exceptions.InvalidRequest):
        write(client, f"{mount}/intermediate/cross-sign", common_name="x", key_ref="nope")


def _revoke_two(client: hvac.Client, mount: str) -> list[int]:
    write(client, f"{mount}/roles/web", allow_any_name=True, ttl="1h")
    serials = []
    for name in ("a.example", "b.example"):
        leaf = write(client, f"{mount}/issue/web", common_name=name)
        write(client, f"{mount}/revoke", serial_number=leaf["serial_number"])
        serials.append(int(leaf["serial_number"].replace(":", ""), 16))
    return serials


def test_resign_crls_combines_and_verifies(client: hvac.Client, mount: str) -> None:
    ca = root(client, mount)
    issuer_cert = x509.load_pem_x509_certificate(ca["certificate"].encode())
    first = client.read(f"{mount}/issuer/default/crl")["data"]["crl"]
    serials = _revoke_two(client, mount)
    second = client.read(f"{mount}/issuer/default/crl")["data"]["crl"]
    out = write(
        client,
        f"{mount}/issuer/default/resign-crls",
        crl_number=42,
        next_update="1h",
        crls=[first, second],
    )
    crl = _crl(out["crl"])
    assert crl.is_signature_valid(issuer_cert.public_key())  # type: ignore[arg-type]
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 42
    assert sorted(entry.serial_number for entry in crl) == sorted(serials)
    assert crl.next_update_utc - crl.last_update_utc == datetime.timedelta(hours=1)
    # a delta CRL, as DER in base64
    der = write(
        client,
        f"{mount}/issuer/default/resign-crls",
        crl_number=43,
        delta_crl_base_number=42,
        format="der",
        crls=[second],
    )["crl"]
    delta = x509.load_der_x509_crl(base64.b64decode(der))
    assert delta.extensions.get_extension_for_class(x509.DeltaCRLIndicator).value.crl_number == 42
    # a CRL of another issuer is refused, and so is a call without crl_number
    other = f"{mount}-other"
    client.sys.enable_secrets_engine("pki", path=other)
    try:
        root(client, other, common_name="Other Root")
        foreign = client.read(f"{other}/issuer/default/crl")["data"]["crl"]
    finally:
        client.sys.disable_secrets_engine(other)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="not signed by issuer"):
        write(client, f"{mount}/issuer/default/resign-crls", crl_number=44, crls=[foreign])
    with pytest.raises(hvac.exceptions.InvalidRequest, match="crl_number"):
        write(client, f"{mount}/issuer/default/resign-crls", crl_number=-1, crls=[first])
    # as Vault: crl_number defaults to 0, and no CRLs make an empty one
    empty = _crl(write(client, f"{mount}/issuer/default/resign-crls")["crl"])
    assert len(empty) == 0
    assert empty.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 0


def test_sign_revocation_list(client: hvac.Client, mount: str) -> None:
    ca = root(client, mount)
    issuer_cert = x509.load_pem_x509_certificate(ca["certificate"].encode())
    out = write(
        client,
        f"{mount}/issuer/default/sign-revocation-list",
        crl_number=7,
        revoked_certs=[
            {"serial_number": "01:02:03", "revocation_time": 1_700_000_000},
            {"serial_number": "99", "revocation_time": "2024-01-02T03:04:05Z"},
        ],
        extensions=[
            {"id": "1.2.3.4", "critical": False, "value": base64.b64encode(b"\x05\x00").decode()}
        ],
    )
    crl = _crl(out["crl"])
    assert crl.is_signature_valid(issuer_cert.public_key())  # type: ignore[arg-type]
    entries = {entry.serial_number: entry.revocation_date_utc for entry in crl}
    assert entries == {
        0x010203: datetime.datetime.fromtimestamp(1_700_000_000, datetime.UTC),
        99: datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
    }
    assert (
        crl.extensions.get_extension_for_oid(x509.ObjectIdentifier("1.2.3.4")).value.value
        == b"\x05\x00"
    )
    for bad in (
        {"revoked_certs": [{"revocation_time": 1}]},
        {"revoked_certs": [{"serial_number": "zz:zz"}]},
        {"extensions": [{"id": "2.5.29.20", "value": ""}]},
        {"format": "xml"},
    ):
        with pytest.raises(hvac.exceptions.InvalidRequest):
            write(client, f"{mount}/issuer/default/sign-revocation-list", crl_number=1, **bad)
