"""Building certificates with ``cryptography``'s ``CertificateBuilder``.

A :class:`Template` is everything a certificate says besides its key and issuer: subject,
SANs, validity, CA-ness, key usages, policies and the AIA / CRL distribution URLs. Roots
sign themselves (``issuer_cert=None``); everything else is signed by an issuer's key.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from strongroom.engines.pki._crypto import (
    PrivateKey,
    PublicKey,
    sign_padding,
    signature_hash,
    utf8_other_name,
)
from strongroom.errors import InvalidRequest

__all__ = ["Template", "build_certificate", "general_names", "subject_name"]

_KEY_USAGES = {
    "digitalsignature": "digital_signature",
    "contentcommitment": "content_commitment",
    "keyencipherment": "key_encipherment",
    "dataencipherment": "data_encipherment",
    "keyagreement": "key_agreement",
    "certsign": "key_cert_sign",
    "crlsign": "crl_sign",
    "encipheronly": "encipher_only",
    "decipheronly": "decipher_only",
}
_EXT_KEY_USAGES = {
    "serverauth": ExtendedKeyUsageOID.SERVER_AUTH,
    "clientauth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "codesigning": ExtendedKeyUsageOID.CODE_SIGNING,
    "emailprotection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "timestamping": ExtendedKeyUsageOID.TIME_STAMPING,
    "ocspsigning": ExtendedKeyUsageOID.OCSP_SIGNING,
    "any": ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
    "ipsecendsystem": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.5"),
    "ipsectunnel": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.6"),
    "ipsecuser": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.7"),
    "microsoftservergatedcrypto": x509.ObjectIdentifier("1.3.6.1.4.1.311.10.3.3"),
    "netscapeservergatedcrypto": x509.ObjectIdentifier("2.16.840.1.113730.4.1"),
}


@dataclass(slots=True)
class Template:
    common_name: str = ""
    dns_names: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    ip_addresses: list[str] = field(default_factory=list)
    uris: list[str] = field(default_factory=list)
    other_names: dict[str, str] = field(default_factory=dict)
    ou: list[str] = field(default_factory=list)
    organization: list[str] = field(default_factory=list)
    country: list[str] = field(default_factory=list)
    locality: list[str] = field(default_factory=list)
    province: list[str] = field(default_factory=list)
    street_address: list[str] = field(default_factory=list)
    postal_code: list[str] = field(default_factory=list)
    subject_serial_number: str = ""
    subject: x509.Name | None = None  # used as-is when set (sign-verbatim, CSR subjects)
    not_before: datetime.datetime = field(
        default_factory=lambda: datetime.datetime.now(datetime.UTC)
    )
    not_after: datetime.datetime = field(
        default_factory=lambda: datetime.datetime.now(datetime.UTC)
    )
    serial: int = 0
    is_ca: bool = False
    max_path_length: int = -1
    key_usage: list[str] = field(default_factory=list)
    ext_key_usage: list[str] = field(default_factory=list)
    ext_key_usage_oids: list[str] = field(default_factory=list)
    policy_identifiers: list[str] = field(default_factory=list)
    basic_constraints_valid_for_non_ca: bool = False
    permitted_dns_domains: list[str] = field(default_factory=list)
    excluded_dns_domains: list[str] = field(default_factory=list)
    issuing_certificates: list[str] = field(default_factory=list)
    crl_distribution_points: list[str] = field(default_factory=list)
    ocsp_servers: list[str] = field(default_factory=list)
    signature_bits: int = 0
    use_pss: bool = False
    extra_extensions: list[x509.Extension[x509.ExtensionType]] = field(default_factory=list)


def subject_name(t: Template) -> x509.Name:
    if t.subject is not None:
        return t.subject
    attrs: list[x509.NameAttribute[str]] = []
    pairs = (
        (NameOID.COUNTRY_NAME, t.country),
        (NameOID.STATE_OR_PROVINCE_NAME, t.province),
        (NameOID.LOCALITY_NAME, t.locality),
        (NameOID.STREET_ADDRESS, t.street_address),
        (NameOID.POSTAL_CODE, t.postal_code),
        (NameOID.ORGANIZATION_NAME, t.organization),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, t.ou),
    )
    try:
        for oid, values in pairs:
            attrs.extend(x509.NameAttribute(oid, value) for value in values)
        if t.common_name:
            attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, t.common_name))
        if t.subject_serial_number:
            attrs.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, t.subject_serial_number))
    except ValueError as exc:
        raise InvalidRequest(f"invalid subject field: {exc}") from None
    return x509.Name(attrs)


def general_names(t: Template) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    try:
        names.extend(x509.DNSName(name) for name in t.dns_names)
        names.extend(x509.RFC822Name(email) for email in t.emails)
        names.extend(x509.IPAddress(ipaddress.ip_address(ip)) for ip in t.ip_addresses)
        names.extend(x509.UniformResourceIdentifier(uri) for uri in t.uris)
    except ValueError as exc:
        raise InvalidRequest(f"invalid subject alternative name: {exc}") from None
    names.extend(utf8_other_name(oid, value) for oid, value in t.other_names.items())
    return names


def key_usage_extension(names: list[str], *, is_ca: bool) -> x509.KeyUsage | None:
    flags = dict.fromkeys(_KEY_USAGES.values(), False)
    for name in names:
        attr = _KEY_USAGES.get(name.lower().replace("_", ""))
        if attr is None:
            raise InvalidRequest(f"unknown key usage: {name}")
        flags[attr] = True
    if is_ca:
        flags["key_cert_sign"] = flags["crl_sign"] = flags["digital_signature"] = True
    if not any(flags.values()):
        return None
    if not flags["key_agreement"]:
        flags["encipher_only"] = flags["decipher_only"] = False
    return x509.KeyUsage(**flags)


def ext_key_usages(names: list[str], oids: list[str]) -> list[x509.ObjectIdentifier]:
    out: list[x509.ObjectIdentifier] = []
    for name in names:
        oid = _EXT_KEY_USAGES.get(name.lower().replace("_", ""))
        if oid is None:
            raise InvalidRequest(f"unknown ext key usage: {name}")
        out.append(oid)
    for text in oids:
        try:
            out.append(x509.ObjectIdentifier(text))
        except ValueError:
            raise InvalidRequest(f"invalid ext_key_usage_oids entry: {text}") from None
    return out


def build_certificate(
    t: Template,
    public_key: PublicKey,
    signing_key: PrivateKey,
    issuer_cert: x509.Certificate | None,
) -> x509.Certificate:
    """Sign a certificate for ``public_key`` (self-signed when ``issuer_cert`` is None)."""
    subject = subject_name(t)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject if issuer_cert is not None else subject)
        .public_key(public_key)
        .serial_number(t.serial)
        .not_valid_before(t.not_before)
        .not_valid_after(t.not_after)
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
    builder = builder.add_extension(ski, critical=False)
    if issuer_cert is not None:
        try:
            issuer_ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
            aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski.value)
        except x509.ExtensionNotFound:
            aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key())  # type: ignore[arg-type]
        builder = builder.add_extension(aki, critical=False)
    else:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier(ski.digest, None, None), critical=False
        )
    if t.is_ca:
        path_len = None if t.max_path_length < 0 else t.max_path_length
        builder = builder.add_extension(x509.BasicConstraints(True, path_len), critical=True)
    elif t.basic_constraints_valid_for_non_ca:
        builder = builder.add_extension(x509.BasicConstraints(False, None), critical=True)
    usage = key_usage_extension(t.key_usage, is_ca=t.is_ca)
    if usage is not None:
        builder = builder.add_extension(usage, critical=True)
    ekus = ext_key_usages(t.ext_key_usage, t.ext_key_usage_oids)
    if ekus:
        builder = builder.add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
    names = general_names(t)
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if t.policy_identifiers:
        try:
            policies = [
                x509.PolicyInformation(x509.ObjectIdentifier(oid), None)
                for oid in t.policy_identifiers
            ]
        except ValueError:
            raise InvalidRequest("invalid policy_identifiers entry") from None
        builder = builder.add_extension(x509.CertificatePolicies(policies), critical=False)
    if t.permitted_dns_domains or t.excluded_dns_domains:
        builder = builder.add_extension(
            x509.NameConstraints(
                [x509.DNSName(d) for d in t.permitted_dns_domains] or None,
                [x509.DNSName(d) for d in t.excluded_dns_domains] or None,
            ),
            critical=True,
        )
    access = [
        x509.AccessDescription(
            AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(url)
        )
        for url in t.issuing_certificates
    ] + [
        x509.AccessDescription(
            AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(url)
        )
        for url in t.ocsp_servers
    ]
    if access:
        builder = builder.add_extension(x509.AuthorityInformationAccess(access), critical=False)
    if t.crl_distribution_points:
        points = [
            x509.DistributionPoint([x509.UniformResourceIdentifier(url)], None, None, None)
            for url in t.crl_distribution_points
        ]
        builder = builder.add_extension(x509.CRLDistributionPoints(points), critical=False)
    for extension in t.extra_extensions:
        builder = builder.add_extension(extension.value, critical=extension.critical)
    try:
        return builder.sign(
            signing_key,
            signature_hash(signing_key, t.signature_bits),  # type: ignore[arg-type]
            rsa_padding=sign_padding(signing_key, t.use_pss),  # type: ignore[arg-type]
        )
    except ValueError as exc:
        raise InvalidRequest(f"unable to sign the certificate: {exc}") from None
