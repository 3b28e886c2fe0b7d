"""Login MFA records (Vault 1.10+): TOTP methods, login enforcements, each entity's TOTP
secrets, the used time steps, pending MFA logins and MFA failure counters.

Everything is read from storage on use (never cached in process), so a method or an
enforcement written through one node applies on every node at once: a stale cache here
would be an MFA bypass. Keys, below the identity view (``sys/identity/``)::

    mfa/method/<method id>               {"id", "name", "issuer", "period", ...}
    mfa/enforcement/<name>               {"id", "name", "mfa_method_ids", "auth_method_*", ...}
    mfa/secret/<entity id>/<method id>   the entity's TOTP key (base32) for that method
    mfa/used/<entity id>/<method id>     time steps already used (replay protection)
    mfa/pending/<sha256(request id)>     a login waiting for sys/mfa/validate
    mfa/failures/<accessor>/<sha256(alias)>  MFA failures counted towards the user lockout

The request ID of a pending login is a bearer secret until validated: only its SHA-256 is
stored. Secrets never appear in a repr or an error message.
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

from strongroom.errors import InvalidRequest, StorageConflict
from strongroom.framework import KeyLocks, TotpKey, UsedSteps, b32_secret, decode_b32
from strongroom.logical import Auth, Storage, StorageOp

__all__ = ["Enforcement", "MFAStore", "Method", "PendingLogin"]

_METHOD = "mfa/method/"
_ENFORCEMENT = "mfa/enforcement/"
_SECRET = "mfa/secret/"  # noqa: S105 (a storage prefix)
_USED = "mfa/used/"
_PENDING = "mfa/pending/"
_FAILURES = "mfa/failures/"
# the identity store's entity records, in the same view (_store.ENTITY_PREFIX)
ENTITY_RECORD = "entity/"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Method:
    """A TOTP MFA method: the parameters every entity's secret for it is generated with."""

    id: str
    name: str = ""
    issuer: str = ""
    period: int = 30
    key_size: int = 20
    qr_size: int = 200
    algorithm: str = "SHA1"
    digits: int = 6
    skew: int = 1
    max_validation_attempts: int = 5

    def describe(self) -> dict[str, Any]:
        return {
            "algorithm": self.algorithm,
            "digits": self.digits,
            "id": self.id,
            "issuer": self.issuer,
            "key_size": self.key_size,
            "max_validation_attempts": self.max_validation_attempts,
            "name": self.name,
            "namespace_id": "root",
            "namespace_path": "",
            "period": self.period,
            "qr_size": self.qr_size,
            "skew": self.skew,
            "type": "totp",
        }


@dataclass(frozen=True, slots=True)
class Enforcement:
    id: str
    name: str
    mfa_method_ids: tuple[str, ...]
    auth_method_accessors: tuple[str, ...] = ()
    auth_method_types: tuple[str, ...] = ()
    identity_group_ids: tuple[str, ...] = ()
    identity_entity_ids: tuple[str, ...] = ()

    def describe(self) -> dict[str, Any]:
        return {
            "auth_method_accessors": list(self.auth_method_accessors),
            "auth_method_types": list(self.auth_method_types),
            "id": self.id,
            "identity_entity_ids": list(self.identity_entity_ids),
            "identity_group_ids": list(self.identity_group_ids),
            "mfa_method_ids": list(self.mfa_method_ids),
            "name": self.name,
            "namespace_id": "root",
            "namespace_path": "",
        }

    def applies(self, accessor: str, mount_type: str, entity_id: str, group_ids: set[str]) -> bool:
        """Vault ORs the criteria: any one of them matching brings the login under it."""
        return (
            accessor in self.auth_method_accessors
            or mount_type in self.auth_method_types
            or (bool(entity_id) and entity_id in self.identity_entity_ids)
            or bool(group_ids.intersection(self.identity_group_ids))
        )


@dataclass(frozen=True, slots=True)
class PendingLogin:
    """A login that passed its auth method and waits for its MFA codes."""

    path: str  # the login path, e.g. "auth/userpass/login/alice"
    mount_accessor: str
    alias_name: str
    entity_id: str
    # enforcement name -> the method IDs any one of which satisfies it
    constraints: dict[str, list[str]]
    auth: dict[str, Any] = field(repr=False)
    expires: float = 0.0
    attempts: int = 0


class MFAStore:
    """Login MFA records over the identity storage view (see the module docstring)."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self.used = UsedSteps()
        self.locks = KeyLocks()
        # Logins sys/mfa/validate has just completed, by the identity of the Auth it
        # returned, for the road's MFA gate of the same request to mint at the original
        # login path (core/mfa.py). Per core; bounded there.
        self.completed: dict[int, tuple[Auth, str]] = {}
        self._pruned_at = 0.0

    # -- methods -----------------------------------------------------------------------------

    async def method(self, method_id: str) -> Method | None:
        raw = await self._storage.get(_METHOD + method_id) if method_id else None
        return None if raw is None else Method(**orjson.loads(raw))

    async def method_named(self, name_or_id: str) -> Method | None:
        found = await self.method(name_or_id) if "/" not in name_or_id else None
        if found is not None:
            return found
        for method in await self.methods():
            if method.name and method.name == name_or_id:
                return method
        return None

    async def methods(self) -> list[Method]:
        out = []
        for key in await self._storage.list(_METHOD):
            method = await self.method(key)
            if method is not None:
                out.append(method)
        return out

    async def put_method(self, method: Method) -> None:
        await self._storage.put(_METHOD + method.id, orjson.dumps(dataclasses.asdict(method)))

    async def delete_method(self, method_id: str) -> None:
        for enforcement in await self.enforcements():
            if method_id in enforcement.mfa_method_ids:
                raise InvalidRequest(
                    "methodID is still used by an enforcement configuration with ID: "
                    + enforcement.id
                )
        await self._storage.delete(_METHOD + method_id)

    # -- enforcements ------------------------------------------------------------------------

    async def enforcement(self, name: str) -> Enforcement | None:
        raw = await self._storage.get(_ENFORCEMENT + name)
        if raw is None:
            return None
        record: dict[str, Any] = orjson.loads(raw)
        values: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in record.items()
        }
        return Enforcement(**values)

    async def enforcements(self) -> list[Enforcement]:
        out = []
        for name in await self._storage.list(_ENFORCEMENT):
            enforcement = await self.enforcement(name)
            if enforcement is not None:
                out.append(enforcement)
        return out

    async def put_enforcement(self, enforcement: Enforcement) -> None:
        await self._storage.put(
            _ENFORCEMENT + enforcement.name, orjson.dumps(dataclasses.asdict(enforcement))
        )

    async def delete_enforcement(self, name: str) -> None:
        await self._storage.delete(_ENFORCEMENT + name)

    # -- entity secrets ------------------------------------------------------------------------

    async def secret(self, entity_id: str, method: Method) -> TotpKey | None:
        raw = await self._storage.get(f"{_SECRET}{entity_id}/{method.id}")
        if raw is None:
            return None
        record = orjson.loads(raw)
        return TotpKey(
            key=decode_b32(record["key"]),
            issuer=method.issuer,
            account_name=entity_id,
            period=method.period,
            algorithm=method.algorithm,
            digits=method.digits,
            skew=method.skew,
        )

    async def create_secret(self, entity_id: str, method: Method) -> TotpKey | None:
        """A new secret for the entity; None if it already has one (Vault keeps the old).

        Written in one transaction guarded on the entity's record as read, so a secret can
        never outlive its entity: if the entity is deleted first the guard fails and this
        raises "entity not found"; if the secret commits first, the deletion's sweep
        (:meth:`purge_entity`, run after the entity is gone) finds it.
        """
        key = TotpKey.generate(
            method.key_size,
            issuer=method.issuer,
            account_name=entity_id,
            period=method.period,
            algorithm=method.algorithm,
            digits=method.digits,
            skew=method.skew,
        )
        path = f"{_SECRET}{entity_id}/{method.id}"
        record = orjson.dumps({"key": b32_secret(key.key)})
        for _ in range(16):
            entity = await self._storage.get(ENTITY_RECORD + entity_id)
            if entity is None:
                raise InvalidRequest("entity not found")
            try:
                # created only if absent and the entity still there, also against a racing
                # request on another node
                await self._storage.transaction(
                    [
                        StorageOp(ENTITY_RECORD + entity_id, entity, check=True),
                        StorageOp(path, None, check=True),
                        StorageOp(path, record),
                    ]
                )
            except StorageConflict:
                if await self._storage.get(path) is not None:
                    return None
                continue  # the entity changed (or went away) meanwhile: look again
            return key
        raise StorageConflict("entity kept changing; try again")

    async def purge_ops(self, entity_id: str) -> list[StorageOp]:
        """The deletions of every TOTP secret and used-step record the entity has now."""
        return [
            StorageOp(f"{prefix}{entity_id}/{name}")
            for prefix in (_SECRET, _USED)
            for name in await self._storage.list(f"{prefix}{entity_id}/")
        ]

    async def purge_entity(self, entity_id: str) -> None:
        """Delete every TOTP secret and used-step record of an entity that is gone."""
        ops = await self.purge_ops(entity_id)
        if ops:
            await self._storage.transaction(ops)

    async def destroy_secret(self, entity_id: str, method_id: str) -> None:
        await self._storage.delete(f"{_SECRET}{entity_id}/{method_id}")
        await self._storage.delete(f"{_USED}{entity_id}/{method_id}")

    async def claim_step(
        self, entity_id: str, method: Method, key: TotpKey, step: int, now: float
    ) -> bool:
        """Use up a time step of the entity's secret; False if it was used already."""
        return await self.used.claim(
            self._storage, f"{_USED}{entity_id}/{method.id}", step, key.used_until(step), now
        )

    # -- pending logins ------------------------------------------------------------------------

    async def create_pending(self, pending: PendingLogin) -> str:
        request_id = str(uuid.uuid4())
        await self._storage.put(
            _PENDING + _sha(request_id), orjson.dumps(dataclasses.asdict(pending))
        )
        return request_id

    async def prune_pending(self, now: float, every: float = 60.0) -> int:
        """Delete expired pending logins (abandoned two-step logins), at most once per
        ``every`` seconds per node; the number deleted."""
        if now - self._pruned_at < every:
            return 0
        self._pruned_at = now
        deleted = 0
        for name in await self._storage.list(_PENDING):
            raw = await self._storage.get(_PENDING + name)
            if raw is not None and float(orjson.loads(raw).get("expires", 0)) <= now:
                await self._storage.delete(_PENDING + name)
                deleted += 1
        return deleted

    async def pending(self, request_id: str) -> tuple[PendingLogin, bytes] | None:
        raw = await self._storage.get(_PENDING + _sha(request_id))
        if raw is None:
            return None
        return PendingLogin(**orjson.loads(raw)), raw

    def pending_lock_key(self, request_id: str) -> str:
        return _PENDING + _sha(request_id)

    async def consume_pending(self, request_id: str, raw: bytes) -> bool:
        """Delete the pending login if it is still the record read (single use)."""
        key = _PENDING + _sha(request_id)
        try:
            await self._storage.transaction([StorageOp(key, raw, check=True), StorageOp(key)])
        except StorageConflict:
            return False
        return True

    async def replace_pending(self, request_id: str, raw: bytes, pending: PendingLogin) -> None:
        key = _PENDING + _sha(request_id)
        try:
            await self._storage.transaction(
                [
                    StorageOp(key, raw, check=True),
                    StorageOp(key, orjson.dumps(dataclasses.asdict(pending))),
                ]
            )
        except StorageConflict:
            pass  # another node consumed or updated it first; its outcome stands

    async def drop_pending(self, request_id: str) -> None:
        await self._storage.delete(_PENDING + _sha(request_id))

    # -- failure counters ----------------------------------------------------------------------

    def failures_key(self, accessor: str, alias_name: str) -> str:
        return f"{_FAILURES}{accessor}/{_sha(alias_name)}"

    async def failures(self, accessor: str, alias_name: str) -> dict[str, float]:
        raw = await self._storage.get(self.failures_key(accessor, alias_name))
        return {} if raw is None else dict(orjson.loads(raw))

    async def put_failures(self, accessor: str, alias_name: str, record: dict[str, float]) -> None:
        key = self.failures_key(accessor, alias_name)
        if record:
            await self._storage.put(key, orjson.dumps(record))
        elif await self._storage.get(key) is not None:
            await self._storage.delete(key)
