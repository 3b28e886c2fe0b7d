"""identity/mfa/method/totp[/...] and identity/mfa/login-enforcement/<name> (Vault 1.10+)."""

from __future__ import annotations

import asyncio
import base64
import uuid
from dataclasses import dataclass, field
from typing import Any

from strongroom.core.identity._mfa import Enforcement, Method
from strongroom.core.identity._store import IdentityStore
from strongroom.errors import InvalidRequest
from strongroom.framework import Duration, NoArgs, Path, check_params, qr_png
from strongroom.logical import Operation, Request, Response

__all__ = ["MFAPaths"]

_ID = r"(?P<method_id>[0-9a-fA-F-]{1,64})"


@dataclass(frozen=True, slots=True)
class MethodArgs:
    method_id: str = ""
    method_name: str = ""
    issuer: str = ""
    period: Duration = Duration(30)
    key_size: int = 20
    qr_size: int = 200
    algorithm: str = "SHA1"
    digits: int = 6
    skew: int = 1
    max_validation_attempts: int = 5


@dataclass(frozen=True, slots=True)
class GenerateArgs:
    method_id: str = ""
    entity_id: str = ""


@dataclass(frozen=True, slots=True)
class EnforcementArgs:
    name: str
    mfa_method_ids: list[str] = field(default_factory=list)
    auth_method_accessors: list[str] = field(default_factory=list)
    auth_method_types: list[str] = field(default_factory=list)
    identity_group_ids: list[str] = field(default_factory=list)
    identity_entity_ids: list[str] = field(default_factory=list)


class MFAPaths:
    def __init__(self, store: IdentityStore) -> None:
        self.identity = store
        self.store = store.mfa

    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=r"mfa/method/totp/generate",
                args=GenerateArgs,
                operations={Operation.UPDATE: self.generate},
                synopsis="Generate a TOTP secret for the caller's entity",
            ),
            Path(
                pattern=r"mfa/method/totp/admin-generate",
                args=GenerateArgs,
                operations={Operation.UPDATE: self.admin_generate},
                synopsis="Generate a TOTP secret for an entity",
            ),
            Path(
                pattern=r"mfa/method/totp/admin-destroy",
                args=GenerateArgs,
                operations={Operation.UPDATE: self.admin_destroy},
                synopsis="Delete an entity's TOTP secret",
            ),
            Path(
                pattern=r"mfa/method/totp/?",
                args=MethodArgs,
                operations={Operation.UPDATE: self.write_method, Operation.LIST: self.list_totp},
                synopsis="Create a TOTP MFA method, or list them",
            ),
            Path(
                pattern=r"mfa/method/totp/" + _ID,
                args=MethodArgs,
                operations={
                    Operation.UPDATE: self.write_method,
                    Operation.READ: self.read_method,
                    Operation.DELETE: self.delete_method,
                },
                synopsis="Read, update or delete a TOTP MFA method",
            ),
            Path(
                pattern=r"mfa/method/?",
                operations={Operation.LIST: self.list_totp},
                synopsis="List every MFA method",
            ),
            Path(
                pattern=r"mfa/method/" + _ID,
                args=MethodArgs,
                operations={Operation.READ: self.read_method},
                synopsis="Read an MFA method",
            ),
            Path(
                pattern=r"mfa/login-enforcement/?",
                operations={Operation.LIST: self.list_enforcements},
                synopsis="List the login enforcements",
            ),
            Path(
                pattern=r"mfa/login-enforcement/(?P<name>[\w.@-]+)",
                args=EnforcementArgs,
                operations={
                    Operation.UPDATE: self.write_enforcement,
                    Operation.READ: self.read_enforcement,
                    Operation.DELETE: self.delete_enforcement,
                },
                synopsis="Manage a login enforcement",
                description=(
                    "mfa_method_ids (any one suffices) apply to logins through the listed "
                    "auth mount accessors or types, or by the listed entities or members of "
                    "the listed groups."
                ),
            ),
        ]

    # -- methods -----------------------------------------------------------------------------

    async def write_method(self, request: Request, args: MethodArgs) -> Response | None:
        existing = await self.store.method(args.method_id) if args.method_id else None
        if args.method_id and existing is None:
            raise InvalidRequest("no MFA method with that ID")
        if not args.issuer:
            raise InvalidRequest("issuer is required")
        algorithm = args.algorithm.upper()
        check_params(int(args.period), algorithm, args.digits, args.skew)
        if args.key_size <= 0:
            raise InvalidRequest("the key_size value must be greater than zero")
        if args.qr_size < 0:
            raise InvalidRequest("the qr_size value must be greater than or equal to zero")
        if args.max_validation_attempts < 0:
            raise InvalidRequest("max_validation_attempts must not be negative")
        if args.method_name:
            for other in await self.store.methods():
                if other.name == args.method_name and other.id != args.method_id:
                    raise InvalidRequest("an MFA method with that name already exists")
        method = Method(
            id=existing.id if existing else str(uuid.uuid4()),
            name=args.method_name,
            issuer=args.issuer,
            period=int(args.period),
            key_size=args.key_size,
            qr_size=args.qr_size,
            algorithm=algorithm,
            digits=args.digits,
            skew=args.skew,
            max_validation_attempts=args.max_validation_attempts or 5,
        )
        await self.store.put_method(method)
        return None if existing else Response(data={"method_id": method.id})

    async def read_method(self, request: Request, args: MethodArgs) -> Response | None:
        method = await self.store.method(args.method_id)
        return None if method is None else Response(data=method.describe())

    async def delete_method(self, request: Request, args: MethodArgs) -> Response | None:
        await self.store.delete_method(args.method_id)
        return None

    async def list_totp(self, request: Request, args: Any) -> Response | None:
        methods = await self.store.methods()
        if not methods:
            return None
        return Response(
            data={
                "keys": [m.id for m in methods],
                "key_info": {m.id: m.describe() for m in methods},
            }
        )

    # -- entity secrets ------------------------------------------------------------------------

    async def _method(self, method_id: str) -> Method:
        if not method_id:
            raise InvalidRequest("missing method ID")
        method = await self.store.method(method_id)
        if method is None:
            raise InvalidRequest("MFA method not found")
        return method

    async def _generate(self, entity_id: str, method_id: str) -> Response:
        method = await self._method(method_id)
        if not entity_id:
            raise InvalidRequest("missing entityID")
        if self.identity.entity(entity_id) is None:
            raise InvalidRequest("entity not found")
        key = await self.store.create_secret(entity_id, method)
        if key is None:
            return Response(
                warnings=[f"Entity already has a secret for MFA method {method.name!r}"]
            )
        url = key.url()
        data: dict[str, Any] = {"url": url}
        if method.qr_size > 0:
            image = await asyncio.to_thread(qr_png, url, method.qr_size)
            data["barcode"] = base64.b64encode(image).decode("ascii")
        return Response(data=data)

    async def generate(self, request: Request, args: GenerateArgs) -> Response | None:
        entity_id = request.token.entity_id if request.token is not None else ""
        return await self._generate(entity_id, args.method_id)

    async def admin_generate(self, request: Request, args: GenerateArgs) -> Response | None:
        return await self._generate(args.entity_id, args.method_id)

    async def admin_destroy(self, request: Request, args: GenerateArgs) -> Response | None:
        await self._method(args.method_id)
        if not args.entity_id:
            raise InvalidRequest("missing entityID")
        await self.store.destroy_secret(args.entity_id, args.method_id)
        return None

    # -- login enforcements --------------------------------------------------------------------

    async def write_enforcement(self, request: Request, args: EnforcementArgs) -> Response | None:
        if not args.mfa_method_ids:
            raise InvalidRequest("missing method ids")
        if not (
            args.auth_method_accessors
            or args.auth_method_types
            or args.identity_group_ids
            or args.identity_entity_ids
        ):
            raise InvalidRequest(
                "One of auth_method_accessors, auth_method_types, identity_group_ids, "
                "identity_entity_ids must be specified"
            )
        for method_id in args.mfa_method_ids:
            if await self.store.method(method_id) is None:
                raise InvalidRequest("one of the provided method ids doesn't exist")
        for group_id in args.identity_group_ids:
            if self.identity.group(group_id) is None:
                raise InvalidRequest(f"identity group {group_id!r} not found")
        for entity_id in args.identity_entity_ids:
            if self.identity.entity(entity_id) is None:
                raise InvalidRequest(f"identity entity {entity_id!r} not found")
        existing = await self.store.enforcement(args.name)
        await self.store.put_enforcement(
            Enforcement(
                id=existing.id if existing else str(uuid.uuid4()),
                name=args.name,
                mfa_method_ids=tuple(args.mfa_method_ids),
                auth_method_accessors=tuple(args.auth_method_accessors),
                auth_method_types=tuple(args.auth_method_types),
                identity_group_ids=tuple(args.identity_group_ids),
                identity_entity_ids=tuple(args.identity_entity_ids),
            )
        )
        return None

    async def read_enforcement(self, request: Request, args: EnforcementArgs) -> Response | None:
        enforcement = await self.store.enforcement(args.name)
        return None if enforcement is None else Response(data=enforcement.describe())

    async def delete_enforcement(self, request: Request, args: EnforcementArgs) -> Response | None:
        await self.store.delete_enforcement(args.name)
        return None

    async def list_enforcements(self, request: Request, args: NoArgs) -> Response | None:
        names = [e.name for e in await self.store.enforcements()]
        return Response(data={"keys": names}) if names else None
