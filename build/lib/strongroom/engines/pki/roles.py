"""``roles/`` LIST and ``roles/:name`` read / write / patch / delete."""

from __future__ import annotations

import dataclasses

from strongroom.engines.pki._build import ext_key_usages, key_usage_extension
from strongroom.engines.pki._crypto import key_spec
from strongroom.engines.pki._role import RoleArgs
from strongroom.engines.pki._store import PKIStore
from strongroom.errors import InvalidRequest
from strongroom.framework import NoArgs, Path
from strongroom.logical import Operation, Request, Response

__all__ = ["RolesPaths"]


def _validate(role: RoleArgs) -> None:
    key_spec(role.key_type, role.key_bits, allow_any=True)
    if role.signature_bits not in (0, 256, 384, 512):
        raise InvalidRequest(f"unsupported signature_bits: {role.signature_bits}")
    if role.max_ttl and role.ttl > role.max_ttl:
        raise InvalidRequest('"ttl" value must be less than "max_ttl" value')
    for validation in role.cn_validations:
        if validation not in ("email", "hostname", "disabled"):
            raise InvalidRequest(f"unknown cn_validations value: {validation}")
    key_usage_extension(role.key_usage, is_ca=False)  # unknown names → 400 now, not at issue
    ext_key_usages(role.ext_key_usage, role.ext_key_usage_oids)
    if "disabled" in role.cn_validations and len(role.cn_validations) > 1:
        raise InvalidRequest('cn_validations: "disabled" cannot be combined with other values')


class RolesPaths:
    def __init__(self, store: PKIStore) -> None:
        self.store = store

    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=r"roles/?",
                args=NoArgs,
                operations={Operation.LIST: self.list},
                synopsis="List the roles",
            ),
            Path(
                pattern=r"roles/(?P<name>[^/]+)",
                args=RoleArgs,
                operations={
                    Operation.READ: self.read,
                    Operation.UPDATE: self.write,
                    Operation.PATCH: self.patch,
                    Operation.DELETE: self.delete,
                },
                existence_check=self.exists,
                synopsis="Manage a role",
                description="Fields as Vault's PKI roles; a write replaces every field.",
            ),
        ]

    async def exists(self, request: Request, args: RoleArgs) -> bool:
        return await self.store.role(args.name) is not None

    async def list(self, request: Request, args: NoArgs) -> Response:
        return Response(data={"keys": await self.store.role_names()})

    async def read(self, request: Request, args: RoleArgs) -> Response | None:
        raw = await self.store.role(args.name)
        if raw is None:
            return None
        return Response(data=RoleArgs.from_json(raw).public())

    async def write(self, request: Request, args: RoleArgs) -> Response:
        role = args
        if role.key_type == "ec" and "key_bits" not in request.data:
            role = dataclasses.replace(role, key_bits=256)
        elif role.key_type == "rsa" and not role.key_bits:
            role = dataclasses.replace(role, key_bits=2048)
        _validate(role)
        async with self.store.locks.hold(f"role/{role.name}"):
            await self.store.put_role(role.name, role.to_json())
        return Response(data=role.public())

    async def patch(self, request: Request, args: RoleArgs) -> Response:
        async with self.store.locks.hold(f"role/{args.name}"):
            raw = await self.store.role(args.name)
            if raw is None:
                raise InvalidRequest(f"unknown role: {args.name}")
            current = RoleArgs.from_json(raw)
            changes = {
                f.name: getattr(args, f.name)
                for f in dataclasses.fields(RoleArgs)
                if f.name in request.data
            }
            role = dataclasses.replace(current, **changes)
            _validate(role)
            await self.store.put_role(role.name, role.to_json())
        return Response(data=role.public())

    async def delete(self, request: Request, args: RoleArgs) -> None:
        await self.store.delete_role(args.name)
