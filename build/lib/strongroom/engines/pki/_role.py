"""Roles: Vault's full field set, and the name checks a role makes on every request.

The checks follow Vault's ``validateNames``: e-mail addresses are checked by their domain,
wildcards (``*.example.com``) need ``allow_wildcard_certificates``, ``enforce_hostnames``
wants RFC 1123 host names (after IDNA), then ``allow_any_name``, ``allow_localhost``, and
each of ``allowed_domains`` with ``allow_bare_domains`` / ``allow_subdomains`` /
``allow_glob_domains``. URI SANs match ``allowed_uri_sans`` globs (``*`` crosses ``/``, so
``spiffe://cluster.local/ns/*/sa/*`` works as in Vault).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from dataclasses import dataclass, field
from typing import Any

from strongroom.errors import InvalidRequest
from strongroom.framework import Duration

__all__ = ["RoleArgs", "check_names", "check_other_sans", "check_uri_sans", "glob"]

_HOSTNAME = re.compile(
    r"\A(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)*"
    r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.?\Z"
)
_EMAIL = re.compile(r"\A[^@\s]+@[^@\s]+\Z")


def _default_key_usage() -> list[str]:
    return ["DigitalSignature", "KeyAgreement", "KeyEncipherment"]


def _default_cn_validations() -> list[str]:
    return ["email", "hostname"]


@dataclass(frozen=True, slots=True)
class RoleArgs:
    """A role's fields with Vault's defaults (``roles/:name`` write and read)."""

    name: str
    issuer_ref: str = "default"
    ttl: Duration = Duration(0)
    max_ttl: Duration = Duration(0)
    allow_localhost: bool = True
    allowed_domains: list[str] = field(default_factory=list)
    allowed_domains_template: bool = False
    allow_bare_domains: bool = False
    allow_subdomains: bool = False
    allow_glob_domains: bool = False
    allow_wildcard_certificates: bool = True
    allow_any_name: bool = False
    enforce_hostnames: bool = True
    allow_ip_sans: bool = True
    allowed_uri_sans: list[str] = field(default_factory=list)
    allowed_uri_sans_template: bool = False
    allowed_other_sans: list[str] = field(default_factory=list)
    allowed_serial_numbers: list[str] = field(default_factory=list)
    allowed_user_ids: list[str] = field(default_factory=list)
    server_flag: bool = True
    client_flag: bool = True
    code_signing_flag: bool = False
    email_protection_flag: bool = False
    key_type: str = "rsa"
    key_bits: int = 0
    signature_bits: int = 0
    use_pss: bool = False
    key_usage: list[str] = field(default_factory=_default_key_usage)
    ext_key_usage: list[str] = field(default_factory=list)
    ext_key_usage_oids: list[str] = field(default_factory=list)
    use_csr_common_name: bool = True
    use_csr_sans: bool = True
    ou: list[str] = field(default_factory=list)
    organization: list[str] = field(default_factory=list)
    country: list[str] = field(default_factory=list)
    locality: list[str] = field(default_factory=list)
    province: list[str] = field(default_factory=list)
    street_address: list[str] = field(default_factory=list)
    postal_code: list[str] = field(default_factory=list)
    generate_lease: bool = False
    no_store: bool = False
    require_cn: bool = True
    cn_validations: list[str] = field(default_factory=_default_cn_validations)
    policy_identifiers: list[str] = field(default_factory=list)
    basic_constraints_valid_for_non_ca: bool = False
    not_before_duration: Duration = Duration(30)
    not_after: str = ""
    allow_token_displayname: bool = False

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> RoleArgs:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})

    def public(self) -> dict[str, Any]:
        data = self.to_json()
        del data["name"]
        data["key_usage"] = list(self.key_usage)
        return data


def glob(pattern: str, value: str) -> bool:
    """Vault's glob: ``*`` matches any run of characters (``/`` and ``.`` included)."""
    return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]").replace("?", "[?]"))


def valid_hostname(name: str) -> bool:
    try:
        converted = name.encode("idna").decode() if not name.isascii() else name
    except UnicodeError:
        return False
    return bool(_HOSTNAME.match(converted))


def check_names(role: RoleArgs, names: list[str]) -> str | None:
    """The first name the role does not allow, or ``None``."""
    for name in names:
        if not _name_allowed(role, name):
            return name
    return None


def _name_allowed(role: RoleArgs, name: str) -> bool:
    sanitized = name
    email_domain = ""
    is_email = False
    if "@" in name:
        local, _, domain = name.rpartition("@")
        if not local or not domain:
            return False
        is_email, email_domain, sanitized = True, domain, domain
    is_wildcard = False
    if "*" in sanitized:
        if not role.allow_wildcard_certificates:
            return False
        if (
            not (sanitized.startswith("*.") and "*" not in sanitized[2:])
            and not role.allow_glob_domains
        ):
            return False
        is_wildcard = True
        if sanitized.startswith("*."):
            sanitized = sanitized[2:]
    if role.enforce_hostnames and not valid_hostname(sanitized.replace("*", "x")):
        return False
    if role.allow_any_name:
        return True
    if role.allow_localhost and (
        name in ("localhost", "localdomain") or (is_email and email_domain == "localhost")
    ):
        return True
    lowered = sanitized.lower()
    for domain in role.allowed_domains:
        if not domain:
            continue
        base = domain.lower()
        if role.allow_bare_domains and (
            name.lower() == base or (is_email and email_domain.lower() == base)
        ):
            return True
        if role.allow_subdomains and (
            lowered.endswith("." + base.lstrip("*."))
            if base.startswith("*.")
            else lowered.endswith("." + base)
        ):
            return True
        if role.allow_subdomains and is_wildcard and lowered == base:
            return True
        if role.allow_glob_domains and "*" in base and glob(base, name.lower()):
            return True
    return False


def check_cn(role: RoleArgs, common_name: str) -> None:
    validations = role.cn_validations or ["email", "hostname"]
    if "disabled" in validations or not common_name:
        return
    ok = False
    if "email" in validations and _EMAIL.match(common_name):
        ok = True
    if "hostname" in validations:
        candidate = common_name[2:] if common_name.startswith("*.") else common_name
        if valid_hostname(candidate):
            ok = True
    if not ok:
        raise InvalidRequest(
            f"common name {common_name} not allowed by this role: failed cn_validations"
        )


def check_uri_sans(role: RoleArgs, uris: list[str]) -> None:
    for uri in uris:
        if not any(glob(pattern, uri) for pattern in role.allowed_uri_sans):
            raise InvalidRequest(f"URI Subject Alternative Name {uri} not allowed by this role")


def check_other_sans(role: RoleArgs, other_sans: dict[str, str]) -> None:
    """``other_sans`` entries are ``oid;UTF8:value``; the role allows ``*`` or such globs."""
    allowed = role.allowed_other_sans
    if "*" in allowed:
        return
    for oid, value in other_sans.items():
        entry_ok = False
        for pattern in allowed:
            p_oid, _, p_rest = pattern.partition(";")
            p_type, _, p_value = p_rest.partition(":")
            if p_type.upper() not in ("UTF8", "UTF-8"):
                continue
            if (p_oid == "*" or p_oid == oid) and glob(p_value, value):
                entry_ok = True
                break
        if not entry_ok:
            raise InvalidRequest(f"other SAN {oid};UTF8:{value} not allowed by this role")


def parse_other_sans(entries: list[str]) -> dict[str, str]:
    """``["1.2.3;UTF8:v"]`` → ``{"1.2.3": "v"}``; only UTF8 values, as Vault."""
    out: dict[str, str] = {}
    for entry in entries:
        oid, sep, rest = entry.partition(";")
        kind, sep2, value = rest.partition(":")
        if not sep or not sep2 or kind.upper() not in ("UTF8", "UTF-8"):
            raise InvalidRequest(f"invalid other_sans entry {entry!r}: expected <oid>;UTF8:<value>")
        out[oid.strip()] = value
    return out
