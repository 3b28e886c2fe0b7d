"""Client-certificate checks for the cert method: trust, revocation and name constraints.

Trust, per ``certs/<name>`` entry, whose ``certificate`` PEM may hold several certificates:

- a CA certificate (``basicConstraints: CA:TRUE``) is a trust anchor: the client certificate
  must chain to it. Chains are built and checked by cryptography's X.509 verifier
  (``cryptography.x509.verification``, the Rust WebPKI-derived path builder), never by
  hand-written ASN.1: signatures, validity periods, CA flags, key usage of issuers, path
  length and name constraints. Its client profile is used (``ClientVerifier``): an extended
  key usage on the client certificate, if present, must allow clientAuth. We relax two
  WebPKI rules for end-entity certificates that Go's verifier (Vault's) does not have either:
  a subjectAltName and an authorityKeyIdentifier are optional (client certificates from
  internal CAs often have neither). CA certificates keep the WebPKI rules.
- any other certificate is *pinned*: the client certificate must be that very certificate,
  byte for byte (DER equality of the whole certificate, as Vault compares ``Raw``), and within
  its validity period. Matching only the public key or the serial would accept a re-issued
  certificate with other names or extensions.

Revocation: a certificate anywhere in the verified chain (or a pinned leaf) is revoked when a
CRL loaded at ``crls/`` from the same issuer lists its serial number.

Name constraints (``allowed_*``, globs with ``*``): each non-empty list needs at least one
matching value in the certificate; DNS names compare case-insensitively.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
from collections.abc import Iterable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from strongroom.auth._common import glob_match_any
from strongroom.errors import InvalidRequest

__all__ = [
    "common_name",
    "constraints_met",
    "der_of",
    "fingerprint",
    "is_ca",
    "key_id_text",
    "parse_pem_certificates",
    "trusted_chain",
]

_EE_POLICY = (
    ExtensionPolicy.webpki_defaults_ee()
    .may_be_present(x509.AuthorityKeyIdentifier, Criticality.AGNOSTIC, None)
    .may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
)
_CA_POLICY = ExtensionPolicy.webpki_defaults_ca()


@functools.lru_cache(maxsize=256)
def parse_pem_certificates(pem: str) -> tuple[x509.Certificate, ...]:
    """Every certificate in ``pem``.

    Raises:
        InvalidRequest: no certificate could be parsed.
    """
    try:
        certs = x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        raise InvalidRequest("certificate: expected one or more PEM certificates") from None
    if not certs:
        raise InvalidRequest("certificate: expected one or more PEM certificates")
    return tuple(certs)


def der_of(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def fingerprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(der_of(cert)).hexdigest()


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _valid_at(cert: x509.Certificate, when: datetime.datetime) -> bool:
    return cert.not_valid_before_utc <= when <= cert.not_valid_after_utc


def trusted_chain(
    anchors: Sequence[x509.Certificate],
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    now: float,
) -> list[x509.Certificate] | None:
    """The verified chain (leaf first) from ``leaf`` to one of ``anchors``, or ``None``.

    Non-CA anchors are pinned certificates: only the identical certificate matches.
    """
    when = datetime.datetime.fromtimestamp(now, datetime.UTC)
    leaf_der = der_of(leaf)
    for pinned in (cert for cert in anchors if not is_ca(cert)):
        if der_of(pinned) == leaf_der and _valid_at(leaf, when):
            return [leaf]
    cas = [cert for cert in anchors if is_ca(cert)]
    if not cas:
        return None
    verifier = (
        PolicyBuilder()
        .store(Store(cas))
        .time(when)
        .extension_policies(ca_policy=_CA_POLICY, ee_policy=_EE_POLICY)
        .build_client_verifier()
    )
    try:
        return list(verifier.verify(leaf, list(intermediates)).chain)
    except VerificationError:
        return None


def _names(
    cert: x509.Certificate,
    kind: type[x509.DNSName | x509.RFC822Name | x509.UniformResourceIdentifier],
) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(value) for value in san.get_values_for_type(kind)]


def common_name(cert: x509.Certificate) -> str:
    values = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else ""


def _matches(patterns: Sequence[str], values: Iterable[str], *, fold: bool = False) -> bool:
    if not patterns:
        return True
    if fold:
        patterns = [p.lower() for p in patterns]
        values = [v.lower() for v in values]
    return any(glob_match_any(patterns, value) for value in values)


def constraints_met(
    leaf: x509.Certificate,
    *,
    allowed_names: Sequence[str],
    allowed_common_names: Sequence[str],
    allowed_dns_sans: Sequence[str],
    allowed_email_sans: Sequence[str],
    allowed_uri_sans: Sequence[str],
    allowed_organizational_units: Sequence[str],
) -> bool:
    cn = common_name(leaf)
    dns = _names(leaf, x509.DNSName)
    emails = _names(leaf, x509.RFC822Name)
    uris = _names(leaf, x509.UniformResourceIdentifier)
    units = [
        str(attr.value)
        for attr in leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    ]
    return (
        _matches(allowed_names, [cn, *dns, *emails])
        and _matches(allowed_common_names, [cn])
        and _matches(allowed_dns_sans, dns, fold=True)
        and _matches(allowed_email_sans, emails)
        and _matches(allowed_uri_sans, uris)
        and _matches(allowed_organizational_units, units)
    )


def key_id_text(cert: x509.Certificate, which: str) -> str:
    """Subject or authority key identifier as colon-separated hex (Vault's format), or ""."""
    try:
        if which == "subject":
            raw = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        else:
            value = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
            raw = value.key_identifier or b""
    except x509.ExtensionNotFound:
        return ""
    return ":".join(f"{byte:02x}" for byte in raw)
