"""sign/<role> (certify the caller's public key) and issue/<role> (a new key pair, certified).

The certificate is built by ``cryptography``'s ``SSHCertificateBuilder``; this module only
decides its contents from the role and the request, with Vault's rules and messages:
principals, certificate type, key ID, validity, critical options and extensions.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import (
    SSHCertificateBuilder,
    SSHCertificateType,
)

from strongroom.engines.ssh._keys import (
    DEFAULT_RSA_SIGNER,
    PublicKey,
    check_key_lengths,
    generate_key,
    parse_public_key,
    private_key_pem,
    public_key_hash,
    resign_rsa_certificate,
)
from strongroom.engines.ssh._records import Role, load_role, render_template, storage_of
from strongroom.engines.ssh.config import CAStore
from strongroom.engines.ssh.roles import NAME
from strongroom.errors import InvalidRequest
from strongroom.framework import Duration, Path
from strongroom.logical import Operation, Request, Response, SystemView

__all__ = ["SignPaths"]


@dataclass(frozen=True, slots=True)
class SignArgs:
    name: str
    public_key: str = ""
    ttl: Duration = Duration(0)
    valid_principals: str | None = None
    cert_type: str = "user"
    key_id: str = ""
    critical_options: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class IssueArgs:
    name: str
    key_type: str = "rsa"
    key_bits: int = 0
    ttl: Duration = Duration(0)
    valid_principals: str | None = None
    cert_type: str = "user"
    key_id: str = ""
    critical_options: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, str] = field(default_factory=dict)


def _split(text: str) -> list[str]:
    return sorted({part.strip() for part in text.split(",") if part.strip()})


def _host_allowed(allowed: list[str], principal: str, role: Role) -> bool:
    for domain in allowed:
        if domain == "*":
            return True
        if principal == domain and role.allow_bare_domains:
            return True
        if role.allow_subdomains and principal.endswith("." + domain):
            return True
    return False


class SignPaths:
    def __init__(self, ca: CAStore, system: SystemView) -> None:
        self.ca = ca
        self.system = system

    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=r"sign/" + NAME,
                args=SignArgs,
                operations={Operation.UPDATE: self.sign},
                synopsis="Sign an SSH public key",
                description="Answers serial_number and signed_key (an OpenSSH certificate).",
            ),
            Path(
                pattern=r"issue/" + NAME,
                args=IssueArgs,
                operations={Operation.UPDATE: self.issue},
                synopsis="Generate an SSH key pair and sign its public key",
                description=(
                    "Answers private_key (OpenSSH format), private_key_type, serial_number "
                    "and signed_key."
                ),
            ),
        ]

    async def _role(self, request: Request, name: str) -> Role:
        role = await load_role(storage_of(request), name)
        if role is None:
            raise InvalidRequest(f"Unknown role: {name}")
        if role.key_type != "ca":
            raise InvalidRequest(f"role {name!r} has key_type {role.key_type!r}, not 'ca'")
        return role

    async def sign(self, request: Request, args: SignArgs) -> Response | None:
        if not args.public_key:
            raise InvalidRequest("missing public_key")
        role = await self._role(request, args.name)
        public = parse_public_key(args.public_key)
        return Response(data=await self._certify(request, role, public, args))

    async def issue(self, request: Request, args: IssueArgs) -> Response | None:
        role = await self._role(request, args.name)
        if args.key_type.lower() not in ("rsa", "ec", "ecdsa", "ed25519", "ssh-rsa", "ssh-ed25519"):
            raise InvalidRequest(f"unknown key_type: {args.key_type}")
        # check everything but the key before spending seconds on RSA key generation
        self._contents(request, role, None, args)
        private = await asyncio.to_thread(generate_key, args.key_type, args.key_bits)
        data = await self._certify(request, role, private.public_key(), args)
        kind = args.key_type.lower().removeprefix("ssh-")
        data["private_key"] = private_key_pem(private)
        data["private_key_type"] = "ec" if kind in ("ec", "ecdsa") else kind
        return Response(data=data)

    async def _certify(
        self, request: Request, role: Role, public: PublicKey, args: SignArgs | IssueArgs
    ) -> dict[str, Any]:
        ca = await self.ca.require(storage_of(request))
        contents = self._contents(request, role, public, args)
        serial = secrets.randbits(64)
        builder = (
            SSHCertificateBuilder()
            .public_key(public)
            .serial(serial)
            .type(contents["type"])
            .key_id(contents["key_id"].encode())
            .valid_after(contents["valid_after"])
            .valid_before(contents["valid_before"])
        )
        principals: list[str] = contents["principals"]
        if principals:
            builder = builder.valid_principals([p.encode() for p in principals])
        else:
            builder = builder.valid_for_all_principals()  # type: ignore[no-untyped-call]
        for name, value in sorted(contents["critical_options"].items()):
            builder = builder.add_critical_option(name.encode(), value.encode())
        for name, value in sorted(contents["extensions"].items()):
            builder = builder.add_extension(name.encode(), value.encode())
        certificate = builder.sign(ca.private_key)
        line = certificate.public_bytes().decode("ascii")
        if isinstance(ca.private_key, rsa.RSAPrivateKey):
            signer = role.algorithm_signer
            if signer in ("", "default"):
                signer = DEFAULT_RSA_SIGNER
            line = resign_rsa_certificate(line, ca.private_key, signer)
        return {"serial_number": f"{serial:x}", "signed_key": line + "\n"}

    def _contents(
        self,
        request: Request,
        role: Role,
        public: PublicKey | None,
        args: SignArgs | IssueArgs,
    ) -> dict[str, Any]:
        """Everything a certificate will say, checked against the role (400 if refused)."""
        entity_id = request.token.entity_id if request.token else ""
        if args.cert_type == "user":
            if not role.allow_user_certificates:
                raise InvalidRequest("cert_type 'user' is not allowed by role")
            cert_type = SSHCertificateType.USER
        elif args.cert_type == "host":
            if not role.allow_host_certificates:
                raise InvalidRequest("cert_type 'host' is not allowed by role")
            cert_type = SSHCertificateType.HOST
        else:
            raise InvalidRequest("cert_type must be either 'user' or 'host'")
        if public is not None:
            check_key_lengths(role.allowed_user_key_lengths, public)
        principals = self._principals(role, args, cert_type, entity_id)
        ttl = self._ttl(role, int(args.ttl))
        now = int(self.system.now())
        return {
            "type": cert_type,
            "principals": principals,
            "key_id": self._key_id(request, role, public, args),
            "valid_after": max(0, now - role.not_before_duration),
            "valid_before": now + ttl,
            "critical_options": self._critical_options(role, args),
            "extensions": self._extensions(role, args, entity_id),
        }

    def _principals(
        self,
        role: Role,
        args: SignArgs | IssueArgs,
        cert_type: SSHCertificateType,
        entity_id: str,
    ) -> list[str]:
        if cert_type is SSHCertificateType.USER:
            default = role.default_user
            if role.default_user_template:
                default = render_template(self.system, default, entity_id) or ""
            allowed_text = role.allowed_users
            allowed = _split(allowed_text)
            if role.allowed_users_template:
                allowed = [
                    r for r in (render_template(self.system, a, entity_id) for a in allowed) if r
                ]
        else:
            default = ""
            allowed_text = role.allowed_domains
            allowed = _split(allowed_text)
            if role.allowed_domains_template:
                allowed = [
                    r for r in (render_template(self.system, a, entity_id) for a in allowed) if r
                ]
        requested = _split(args.valid_principals if args.valid_principals is not None else "")
        if not requested and default:
            requested = [default]
        if not requested:
            if role.allow_empty_principals:
                return []
            raise InvalidRequest(
                "refusing to issue unsafe, globally-valid certificate with no principals "
                "specified; set valid_principals or default_user"
            )
        if not allowed:
            raise InvalidRequest("role is not configured to allow any principals")
        if allowed_text.strip() == "*":
            return requested
        for principal in requested:
            if cert_type is SSHCertificateType.USER:
                ok = principal in allowed or "*" in allowed
            else:
                ok = _host_allowed(allowed, principal, role)
            if not ok:
                raise InvalidRequest(f"{principal} is not a valid value for valid_principals")
        return requested

    def _ttl(self, role: Role, requested: int) -> int:
        max_ttl = role.max_ttl or self.system.max_lease_ttl()
        if requested:
            if requested > max_ttl:
                raise InvalidRequest(f"ttl is larger than maximum allowed {max_ttl}")
            return requested
        return min(role.ttl or self.system.default_lease_ttl(), max_ttl)

    def _key_id(
        self, request: Request, role: Role, public: PublicKey | None, args: SignArgs | IssueArgs
    ) -> str:
        if role.allow_user_key_ids and args.key_id:
            return args.key_id
        display = request.token.display_name if request.token else ""
        key_hash = public_key_hash(public) if public is not None else ""
        if role.key_id_format:
            return (
                role.key_id_format.replace("{{token_display_name}}", display)
                .replace("{{role_name}}", args.name)
                .replace("{{public_key_hash}}", key_hash)
            )
        return f"vault-{display}-{key_hash}"

    def _critical_options(self, role: Role, args: SignArgs | IssueArgs) -> dict[str, str]:
        if not args.critical_options:
            return dict(role.default_critical_options)
        if role.allowed_critical_options:
            allowed = set(_split(role.allowed_critical_options))
            refused = sorted(set(args.critical_options) - allowed)
            if refused:
                raise InvalidRequest(f"critical options not on allowed list: {refused}")
        return dict(args.critical_options)

    def _extensions(self, role: Role, args: SignArgs | IssueArgs, entity_id: str) -> dict[str, str]:
        if args.extensions:
            if role.allowed_extensions.strip() != "*":
                allowed = set(_split(role.allowed_extensions))
                refused = sorted(set(args.extensions) - allowed)
                if refused:
                    raise InvalidRequest(
                        f"extensions [{' '.join(refused)}] are not on allowed list"
                    )
            return dict(args.extensions)
        if role.default_extensions_template:
            out = {}
            for name, value in role.default_extensions.items():
                rendered = render_template(self.system, value, entity_id)
                if rendered is not None:
                    out[name] = rendered
            return out
        return dict(role.default_extensions)
