"""config/ca (the signing key pair), public_key (unauthenticated), config/zeroaddress and
tidy/dynamic-keys (Vault's cleanup of the host keys of the removed dynamic-key roles: an
older mount's ``keys/`` entries are deleted; this engine never writes any)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson

from strongroom.engines.ssh._keys import CAKey, generate_key
from strongroom.engines.ssh._records import CA_KEY, ZEROADDRESS, load_role, storage_of
from strongroom.errors import InvalidRequest
from strongroom.framework import NoArgs, Path, parse_str_list
from strongroom.logical import Operation, Request, Response, Storage

__all__ = ["CAStore", "ConfigPaths"]

_NOT_CONFIGURED = "keys haven't been configured yet"
_HOST_KEYS = "keys/"  # where Vault's dynamic-key roles kept their host keys


class CAStore:
    """Loads the CA key, keeping the parsed key for as long as the stored bytes match."""

    def __init__(self) -> None:
        self._cached: tuple[bytes, CAKey] | None = None
        self.lock = asyncio.Lock()

    async def get(self, storage: Storage) -> CAKey | None:
        raw = await storage.get(CA_KEY)
        if raw is None:
            return None
        cached = self._cached
        if cached is not None and cached[0] == raw:
            return cached[1]
        key = CAKey.loaded(raw)
        self._cached = (raw, key)
        return key

    async def require(self, storage: Storage) -> CAKey:
        key = await self.get(storage)
        if key is None:
            raise InvalidRequest(_NOT_CONFIGURED)
        return key


@dataclass(frozen=True, slots=True)
class CAArgs:
    private_key: str = ""
    public_key: str = ""
    generate_signing_key: bool | None = None
    key_type: str = "ssh-rsa"
    key_bits: int = 0


@dataclass(frozen=True, slots=True)
class ZeroAddressArgs:
    roles: Any = None


class ConfigPaths:
    def __init__(self, ca: CAStore) -> None:
        self.ca = ca

    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=r"public_key",
                operations={Operation.READ: self.public_key},
                synopsis="The CA public key (unauthenticated)",
                description="text/plain: the line for sshd's TrustedUserCAKeys.",
            ),
            Path(
                pattern=r"config/ca",
                args=CAArgs,
                operations={
                    Operation.UPDATE: self.write_ca,
                    Operation.READ: self.read_ca,
                    Operation.DELETE: self.delete_ca,
                },
                synopsis="Set, read or delete the CA key pair",
                description=(
                    "Generate a key pair (generate_signing_key, key_type, key_bits) or import "
                    "private_key and public_key. Refused while one is configured."
                ),
            ),
            Path(
                pattern=r"config/zeroaddress",
                args=ZeroAddressArgs,
                operations={
                    Operation.UPDATE: self.write_zero,
                    Operation.READ: self.read_zero,
                    Operation.DELETE: self.delete_zero,
                },
                synopsis="Roles that give OTPs for any IP address",
            ),
            Path(
                pattern=r"tidy/dynamic-keys",
                args=NoArgs,
                operations={Operation.DELETE: self.tidy_dynamic_keys},
                synopsis="Remove host keys left by the removed dynamic-key roles",
            ),
        ]

    async def public_key(self, request: Request, args: NoArgs) -> Response | None:
        key = await self.ca.require(storage_of(request))
        return Response(raw_body=key.public_key.encode("ascii"), content_type="text/plain")

    async def read_ca(self, request: Request, args: CAArgs) -> Response | None:
        key = await self.ca.require(storage_of(request))
        return Response(data={"public_key": key.public_key})

    async def write_ca(self, request: Request, args: CAArgs) -> Response | None:
        storage = storage_of(request)
        imported = bool(args.private_key or args.public_key)
        if imported and args.generate_signing_key:
            raise InvalidRequest(
                "generate_signing_key cannot be true when private_key or public_key is given"
            )
        if imported:
            if not args.public_key:
                raise InvalidRequest("missing public_key")
            if not args.private_key:
                raise InvalidRequest("missing private_key")
            key = CAKey.imported(args.private_key, args.public_key)
        elif args.generate_signing_key is False:
            raise InvalidRequest("missing public_key")
        else:
            # RSA key generation takes seconds: off the event loop
            key = CAKey(await asyncio.to_thread(generate_key, args.key_type, args.key_bits))
        async with self.ca.lock:
            if await storage.get(CA_KEY) is not None:
                raise InvalidRequest(
                    "keys are already configured; delete them before reconfiguring"
                )
            await storage.put(CA_KEY, key.pem())
        return None if imported else Response(data={"public_key": key.public_key})

    async def delete_ca(self, request: Request, args: CAArgs) -> Response | None:
        await storage_of(request).delete(CA_KEY)
        return None

    async def read_zero(self, request: Request, args: ZeroAddressArgs) -> Response | None:
        raw = await storage_of(request).get(ZEROADDRESS)
        return None if raw is None else Response(data={"roles": orjson.loads(raw)})

    async def write_zero(self, request: Request, args: ZeroAddressArgs) -> Response | None:
        storage = storage_of(request)
        roles = parse_str_list(args.roles, "roles")
        if not roles:
            raise InvalidRequest("Missing roles")
        for name in roles:
            if await load_role(storage, name) is None:
                raise InvalidRequest(f"Role {name!r} does not exist")
        await storage.put(ZEROADDRESS, orjson.dumps(sorted(set(roles))))
        return None

    async def delete_zero(self, request: Request, args: ZeroAddressArgs) -> Response | None:
        await storage_of(request).delete(ZEROADDRESS)
        return None

    async def tidy_dynamic_keys(self, request: Request, args: NoArgs) -> Response:
        storage = storage_of(request)
        names = await storage.list(_HOST_KEYS)
        removed = 0
        for name in names:
            if not name.endswith("/"):
                await storage.delete(_HOST_KEYS + name)
                removed += 1
        return Response(data={"message": f"Removed {removed} of {len(names)} host keys."})
