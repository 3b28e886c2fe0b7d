"""CA lifecycle: ``root/generate/:type`` (also ``issuers/generate/root/:type``),
``root/rotate/:type``, ``root/replace``, ``root`` DELETE, ``intermediate/generate/:type``
(also ``issuers/generate/intermediate/:type``; ``intermediate/cross-sign`` is its
``existing`` type), ``intermediate/set-signed``,
``root/sign-intermediate``, ``root/sign-self-issued``, ``issuers/import/bundle|cert`` and
``config/ca``."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field, replace
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from strongroom.engines.pki._build import Template, general_names, subject_name
from strongroom.engines.pki._crypto import (
    PrivateKey,
    cert_der,
    cert_pem,
    encode_private_key,
    format_serial,
    generate_key,
    is_ip,
    key_spec,
    key_type_of,
    load_cert,
    load_private_key,
    sign_padding,
    signature_hash,
)
from strongroom.engines.pki._issuing import Issuing, SignedCert, check_format
from strongroom.engines.pki._role import parse_other_sans
from strongroom.engines.pki._store import KeyRecord, PKIStore
from strongroom.engines.pki.issue import load_csr
from strongroom.errors import InvalidRequest
from strongroom.framework import Duration, NoArgs, Path
from strongroom.logical import Operation, Request, Response

__all__ = ["CAPaths", "import_bundle"]

_TYPES = ("internal", "exported", "existing", "kms")


@dataclass(frozen=True, slots=True)
class CAArgs:
    type: str = "internal"
    issuer_ref: str = "default"
    common_name: str = ""
    alt_names: list[str] = field(default_factory=list)
    ip_sans: list[str] = field(default_factory=list)
    uri_sans: list[str] = field(default_factory=list)
    other_sans: list[str] = field(default_factory=list)
    ttl: Duration = Duration(0)
    not_after: str = ""
    format: str = "pem"
    private_key_format: str = ""
    key_type: str = "rsa"
    key_bits: int = 0
    key_ref: str = "default"
    key_name: str = ""
    issuer_name: str = ""
    max_path_length: int = -1
    exclude_cn_from_sans: bool = False
    permitted_dns_domains: list[str] = field(default_factory=list)
    excluded_dns_domains: list[str] = field(default_factory=list)
    ou: list[str] = field(default_factory=list)
    organization: list[str] = field(default_factory=list)
    country: list[str] = field(default_factory=list)
    locality: list[str] = field(default_factory=list)
    province: list[str] = field(default_factory=list)
    street_address: list[str] = field(default_factory=list)
    postal_code: list[str] = field(default_factory=list)
    serial_number: str = ""
    not_before_duration: Duration = Duration(30)
    signature_bits: int = 0
    use_pss: bool = False
    add_basic_constraints: bool = False
    # sign-intermediate / sign-self-issued
    csr: str = ""
    use_csr_values: bool = False
    certificate: str = ""
    require_matching_certificate_algorithms: bool = False


@dataclass(frozen=True, slots=True)
class BundleArgs:
    pem_bundle: str = ""
    certificate: str = ""


@dataclass(frozen=True, slots=True)
class ReplaceArgs:
    default: str = "next"


def _names(args: CAArgs) -> tuple[list[str], list[str], list[str]]:
    dns: list[str] = []
    emails: list[str] = []
    ips = list(args.ip_sans)
    for name in args.alt_names:
        (emails if "@" in name else dns).append(name)
    cn = args.common_name
    if cn and not args.exclude_cn_from_sans:
        if "@" in cn:
            emails.insert(0, cn)
        elif is_ip(cn):
            ips.insert(0, cn)
        else:
            dns.insert(0, cn)
    for ip in ips:
        if not is_ip(ip):
            raise InvalidRequest(f"the value {ip!r} is not a valid IP address")
    return list(dict.fromkeys(dns)), list(dict.fromkeys(emails)), list(dict.fromkeys(ips))


class CAPaths:
    def __init__(self, store: PKIStore, issuing: Issuing) -> None:
        self.store = store
        self.issuing = issuing

    def paths(self) -> list[Path]:
        kind = r"(?P<type>[^/]+)"
        ref = r"issuer/(?P<issuer_ref>[^/]+)/"
        return [
            Path(
                pattern=rf"(?:root/generate|issuers/generate/root)/{kind}",
                args=CAArgs,
                operations={Operation.UPDATE: self.generate_root},
                synopsis="Generate a self-signed root CA (a new issuer)",
            ),
            Path(
                pattern=rf"root/rotate/{kind}",
                args=CAArgs,
                operations={Operation.UPDATE: self.rotate_root},
                synopsis="Generate a new root that does not become the default issuer",
            ),
            Path(
                pattern=r"root/replace",
                args=ReplaceArgs,
                operations={Operation.UPDATE: self.replace_root},
                synopsis="Make another issuer the default",
            ),
            Path(
                pattern=r"root",
                args=NoArgs,
                operations={Operation.DELETE: self.delete_all},
                synopsis="Delete every issuer and key of this mount",
            ),
            Path(
                pattern=rf"(?:intermediate/generate|issuers/generate/intermediate)/{kind}",
                args=CAArgs,
                operations={Operation.UPDATE: self.generate_intermediate},
                synopsis="Generate a key and a CSR for an intermediate CA",
            ),
            Path(
                pattern=r"intermediate/cross-sign",
                args=CAArgs,
                operations={Operation.UPDATE: self.cross_sign},
                synopsis="A CSR for an existing key (key_ref), to have another CA cross-sign it",
            ),
            Path(
                pattern=r"intermediate/set-signed",
                args=BundleArgs,
                operations={Operation.UPDATE: self.set_signed},
                synopsis="Import the signed intermediate certificate",
            ),
            *(
                Path(
                    pattern=pattern,
                    args=CAArgs,
                    operations={Operation.UPDATE: self.sign_intermediate},
                    synopsis="Sign an intermediate CA's CSR",
                )
                for pattern in (r"root/sign-intermediate", rf"{ref}sign-intermediate")
            ),
            *(
                Path(
                    pattern=pattern,
                    args=CAArgs,
                    operations={Operation.UPDATE: self.sign_self_issued},
                    synopsis="Re-sign a self-issued CA certificate with an issuer",
                )
                for pattern in (r"root/sign-self-issued", rf"{ref}sign-self-issued")
            ),
            Path(
                pattern=r"issuers/import/(?:bundle|cert)|config/ca",
                args=BundleArgs,
                operations={Operation.UPDATE: self.import_bundle},
                synopsis="Import CA certificates and keys (PEM bundle)",
            ),
        ]

    # -- roots ---------------------------------------------------------------------------

    async def _key_for(self, args: CAArgs) -> tuple[KeyRecord, PrivateKey, bool]:
        """(record, key, generated here) per the ``type`` URL segment."""
        if args.type not in _TYPES:
            raise InvalidRequest(
                f"unknown type: {args.type}; expected internal, exported or existing"
            )
        if args.type == "kms":
            raise InvalidRequest("managed keys (kms) are not supported")
        if args.type == "existing":
            record = await self.store.resolve_key(args.key_ref)
            return record, self.store.private_key(record), False
        await self.store.check_key_name(args.key_name)
        key = await generate_key(key_spec(args.key_type, args.key_bits))
        async with self.store.locks.hold("keys"):
            record, _ = await self.store.import_key(key, args.key_name)
        return record, key, True

    def _template(self, args: CAArgs, start: Any, end: Any) -> Template:
        dns, emails, ips = _names(args)
        return Template(
            common_name=args.common_name,
            dns_names=dns,
            emails=emails,
            ip_addresses=ips,
            uris=list(args.uri_sans),
            other_names=parse_other_sans(args.other_sans),
            ou=list(args.ou),
            organization=list(args.organization),
            country=list(args.country),
            locality=list(args.locality),
            province=list(args.province),
            street_address=list(args.street_address),
            postal_code=list(args.postal_code),
            subject_serial_number=args.serial_number,
            not_before=start,
            not_after=end,
            is_ca=True,
            max_path_length=args.max_path_length,
            permitted_dns_domains=list(args.permitted_dns_domains),
            excluded_dns_domains=list(args.excluded_dns_domains),
            signature_bits=args.signature_bits,
            use_pss=args.use_pss,
        )

    async def _new_root(self, args: CAArgs, *, set_default: bool) -> Response:
        check_format(args.format, args.private_key_format)
        if not args.common_name:
            raise InvalidRequest("the common_name field is required for a root CA")
        await self.store.check_issuer_name(args.issuer_name)
        warnings: list[str] = []
        start, end = self.issuing.validity(
            ttl=args.ttl or self.store.system.max_lease_ttl(),
            not_after=args.not_after,
            role_ttl=0,
            role_max_ttl=0,
            not_before_duration=args.not_before_duration,
            issuer=None,
            warnings=warnings,
        )
        template = self._template(args, start, end)
        urls = await self.issuing.aia(None)
        template.issuing_certificates = urls["issuing_certificates"]
        template.crl_distribution_points = urls["crl_distribution_points"]
        template.ocsp_servers = urls["ocsp_servers"]
        record, key, generated = await self._key_for(args)
        signed = await self.issuing.sign(template, key.public_key(), None, key)
        async with self.store.locks.hold("issuers"):
            issuer, _ = await self.store.import_issuer(
                signed.cert, cert_pem(signed.cert), args.issuer_name, set_default=set_default
            )
        data = await self.issuing.cert_response(
            signed, issuer, fmt=args.format, include_chain=False
        )
        data.update(
            issuer_id=issuer.id, issuer_name=issuer.name, key_id=record.id, key_name=record.name
        )
        if args.type == "exported" and generated:
            data["private_key"] = encode_private_key(key, args.format, args.private_key_format)
            data["private_key_type"] = key_type_of(key)
        if not any(urls.values()):
            warnings.append(
                "This mount hasn't configured any authority information access (AIA) fields; "
                "this may make it harder for systems to find missing certificates in the chain "
                "or to validate revocation status of certificates. Consider updating "
                "/config/urls or the newly generated issuer with this information."
            )
        return Response(data=data, warnings=warnings)

    async def generate_root(self, request: Request, args: CAArgs) -> Response:
        return await self._new_root(args, set_default=True)

    async def rotate_root(self, request: Request, args: CAArgs) -> Response:
        return await self._new_root(args, set_default=False)

    async def replace_root(self, request: Request, args: ReplaceArgs) -> Response:
        if args.default == "next":
            current = await self.store.default_issuer_id()
            candidates = [r for r in await self.store.issuers() if r.id != current and r.key_id]
            if not candidates:
                raise InvalidRequest("no other issuer to make the default")
            issuer = max(
                candidates, key=lambda r: self.store.cert(r.certificate).not_valid_before_utc
            )
        else:
            issuer = await self.store.resolve_issuer(args.default)
        async with self.store.locks.hold("config/issuers"):
            config = await self.store.config("issuers")
            config["default"] = issuer.id
            await self.store.put_config("issuers", config)
        return Response(
            data={
                "default": issuer.id,
                "default_follows_latest_issuer": bool(
                    config.get("default_follows_latest_issuer", False)
                ),
            }
        )

    async def delete_all(self, request: Request, args: NoArgs) -> Response:
        for issuer_id in await self.store.issuer_ids():
            await self.store.storage.delete(f"config/issuer/{issuer_id}")
        for key_id in await self.store.key_ids():
            await self.store.delete_key(key_id)
        await self.store.put_config("issuers", {"default": ""})
        await self.store.put_config("keys", {"default": ""})
        return Response(
            warnings=["DELETE /root deletes all keys and issuers; prefer the new multi-issuer API"]
        )

    # -- intermediates -------------------------------------------------------------------

    async def cross_sign(self, request: Request, args: CAArgs) -> Response:
        # Vault: intermediate/generate/existing under another name
        return await self.generate_intermediate(request, replace(args, type="existing"))

    async def generate_intermediate(self, request: Request, args: CAArgs) -> Response:
        check_format(args.format, args.private_key_format)
        if not args.common_name:
            raise InvalidRequest("the common_name field is required for a CSR")
        record, key, generated = await self._key_for(args)
        now = self.issuing.now()
        template = self._template(args, now, now)  # validity unused: a CSR has none
        builder = x509.CertificateSigningRequestBuilder().subject_name(subject_name(template))
        names = general_names(template)
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        if args.add_basic_constraints:
            path_len = None if args.max_path_length < 0 else args.max_path_length
            builder = builder.add_extension(x509.BasicConstraints(True, path_len), critical=True)
        csr = builder.sign(
            key,
            signature_hash(key, args.signature_bits),  # type: ignore[arg-type]
            rsa_padding=sign_padding(key, args.use_pss),  # type: ignore[arg-type]
        )
        if args.format == "der":
            text = base64.b64encode(csr.public_bytes(serialization.Encoding.DER)).decode()
        else:
            text = csr.public_bytes(serialization.Encoding.PEM).decode().strip()
        data: dict[str, Any] = {"csr": text, "key_id": record.id, "key_name": record.name}
        if args.type == "exported" and generated:
            data["private_key"] = encode_private_key(key, args.format, args.private_key_format)
            data["private_key_type"] = key_type_of(key)
        return Response(data=data)

    async def set_signed(self, request: Request, args: BundleArgs) -> Response:
        text = args.certificate or args.pem_bundle
        if not text.strip():
            raise InvalidRequest("the certificate field is required")
        data = await import_bundle(self.store, text, allow_keys=False)
        if not data["imported_issuers"] and not data["existing_issuers"]:
            raise InvalidRequest("no certificates found in the certificate field")
        return Response(data=data)

    async def import_bundle(self, request: Request, args: BundleArgs) -> Response:
        text = args.pem_bundle or args.certificate
        if not text.strip():
            raise InvalidRequest("the pem_bundle field is required")
        return Response(data=await import_bundle(self.store, text, allow_keys=True))

    async def sign_intermediate(self, request: Request, args: CAArgs) -> Response:
        check_format(args.format)
        csr = load_csr(args.csr)
        issuer = await self.store.resolve_issuer(args.issuer_ref)
        if _path_length(self.store.cert(issuer.certificate)) == 0:
            raise InvalidRequest(
                "the issuer's max_path_length is 0: it cannot sign intermediate CAs"
            )
        if args.use_csr_values:
            template_args = args
        else:
            if not args.common_name:
                raise InvalidRequest("the common_name field is required")
            template_args = args
        warnings: list[str] = []
        start, end = self.issuing.validity(
            ttl=args.ttl or self.store.system.max_lease_ttl(),
            not_after=args.not_after,
            role_ttl=0,
            role_max_ttl=0,
            not_before_duration=args.not_before_duration,
            issuer=issuer,
            warnings=warnings,
        )
        template = self._template(template_args, start, end)
        if args.use_csr_values:
            template.subject = csr.subject
            template.dns_names, template.emails, template.ip_addresses = [], [], []
            try:
                sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
                template.extra_extensions.append(sans)
            except x509.ExtensionNotFound:
                pass
        parent_path_len = _path_length(self.store.cert(issuer.certificate))
        if parent_path_len is not None:
            if template.max_path_length < 0 or template.max_path_length >= parent_path_len:
                template.max_path_length = parent_path_len - 1
        signing_key = await self.issuing.issuer_key(issuer)
        signed = await self.issuing.sign(template, csr.public_key(), issuer, signing_key)  # type: ignore[arg-type]
        data = await self.issuing.cert_response(signed, issuer, fmt=args.format)
        return Response(data=data, warnings=warnings)

    async def sign_self_issued(self, request: Request, args: CAArgs) -> Response:
        if not args.certificate.strip():
            raise InvalidRequest("the certificate field is required")
        cert = load_cert(args.certificate)
        if cert.subject != cert.issuer:
            raise InvalidRequest("the certificate is not self-issued")
        try:
            if not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
                raise InvalidRequest("the certificate is not a CA certificate")
        except x509.ExtensionNotFound:
            raise InvalidRequest("the certificate is not a CA certificate") from None
        issuer = await self.store.resolve_issuer(args.issuer_ref)
        signing_key = await self.issuing.issuer_key(issuer)
        issuer_cert = self.store.cert(issuer.certificate)
        if args.require_matching_certificate_algorithms and key_type_of(
            issuer_cert.public_key()
        ) != key_type_of(cert.public_key()):
            raise InvalidRequest("the certificate's key type does not match the issuer's")
        builder = (
            x509.CertificateBuilder()
            .subject_name(cert.subject)
            .issuer_name(issuer_cert.subject)
            .public_key(cert.public_key())
            .serial_number(cert.serial_number)
            .not_valid_before(cert.not_valid_before_utc)
            .not_valid_after(cert.not_valid_after_utc)
        )
        for extension in cert.extensions:
            if isinstance(extension.value, x509.AuthorityKeyIdentifier):
                continue
            builder = builder.add_extension(extension.value, critical=extension.critical)
        ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        new = builder.sign(signing_key, signature_hash(signing_key))  # type: ignore[arg-type]
        await self.store.put_cert(format_serial(new.serial_number), cert_der(new))
        signed = SignedCert(new, format_serial(new.serial_number))
        data = await self.issuing.cert_response(signed, issuer, fmt="pem", include_chain=False)
        return Response(data={k: data[k] for k in ("certificate", "issuing_ca")})


def _path_length(cert: x509.Certificate) -> int | None:
    try:
        value = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return None
    return value.path_length


async def import_bundle(store: PKIStore, text: str, *, allow_keys: bool) -> dict[str, Any]:
    """Import the keys then the certificates of a PEM bundle (Vault's import response)."""
    blocks = _pem_blocks(text)
    keys: list[PrivateKey] = []
    certs: list[tuple[x509.Certificate, str]] = []
    for kind, block in blocks:
        if kind.endswith("PRIVATE KEY"):
            if not allow_keys:
                raise InvalidRequest(
                    "private keys are not accepted here; use issuers/import/bundle"
                )
            keys.append(load_private_key(block.encode()))
        elif kind == "CERTIFICATE":
            try:
                cert = x509.load_pem_x509_certificate(block.encode())
            except ValueError:
                raise InvalidRequest("could not parse a certificate in the bundle") from None
            certs.append((cert, cert_pem(cert)))
    if not keys and not certs:
        raise InvalidRequest("no PEM blocks found in the bundle")
    imported_keys: list[str] = []
    existing_keys: list[str] = []
    async with store.locks.hold("keys"):
        for key in keys:
            record, existed = await store.import_key(key)
            (existing_keys if existed else imported_keys).append(record.id)
    imported: list[str] = []
    existing: list[str] = []
    mapping: dict[str, str] = {}
    async with store.locks.hold("issuers"):
        for cert, pem in certs:
            if not _is_ca(cert):
                continue
            issuer, existed = await store.import_issuer(cert, pem)
            (existing if existed else imported).append(issuer.id)
            mapping[issuer.id] = issuer.key_id
    return {
        "imported_issuers": imported or None,
        "imported_keys": imported_keys or None,
        "existing_issuers": existing or None,
        "existing_keys": existing_keys or None,
        "mapping": mapping,
    }


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return cert.subject == cert.issuer


def _pem_blocks(text: str) -> list[tuple[str, str]]:
    out = []
    lines = text.replace("\r\n", "\n").split("\n")
    kind, buf = "", []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("-----BEGIN ") and stripped.endswith("-----"):
            kind, buf = stripped[11:-5], [stripped]
        elif stripped.startswith("-----END ") and kind:
            buf.append(stripped)
            out.append((kind, "\n".join(buf) + "\n"))
            kind, buf = "", []
        elif kind:
            buf.append(stripped)
    return out
