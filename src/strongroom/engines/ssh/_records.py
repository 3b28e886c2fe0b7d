"""The records of an SSH mount: roles (``roles/<name>``), the CA key (``config/ca_private_key``),
zero-address roles (``config/zeroaddress``) and issued OTPs (``otp/<sha256>``)."""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from strongroom.errors import InternalError, InvalidRequest
from strongroom.logical import Request, Storage, SystemView

__all__ = [
    "CA_KEY",
    "OTP_PREFIX",
    "ROLE_PREFIX",
    "ZEROADDRESS",
    "Role",
    "check_template",
    "load_role",
    "parse_cidrs",
    "render_template",
    "save_role",
    "storage_of",
]

ROLE_PREFIX = "roles/"
CA_KEY = "config/ca_private_key"
ZEROADDRESS = "config/zeroaddress"
OTP_PREFIX = "otp/"


def storage_of(request: Request) -> Storage:
    if request.storage is None:
        raise InternalError("request carries no storage view")
    return request.storage


@dataclass(frozen=True, slots=True)
class Role:
    """A role of either kind; fields of the other kind keep their defaults."""

    key_type: str
    # otp
    default_user: str = ""
    cidr_list: str = ""
    exclude_cidr_list: str = ""
    port: int = 22
    allowed_users: str = ""
    # ca
    allowed_users_template: bool = False
    default_user_template: bool = False
    allowed_domains: str = ""
    allowed_domains_template: bool = False
    allow_subdomains: bool = False
    allow_bare_domains: bool = False
    allow_user_certificates: bool = False
    allow_host_certificates: bool = False
    allow_user_key_ids: bool = False
    allow_empty_principals: bool = False
    allowed_extensions: str = ""
    default_extensions: dict[str, str] = field(default_factory=dict)
    default_extensions_template: bool = False
    allowed_critical_options: str = ""
    default_critical_options: dict[str, str] = field(default_factory=dict)
    ttl: int = 0
    max_ttl: int = 0
    not_before_duration: int = 30
    algorithm_signer: str = "default"
    allowed_user_key_lengths: dict[str, list[int]] = field(default_factory=dict)
    key_id_format: str = ""

    def describe(self) -> dict[str, Any]:
        """What GET roles/<name> answers, per key type, as Vault."""
        if self.key_type == "otp":
            return {
                "allowed_users": self.allowed_users,
                "cidr_list": self.cidr_list,
                "default_user": self.default_user,
                "exclude_cidr_list": self.exclude_cidr_list,
                "key_type": "otp",
                "port": self.port,
            }
        out = dataclasses.asdict(self)
        for name in ("cidr_list", "exclude_cidr_list", "port"):
            del out[name]
        return dict(sorted(out.items()))


async def load_role(storage: Storage, name: str) -> Role | None:
    raw = await storage.get(ROLE_PREFIX + name)
    return None if raw is None else Role(**orjson.loads(raw))


async def save_role(storage: Storage, name: str, role: Role) -> None:
    await storage.put(ROLE_PREFIX + name, orjson.dumps(dataclasses.asdict(role)))


def parse_cidrs(text: str, name: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    out = []
    for part in text.split(","):
        if part.strip():
            try:
                out.append(ipaddress.ip_network(part.strip(), strict=False))
            except ValueError:
                raise InvalidRequest(f"failed to validate {name}: invalid CIDR block") from None
    return out


# Placeholders are filled by core's ACL templating (SystemView.identity_template); a role
# may name only identity selectors.
_TEMPLATE = re.compile(r"\{\{\s*([^{}\s]+)\s*\}\}")


def check_template(text: str, what: str) -> None:
    for selector in _TEMPLATE.findall(text):
        if not selector.startswith(("identity.entity.", "identity.groups.")):
            raise InvalidRequest(
                f"{what}: template selector {selector!r} is not supported "
                "(identity.entity.* and identity.groups.* selectors)"
            )


def render_template(system: SystemView, text: str, entity_id: str) -> str | None:
    """The template filled for the caller, or None when a placeholder has no value."""
    return system.identity_template(text, entity_id)
