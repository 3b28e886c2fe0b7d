"""Vault's OTP mode: creds/<role> hands out a one-time password for a user on a host;
verify (unauthenticated, called by vault-ssh-helper on the host) consumes it exactly once;
lookup lists the OTP roles that cover an IP address.

An OTP is stored only as its SHA-256 (``otp/<hex>``): the random UUID has 122 bits, so a
plain hash suffices and the storage never holds a usable password. Each OTP is a lease;
revoking the lease deletes it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import uuid
from dataclasses import dataclass

import orjson

from strongroom.engines.ssh._records import (
    OTP_PREFIX,
    ROLE_PREFIX,
    ZEROADDRESS,
    Role,
    load_role,
    parse_cidrs,
    storage_of,
)
from strongroom.engines.ssh.roles import NAME
from strongroom.errors import InvalidRequest, StorageConflict
from strongroom.framework import KeyLocks, Path, SecretType
from strongroom.logical import Operation, Request, Response, Secret, Storage, StorageOp

__all__ = ["OTP_SECRET", "OtpPaths"]

OTP_SECRET = "secret_otp_type"  # noqa: S105 (Vault's secret type name)
ECHO_REQUEST = "verify-echo-request"


@dataclass(frozen=True, slots=True)
class CredsArgs:
    name: str
    username: str = ""
    ip: str = ""


@dataclass(frozen=True, slots=True)
class VerifyArgs:
    otp: str = ""


@dataclass(frozen=True, slots=True)
class LookupArgs:
    ip: str = ""


def _otp_key(otp: str) -> str:
    return OTP_PREFIX + hashlib.sha256(otp.encode()).hexdigest()


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if not text:
        raise InvalidRequest("Missing ip")
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        raise InvalidRequest("Invalid IP") from None


async def _zero_roles(storage: Storage) -> list[str]:
    raw = await storage.get(ZEROADDRESS)
    return [] if raw is None else list(orjson.loads(raw))


def _covers(role: Role, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    inside = any(ip in net for net in parse_cidrs(role.cidr_list, "cidr_list"))
    excluded = any(ip in net for net in parse_cidrs(role.exclude_cidr_list, "exclude_cidr_list"))
    return inside and not excluded


class OtpPaths:
    def __init__(self) -> None:
        self._locks = KeyLocks()

    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=r"creds/" + NAME,
                args=CredsArgs,
                operations={Operation.UPDATE: self.creds},
                synopsis="Create a one-time password for a user on a host",
            ),
            Path(
                pattern=r"verify",
                args=VerifyArgs,
                operations={Operation.UPDATE: self.verify},
                synopsis="Consume a one-time password (unauthenticated)",
            ),
            Path(
                pattern=r"lookup",
                args=LookupArgs,
                operations={Operation.UPDATE: self.lookup},
                synopsis="List the roles that cover an IP address",
            ),
        ]

    def secret_types(self) -> dict[str, SecretType]:
        return {OTP_SECRET: SecretType(revoke=self._revoke)}

    async def creds(self, request: Request, args: CredsArgs) -> Response | None:
        storage = storage_of(request)
        role = await load_role(storage, args.name)
        if role is None:
            raise InvalidRequest(f"Role {args.name!r} not found")
        if role.key_type != "otp":
            raise InvalidRequest(f"role {args.name!r} has key_type {role.key_type!r}, not 'otp'")
        username = args.username or role.default_user
        allowed = {u.strip() for u in role.allowed_users.split(",") if u.strip()}
        if username != role.default_user and "*" not in allowed and username not in allowed:
            raise InvalidRequest(
                "Username has to be either in allowed users list or has to be a default username"
            )
        ip = _parse_ip(args.ip)
        if args.name not in await _zero_roles(storage) and not _covers(role, ip):
            raise InvalidRequest("Error validating IP: IP does not belong to role")
        otp = str(uuid.uuid4())
        record = {"username": username, "ip": str(ip), "role_name": args.name}
        await storage.put(_otp_key(otp), orjson.dumps(record))
        return Response(
            data={
                "ip": str(ip),
                "key": otp,
                "key_type": "otp",
                "port": role.port,
                "username": username,
            },
            secret=Secret(
                type=OTP_SECRET,
                internal_data={"otp_key": _otp_key(otp)},
            ),
        )

    async def verify(self, request: Request, args: VerifyArgs) -> Response | None:
        if not args.otp:
            raise InvalidRequest("Missing otp")
        if args.otp == ECHO_REQUEST:
            return Response(data={"message": "verify-echo-response"})
        storage = storage_of(request)
        key = _otp_key(args.otp)
        # single use: read and delete under a per-key lock, the delete guarded on the value
        # read, so two verifications (on this node or another) cannot both succeed
        async with self._locks.hold(key):
            raw = await storage.get(key)
            if raw is None:
                raise InvalidRequest("OTP not found")
            try:
                await storage.transaction([StorageOp(key, raw, check=True), StorageOp(key)])
            except StorageConflict:
                raise InvalidRequest("OTP not found") from None
        record = orjson.loads(raw)
        return Response(
            data={
                "ip": record["ip"],
                "role_name": record["role_name"],
                "username": record["username"],
            }
        )

    async def lookup(self, request: Request, args: LookupArgs) -> Response | None:
        storage = storage_of(request)
        ip = _parse_ip(args.ip)
        found = set(await _zero_roles(storage))
        for name in await storage.list(ROLE_PREFIX):
            role = await load_role(storage, name)
            if role is not None and role.key_type == "otp" and _covers(role, ip):
                found.add(name)
        return Response(data={"roles": sorted(found)})

    async def _revoke(self, request: Request) -> None:
        secret = request.secret
        key = secret.internal_data.get("otp_key") if secret is not None else None
        if isinstance(key, str) and key.startswith(OTP_PREFIX):
            await storage_of(request).delete(key)
