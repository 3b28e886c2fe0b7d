"""roles/: CA roles (what ``sign/`` and ``issue/`` may put in a certificate) and OTP roles
(who ``creds/`` hands one-time passwords to, for which hosts)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from strongroom.engines.ssh._keys import normalise_key_lengths
from strongroom.engines.ssh._records import (
    ROLE_PREFIX,
    ZEROADDRESS,
    Role,
    check_template,
    load_role,
    parse_cidrs,
    save_role,
    storage_of,
)
from strongroom.errors import InvalidRequest
from strongroom.framework import Duration, NoArgs, Path
from strongroom.logical import Operation, Request, Response

__all__ = ["NAME", "RolesPaths"]

NAME = r"(?P<name>\w(?:[\w.@-]*\w)?)"
ALGORITHM_SIGNERS = ("", "default", "rsa-sha2-256", "rsa-sha2-512")


@dataclass(frozen=True, slots=True)
class RoleArgs:
    name: str
    key_type: str = ""
    default_user: str = ""
    default_user_template: bool = False
    cidr_list: str = ""
    exclude_cidr_list: str = ""
    port: int = 22
    allowed_users: str = ""
    allowed_users_template: bool = False
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
    ttl: Duration = Duration(0)
    max_ttl: Duration = Duration(0)
    not_before_duration: Duration = Duration(30)
    algorithm_signer: str = "default"
    allowed_user_key_lengths: dict[str, Any] = field(default_factory=dict)
    key_id_format: str = ""


def _build_role(args: RoleArgs) -> Role:
    if not args.key_type:
        raise InvalidRequest("missing key type")
    key_type = args.key_type.lower()
    if key_type == "dynamic":
        raise InvalidRequest("dynamic key type roles are not supported (removed in Vault 1.13)")
    if key_type == "otp":
        if not args.default_user:
            raise InvalidRequest("missing default user")
        parse_cidrs(args.cidr_list, "cidr_list")
        parse_cidrs(args.exclude_cidr_list, "exclude_cidr_list")
        if not 0 < args.port < 65536:
            raise InvalidRequest("port must be between 1 and 65535")
        return Role(
            key_type="otp",
            default_user=args.default_user,
            cidr_list=args.cidr_list,
            exclude_cidr_list=args.exclude_cidr_list,
            port=args.port,
            allowed_users=args.allowed_users,
        )
    if key_type != "ca":
        raise InvalidRequest("invalid key type")
    if not args.allow_user_certificates and not args.allow_host_certificates:
        raise InvalidRequest(
            "Either 'allow_user_certificates' or 'allow_host_certificates' must be set to 'true'"
        )
    if args.max_ttl and args.ttl > args.max_ttl:
        raise InvalidRequest("ttl should be shorter than max ttl")
    if args.algorithm_signer not in ALGORITHM_SIGNERS:
        raise InvalidRequest(
            f"unsupported algorithm_signer {args.algorithm_signer!r}: one of 'default', "
            "'rsa-sha2-256' or 'rsa-sha2-512' (the SHA-1 'ssh-rsa' is refused)"
        )
    if args.allowed_users_template:
        check_template(args.allowed_users, "allowed_users")
    if args.default_user_template:
        check_template(args.default_user, "default_user")
    if args.allowed_domains_template:
        check_template(args.allowed_domains, "allowed_domains")
    if args.default_extensions_template:
        for value in args.default_extensions.values():
            check_template(value, "default_extensions")
    return Role(
        key_type="ca",
        default_user=args.default_user,
        allowed_users=args.allowed_users,
        allowed_users_template=args.allowed_users_template,
        default_user_template=args.default_user_template,
        allowed_domains=args.allowed_domains,
        allowed_domains_template=args.allowed_domains_template,
        allow_subdomains=args.allow_subdomains,
        allow_bare_domains=args.allow_bare_domains,
        allow_user_certificates=args.allow_user_certificates,
        allow_host_certificates=args.allow_host_certificates,
        allow_user_key_ids=args.allow_user_key_ids,
        allow_empty_principals=args.allow_empty_principals,
        allowed_extensions=args.allowed_extensions,
        default_extensions=dict(args.default_extensions),
        default_extensions_template=args.default_extensions_template,
        allowed_critical_options=args.allowed_critical_options,
        default_critical_options=dict(args.default_critical_options),
        ttl=int(args.ttl),
        max_ttl=int(args.max_ttl),
        not_before_duration=int(args.not_before_duration),
        algorithm_signer=args.algorithm_signer or "default",
        allowed_user_key_lengths=normalise_key_lengths(args.allowed_user_key_lengths),
        key_id_format=args.key_id_format,
    )


class RolesPaths:
    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=r"roles/?",
                operations={Operation.LIST: self.list_roles},
                synopsis="List the roles",
                description="LIST answers the role names and, in key_info, each role's key_type.",
            ),
            Path(
                pattern=r"roles/" + NAME,
                args=RoleArgs,
                operations={
                    Operation.UPDATE: self.write,
                    Operation.READ: self.read,
                    Operation.DELETE: self.delete,
                },
                synopsis="Manage a role",
                description=(
                    "key_type ca: what sign/ and issue/ may certify; key_type otp: whom "
                    "creds/ gives one-time passwords for which hosts."
                ),
            ),
        ]

    async def list_roles(self, request: Request, args: NoArgs) -> Response | None:
        storage = storage_of(request)
        names = await storage.list(ROLE_PREFIX)
        if not names:
            return None
        info: dict[str, Any] = {}
        for name in names:
            role = await load_role(storage, name)
            if role is not None:
                info[name] = {"key_type": role.key_type}
        return Response(data={"keys": names, "key_info": info})

    async def read(self, request: Request, args: RoleArgs) -> Response | None:
        role = await load_role(storage_of(request), args.name)
        return None if role is None else Response(data=role.describe())

    async def write(self, request: Request, args: RoleArgs) -> Response | None:
        await save_role(storage_of(request), args.name, _build_role(args))
        return None

    async def delete(self, request: Request, args: RoleArgs) -> Response | None:
        storage = storage_of(request)
        await storage.delete(ROLE_PREFIX + args.name)
        # a deleted role leaves the zero-address list too, as in Vault
        raw = await storage.get(ZEROADDRESS)
        if raw is not None:
            roles = [r for r in orjson.loads(raw) if r != args.name]
            await storage.put(ZEROADDRESS, orjson.dumps(roles))
        return None
