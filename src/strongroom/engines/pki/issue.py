"""``issue/:role``, ``sign/:role``, ``sign-verbatim[/:role]`` and their
``issuer/:ref/…`` forms: certificates under a role's rules."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from strongroom.engines.pki._build import Template, subject_name
from strongroom.engines.pki._crypto import (
    PublicKey,
    common_name_of,
    generate_key,
    is_ip,
    key_bits_of,
    key_spec,
    key_type_of,
)
from strongroom.engines.pki._issuing import Issuing, check_format
from strongroom.engines.pki._role import (
    RoleArgs,
    check_cn,
    check_names,
    check_other_sans,
    check_uri_sans,
    glob,
    parse_other_sans,
)
from strongroom.engines.pki._store import IssuerRecord, PKIStore
from strongroom.errors import InvalidRequest
from strongroom.framework import Duration, Path
from strongroom.logical import Operation, Request, Response, Secret

__all__ = ["LEASE_TYPE", "IssuePaths", "load_csr"]

LEASE_TYPE = "pki"
_NAME = r"[^/]+"


@dataclass(frozen=True, slots=True)
class IssueArgs:
    role: str = ""
    issuer_ref: str = ""
    common_name: str = ""
    alt_names: list[str] = field(default_factory=list)
    ip_sans: list[str] = field(default_factory=list)
    uri_sans: list[str] = field(default_factory=list)
    other_sans: list[str] = field(default_factory=list)
    serial_number: str = ""
    ttl: Duration = Duration(0)
    not_after: str = ""
    format: str = "pem"
    private_key_format: str = ""
    exclude_cn_from_sans: bool = False
    remove_roots_from_chain: bool = False
    user_ids: list[str] = field(default_factory=list)
    csr: str = ""
    # sign-verbatim only
    key_usage: list[str] = field(
        default_factory=lambda: ["DigitalSignature", "KeyAgreement", "KeyEncipherment"]
    )
    ext_key_usage: list[str] = field(default_factory=list)
    ext_key_usage_oids: list[str] = field(default_factory=list)
    signature_bits: int = 0
    use_pss: bool = False


def load_csr(text: str) -> x509.CertificateSigningRequest:
    """A PEM CSR whose self-signature verifies; Vault's 400 otherwise."""
    if not text.strip():
        raise InvalidRequest("csr: a CSR is required")
    try:
        raw = text.encode()
        csr = (
            x509.load_pem_x509_csr(raw)
            if raw.lstrip().startswith(b"-----")
            else x509.load_der_x509_csr(base64.b64decode(raw))
        )
        valid = csr.is_signature_valid
    except ValueError:
        raise InvalidRequest("certificate request could not be parsed") from None
    if not valid:
        raise InvalidRequest("certificate request signature is invalid")
    return csr


def _csr_sans(csr: x509.CertificateSigningRequest) -> x509.SubjectAlternativeName | None:
    try:
        return csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None


class IssuePaths:
    def __init__(self, store: PKIStore, issuing: Issuing) -> None:
        self.store = store
        self.issuing = issuing

    def paths(self) -> list[Path]:
        def one(pattern: str, handler: Callable[..., Any], synopsis: str) -> Path:
            return Path(
                pattern=pattern,
                args=IssueArgs,
                operations={Operation.UPDATE: handler},
                synopsis=synopsis,
            )

        ref = rf"issuer/(?P<issuer_ref>{_NAME})/"
        return [
            one(rf"issue/(?P<role>{_NAME})", self.issue, "Issue a certificate and key"),
            one(rf"sign/(?P<role>{_NAME})", self.sign, "Sign a CSR under a role"),
            one(rf"sign-verbatim(?:/(?P<role>{_NAME}))?", self.sign_verbatim, "Sign a CSR as-is"),
            one(rf"{ref}issue/(?P<role>{_NAME})", self.issue, "Issue with a given issuer"),
            one(rf"{ref}sign/(?P<role>{_NAME})", self.sign, "Sign with a given issuer"),
            one(
                rf"{ref}sign-verbatim(?:/(?P<role>{_NAME}))?",
                self.sign_verbatim,
                "Sign a CSR as-is with a given issuer",
            ),
        ]

    async def _role(self, name: str) -> RoleArgs:
        raw = await self.store.role(name)
        if raw is None:
            raise InvalidRequest(f"unknown role: {name}")
        return RoleArgs.from_json(raw)

    def _for_caller(self, request: Request, role: RoleArgs) -> RoleArgs:
        """``allowed_domains_template`` / ``allowed_uri_sans_template``: each entry with its
        ``{{identity...}}`` placeholders filled for the caller's entity by core's ACL
        templating; an entry that cannot be filled (no entity, a missing value, a value
        with ``*``, ``/``...) allows nothing."""
        if not role.allowed_domains_template and not role.allowed_uri_sans_template:
            return role
        entity_id = request.token.entity_id if request.token is not None else ""

        def fill(entries: list[str]) -> list[str]:
            filled = (self.store.system.identity_template(e, entity_id) for e in entries)
            return [entry for entry in filled if entry]

        return dataclasses.replace(
            role,
            allowed_domains=fill(role.allowed_domains)
            if role.allowed_domains_template
            else role.allowed_domains,
            allowed_uri_sans=fill(role.allowed_uri_sans)
            if role.allowed_uri_sans_template
            else role.allowed_uri_sans,
        )

    async def issue(self, request: Request, args: IssueArgs) -> Response:
        role = self._for_caller(request, await self._role(args.role))
        if role.key_type == "any":
            raise InvalidRequest(
                'role key type "any" not allowed for issuing certificates, only signing'
            )
        check_format(args.format, args.private_key_format)
        template, issuer, warnings = await self._template(role, args, None)
        key = await generate_key(key_spec(role.key_type, role.key_bits))
        return await self._finish(
            request, role, args, template, key.public_key(), issuer, warnings, key=key
        )

    async def sign(self, request: Request, args: IssueArgs) -> Response:
        role = self._for_caller(request, await self._role(args.role))
        check_format(args.format)
        csr = load_csr(args.csr)
        public_key = _check_csr_key(role, csr)
        template, issuer, warnings = await self._template(role, args, csr)
        return await self._finish(request, role, args, template, public_key, issuer, warnings)

    async def sign_verbatim(self, request: Request, args: IssueArgs) -> Response:
        role = await self._role(args.role) if args.role else RoleArgs(name="", key_type="any")
        check_format(args.format)
        csr = load_csr(args.csr)
        public_key = _check_csr_key(RoleArgs(name="", key_type="any"), csr)
        issuer = await self.store.resolve_issuer(args.issuer_ref or role.issuer_ref)
        warnings: list[str] = []
        start, end = self.issuing.validity(
            ttl=args.ttl,
            not_after=args.not_after,
            role_ttl=role.ttl,
            role_max_ttl=role.max_ttl,
            not_before_duration=role.not_before_duration,
            issuer=issuer,
            warnings=warnings,
        )
        template = Template(
            subject=csr.subject,
            not_before=start,
            not_after=end,
            key_usage=list(args.key_usage),
            ext_key_usage=list(args.ext_key_usage),
            ext_key_usage_oids=list(args.ext_key_usage_oids),
            signature_bits=args.signature_bits,
            use_pss=args.use_pss,
        )
        sans = _csr_sans(csr)
        if sans is not None:
            template.extra_extensions.append(x509.Extension(sans.oid, False, sans))
        return await self._finish(request, role, args, template, public_key, issuer, warnings)

    async def _template(
        self,
        role: RoleArgs,
        args: IssueArgs,
        csr: x509.CertificateSigningRequest | None,
    ) -> tuple[Template, IssuerRecord, list[str]]:
        """Apply the role's rules to the requested names; 400 for anything it refuses."""
        common_name = args.common_name
        dns: list[str] = []
        emails: list[str] = []
        ips = list(args.ip_sans)
        uris = list(args.uri_sans)
        if csr is not None:
            if role.use_csr_common_name:
                common_name = common_name_of(csr.subject) or common_name
            sans = _csr_sans(csr)
            if role.use_csr_sans and sans is not None:
                dns.extend(sans.get_values_for_type(x509.DNSName))
                emails.extend(sans.get_values_for_type(x509.RFC822Name))
                ips.extend(str(ip) for ip in sans.get_values_for_type(x509.IPAddress))
                uris.extend(sans.get_values_for_type(x509.UniformResourceIdentifier))
        for name in args.alt_names:
            (emails if "@" in name else dns).append(name)
        if not common_name and role.require_cn:
            raise InvalidRequest(
                "the common_name field is required, or must be provided in a CSR with "
                '"use_csr_common_name" set to true, unless "require_cn" is set to false'
            )
        if common_name:
            check_cn(role, common_name)
            if check_names(role, [common_name]) is not None:
                raise InvalidRequest(f"common name {common_name} not allowed by this role")
        refused = check_names(role, dns + emails)
        if refused is not None:
            raise InvalidRequest(f"subject alternate name {refused} not allowed by this role")
        if common_name and not args.exclude_cn_from_sans:
            if "@" in common_name:
                emails.insert(0, common_name)
            elif is_ip(common_name):
                ips.insert(0, common_name)
            else:
                dns.insert(0, common_name)
        for ip in ips:
            if not is_ip(ip):
                raise InvalidRequest(f"the value {ip!r} is not a valid IP address")
        if ips and not role.allow_ip_sans:
            raise InvalidRequest(
                "IP Subject Alternative Names are not allowed in this role, "
                f"but was provided {', '.join(ips)}"
            )
        if uris:
            check_uri_sans(role, uris)
        other = parse_other_sans(args.other_sans)
        if other:
            check_other_sans(role, other)
        if args.serial_number and role.allowed_serial_numbers:
            if not any(glob(p, args.serial_number) for p in role.allowed_serial_numbers):
                raise InvalidRequest(f"serial_number {args.serial_number} not allowed by this role")
        for user_id in args.user_ids:
            if not any(glob(p, user_id) for p in role.allowed_user_ids):
                raise InvalidRequest(f"user_id {user_id} not allowed by this role")
        issuer = await self.store.resolve_issuer(args.issuer_ref or role.issuer_ref)
        warnings: list[str] = []
        start, end = self.issuing.validity(
            ttl=args.ttl,
            not_after=args.not_after or role.not_after,
            role_ttl=role.ttl,
            role_max_ttl=role.max_ttl,
            not_before_duration=role.not_before_duration,
            issuer=issuer,
            warnings=warnings,
        )
        ekus: list[str] = []
        for flag, name in (
            (role.server_flag, "ServerAuth"),
            (role.client_flag, "ClientAuth"),
            (role.code_signing_flag, "CodeSigning"),
            (role.email_protection_flag, "EmailProtection"),
        ):
            if flag:
                ekus.append(name)
        ekus.extend(e for e in role.ext_key_usage if e not in ekus)
        template = Template(
            common_name=common_name,
            dns_names=list(dict.fromkeys(dns)),
            emails=list(dict.fromkeys(emails)),
            ip_addresses=list(dict.fromkeys(ips)),
            uris=list(dict.fromkeys(uris)),
            other_names=other,
            ou=list(role.ou),
            organization=list(role.organization),
            country=list(role.country),
            locality=list(role.locality),
            province=list(role.province),
            street_address=list(role.street_address),
            postal_code=list(role.postal_code),
            subject_serial_number=args.serial_number,
            not_before=start,
            not_after=end,
            key_usage=list(role.key_usage),
            ext_key_usage=ekus,
            ext_key_usage_oids=list(role.ext_key_usage_oids),
            policy_identifiers=list(role.policy_identifiers),
            basic_constraints_valid_for_non_ca=role.basic_constraints_valid_for_non_ca,
            signature_bits=role.signature_bits,
            use_pss=role.use_pss,
        )
        if user_ids := args.user_ids:
            subject = list(_subject_attrs(template))
            subject.extend(x509.NameAttribute(NameOID.USER_ID, u) for u in user_ids)
            template.subject = x509.Name(subject)
        return template, issuer, warnings

    async def _finish(
        self,
        request: Request,
        role: RoleArgs,
        args: IssueArgs,
        template: Template,
        public_key: PublicKey,
        issuer: IssuerRecord,
        warnings: list[str],
        *,
        key: Any = None,
    ) -> Response:
        signing_key = await self.issuing.issuer_key(issuer)
        store = not role.no_store or role.generate_lease
        signed = await self.issuing.sign(template, public_key, issuer, signing_key, store=store)
        data = await self.issuing.cert_response(
            signed,
            issuer,
            fmt=args.format,
            private_key=key,
            private_key_format=args.private_key_format,
            remove_roots_from_chain=args.remove_roots_from_chain,
        )
        secret = None
        if role.generate_lease:
            remaining = int(signed.cert.not_valid_after_utc.timestamp() - self.store.system.now())
            secret = Secret(
                type=LEASE_TYPE,
                ttl=max(remaining, 1),
                renewable=False,
                internal_data={"serial_number": signed.serial},
            )
        return Response(data=data, secret=secret, warnings=warnings + list(signed.warnings))


def _subject_attrs(template: Template) -> list[x509.NameAttribute[Any]]:
    return list(subject_name(template))


def _check_csr_key(role: RoleArgs, csr: x509.CertificateSigningRequest) -> PublicKey:
    """The CSR's key, if the role allows its type and size."""
    public_key = csr.public_key()
    try:
        key_type = key_type_of(public_key)
    except InvalidRequest:
        raise InvalidRequest("unsupported key type in the CSR") from None
    bits = key_bits_of(public_key)
    if key_type == "rsa" and bits < 2048:
        raise InvalidRequest(f"RSA keys < 2048 bits are unsafe and not supported: got {bits}")
    if role.key_type != "any":
        if key_type != role.key_type:
            raise InvalidRequest(
                f"role requires keys of type {role.key_type}; the CSR has a {key_type} key"
            )
        wanted = key_spec(role.key_type, role.key_bits).bits
        if key_type == "rsa" and bits < wanted:
            raise InvalidRequest(
                f"role requires a minimum of {wanted} bits for RSA keys; the CSR has {bits}"
            )
        if key_type == "ec" and bits < wanted:
            raise InvalidRequest(f"role requires an EC curve of at least {wanted} bits")
    return public_key  # type: ignore[return-value]
