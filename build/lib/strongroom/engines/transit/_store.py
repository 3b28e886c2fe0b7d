"""The key store: one in-memory :class:`~._crypto.LoadedKey` per name over ``policy/<name>``.

Reads (encrypt, sign, …) take the cached snapshot without a lock: a request never decodes the
stored record. Every change (create, rotate, config, trim, import, restore, delete) runs under
the key's lock, re-reads the current snapshot, persists the new record and only then replaces
the cache entry, so a failed write leaves the cache as storage has it. Loads also run under
the lock, so a slow load can never put back a snapshot older than a concurrent change.

The cache is per process and sees only this process's writes, which is all a single active
node needs (standbys forward writes). Vault's ``cache-config`` size is stored and reported but
the cache is unbounded: every key ever used stays decoded, as Vault's default (size 0) does.

Automatic rotation: each cached key knows when it is due (``rotate_at``); a request that
finds its key due rotates it first, and :meth:`KeyStore.rotate_due_keys` (run periodically by
the backend) rotates keys nobody is using.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
from collections.abc import AsyncIterator

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from strongroom.engines.transit._crypto import LoadedKey
from strongroom.engines.transit._policy import (
    POLICY_PREFIX,
    KeyPolicy,
    KeyTypeSpec,
    KeyVersion,
    b64,
    generate_version,
    policy_key,
)
from strongroom.errors import InternalError, InvalidRequest
from strongroom.framework import KeyLocks, get_json, put_json
from strongroom.logical import Storage, SystemView

__all__ = ["WRAPPING_KEY_PATH", "KeyStore", "new_version"]

# Vault keeps the BYOK wrapping key as a policy under the "import/" storage prefix
WRAPPING_KEY_PATH = "import/policy/wrapping-key"
_WRAPPING_LOCK = "\x00wrapping-key"  # not a valid key name, so never a key's lock


async def new_version(
    spec: KeyTypeSpec, created_ns: int, *, key_size: int = 0, convergent: bool = False
) -> KeyVersion:
    """Generate a version; RSA key generation takes a thread so the loop keeps serving."""
    if spec.family == "rsa":
        return await asyncio.to_thread(
            generate_version, spec, created_ns, key_size=key_size, convergent=convergent
        )
    return generate_version(spec, created_ns, key_size=key_size, convergent=convergent)


class KeyStore:
    """Named keys in one mount's storage view, cached decoded."""

    def __init__(self, storage: Storage, system: SystemView) -> None:
        self.storage = storage
        self.system = system
        self.locks = KeyLocks()
        self._cache: dict[str, LoadedKey] = {}
        self._wrapping: rsa.RSAPrivateKey | None = None

    def __repr__(self) -> str:
        return f"KeyStore(cached={len(self._cache)})"

    def forget(self, storage_key: str) -> None:
        """Drop the cached key stored at ``storage_key`` (``policy/<name>``), if any."""
        if storage_key.startswith(POLICY_PREFIX):
            self._cache.pop(storage_key[len(POLICY_PREFIX) :], None)

    def now_ns(self) -> int:
        return round(self.system.now() * 1e9)

    # ---- reads -----------------------------------------------------------------------------

    async def get(self, name: str) -> LoadedKey | None:
        """The current key, rotated first if its automatic rotation is due."""
        key = self._cache.get(name)
        if key is None:
            async with self.locks.hold(name):
                key = await self._load_locked(name)
            if key is None:
                return None
        if key.rotate_at <= self.system.now():
            key = await self._rotate_if_due(name) or key
        return key

    async def _load_locked(self, name: str) -> LoadedKey | None:
        key = self._cache.get(name)
        if key is not None:
            return key
        raw = await get_json(self.storage, policy_key(name))
        if raw is None:
            return None
        key = self._cache[name] = LoadedKey(KeyPolicy.from_json(raw))
        return key

    async def names(self) -> list[str]:
        return [n for n in await self.storage.list(POLICY_PREFIX) if not n.endswith("/")]

    # ---- changes (callers hold the key's lock via ``locked``) --------------------------------

    @contextlib.asynccontextmanager
    async def locked(self, name: str) -> AsyncIterator[LoadedKey | None]:
        """Hold the key's lock; yields the current snapshot (None if there is no such key)."""
        async with self.locks.hold(name):
            yield await self._load_locked(name)

    async def save(self, policy: KeyPolicy) -> LoadedKey:
        await put_json(self.storage, policy_key(policy.name), policy.to_json())
        key = self._cache[policy.name] = LoadedKey(policy)
        return key

    async def remove(self, name: str) -> None:
        await self.storage.delete(policy_key(name))
        self._cache.pop(name, None)

    async def rotated(self, policy: KeyPolicy) -> KeyPolicy:
        """The policy with one more, freshly generated, version (Vault's ``Rotate``)."""
        if policy.imported and not policy.allow_imported_key_rotation:
            raise InvalidRequest(f"imported key {policy.name} does not allow rotation within Vault")
        entry = await new_version(
            policy.spec,
            self.now_ns(),
            key_size=policy.key_size,
            convergent=policy.convergent_encryption,
        )
        # once rotated within the engine, an imported key takes no more imported versions
        return dataclasses.replace(
            policy.with_version(policy.latest_version + 1, entry), imported=False
        )

    # ---- automatic rotation ------------------------------------------------------------------

    async def _rotate_if_due(self, name: str) -> LoadedKey | None:
        async with self.locked(name) as key:
            if key is None or key.rotate_at > self.system.now():
                return key
            return await self.save(await self.rotated(key.policy))

    async def rotate_due_keys(self) -> list[str]:
        """Rotate every key whose ``auto_rotate_period`` has elapsed; returns their names."""
        rotated: list[str] = []
        for name in await self.names():
            key = self._cache.get(name)
            if key is None:
                async with self.locks.hold(name):
                    key = await self._load_locked(name)
            if key is not None and key.rotate_at <= self.system.now():
                await self._rotate_if_due(name)
                rotated.append(name)
        return rotated

    # ---- BYOK wrapping key -----------------------------------------------------------------

    async def wrapping_key(self) -> rsa.RSAPrivateKey:
        """The mount's RSA-4096 import wrapping key, generated on first use and kept."""
        if self._wrapping is not None:
            return self._wrapping
        async with self.locks.hold(_WRAPPING_LOCK):
            if self._wrapping is not None:
                return self._wrapping
            raw = await get_json(self.storage, WRAPPING_KEY_PATH)
            if raw is None:
                private = await asyncio.to_thread(rsa.generate_private_key, 65537, 4096)
                der = private.private_bytes(
                    serialization.Encoding.DER,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
                record = {"type": "rsa-4096", "key": b64(der), "time": self.now_ns()}
                await put_json(self.storage, WRAPPING_KEY_PATH, record)
            else:
                loaded = serialization.load_der_private_key(
                    base64.b64decode(str(raw["key"])), password=None
                )
                if not isinstance(loaded, rsa.RSAPrivateKey):
                    raise InternalError("transit: stored wrapping key is not an RSA key")
                private = loaded
            self._wrapping = private
            return private
