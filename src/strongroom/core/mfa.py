"""Login MFA on the request road (Vault 1.10+): the gate between an auth method's answer and
the token core mints for it, and the completion of a pending login by ``sys/mfa/validate``.

After an auth method accepts credentials, :func:`gate` finds the login enforcements that
apply (by auth mount accessor, auth type, entity or group; any one criterion suffices, as in
Vault). None: the login goes on as before. Otherwise the login must be answered with a TOTP
code for one method of each enforcement, in one of two ways:

- the ``X-Vault-MFA: <method id or name>:<code>`` header on the login request itself
  (several methods: several headers or comma-separated); or
- no header: the login answers ``auth.mfa_requirement`` (a request ID and the constraints)
  *without a token*; ``sys/mfa/validate`` with the request ID and the codes then mints it.
  The request ID is single use: consuming it is a storage transaction guarded on the exact
  pending record, so a burst of validations (on any node) mints at most one token.

A wrong code, a replayed one (a time step is used once per entity and method) or a missing
secret is refused with 403 and counted towards the user lockout of the auth mount: the MFA
failure counter is kept apart from the method's password counter (a correct password resets
that one, and would otherwise reset the MFA count on every try); when it reaches the mount's
``lockout_threshold`` the alias gets the mount's ``lockout/<alias>`` record, so the method
refuses logins, ``sys/locked-users`` lists it, and MFA is refused too until it expires or is
unlocked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from strongroom.core.identity import MFAStore, PendingLogin
from strongroom.core.router import Route
from strongroom.errors import InvalidRequest, PermissionDenied, StorageConflict
from strongroom.framework import remember
from strongroom.logical import Auth, Request, Response, Storage, StorageOp

if TYPE_CHECKING:
    from strongroom.core.system._context import SystemCore

__all__ = ["Gated", "complete", "gate"]

PENDING_TTL = 300.0  # seconds a pending MFA login may wait for sys/mfa/validate
VALIDATE_PATH = "mfa/validate"
_LOCKOUT_PREFIX = "lockout/"  # the auth mounts' lockout records (auth/_lockout.py)
_LOCKOUT_CONFIG = "config/lockout"
_TUPLE_FIELDS = ("policies", "token_policies", "identity_policies")

_WARNING = (
    "A login request was issued that is subject to MFA validation. Please make sure to "
    "validate the login by sending another request to mfa/validate endpoint."
)


@dataclass(frozen=True, slots=True)
class Gated:
    """What the road does next: mint ``auth`` at ``route``/``relative``, or answer
    ``pending`` (the MFA requirement) and mint nothing."""

    route: Route | None = None
    relative: str = ""
    auth: Auth | None = None
    pending: Response | None = None


_COMPLETED_LIMIT = 1024


def _auth_record(auth: Auth) -> dict[str, Any]:
    record = dataclasses.asdict(auth)
    for name in ("client_token", "accessor"):
        record.pop(name, None)
    return record


def _auth_from(record: Mapping[str, Any]) -> Auth:
    values = dict(record)
    for name in _TUPLE_FIELDS:
        values[name] = tuple(values.get(name) or ())
    return Auth(**values)


async def gate(
    core: SystemCore, route: Route, relative: str, request: Request, auth: Auth
) -> Gated:
    """Decide whether a login may mint its token now (see the module docstring)."""
    if route.mount_point == "sys/" and relative == VALIDATE_PATH:
        done = core.identity.mfa.completed.pop(id(auth), None)
        if done is None or done[0] is not auth:
            raise PermissionDenied()
        found = core.router.match(done[1])
        if found is None:
            raise InvalidRequest("the auth mount of this login no longer exists")
        return Gated(route=found[0], relative=found[1], auth=auth)
    store: MFAStore = core.identity.mfa
    enforcements = await store.enforcements()
    if not enforcements:
        return Gated(route=route, relative=relative, auth=auth)
    accessor, mount_type = route.entry.accessor, route.entry.type
    by_mount = any(
        accessor in e.auth_method_accessors or mount_type in e.auth_method_types
        for e in enforcements
    )
    by_identity = any(e.identity_entity_ids or e.identity_group_ids for e in enforcements)
    if not by_mount and not by_identity:
        return Gated(route=route, relative=relative, auth=auth)
    entity_id = ""
    if auth.alias_name:
        groups = tuple(str(g) for g in auth.internal_data.get("groups", ()) or ())
        entity = await core.identity.login_entity(
            accessor, mount_type, auth.alias_name, auth.metadata, groups
        )
        entity_id = entity.id
    group_ids = {g.id for g in core.identity.groups_of(entity_id)} if entity_id else set()
    constraints = {
        e.name: list(e.mfa_method_ids)
        for e in enforcements
        if e.applies(accessor, mount_type, entity_id, group_ids)
    }
    if not constraints:
        return Gated(route=route, relative=relative, auth=auth)
    now = core.clock.now()
    pending = PendingLogin(
        path=route.mount_point + relative,
        mount_accessor=accessor,
        alias_name=auth.alias_name,
        entity_id=entity_id,
        constraints=constraints,
        auth=_auth_record(auth),
        expires=now + PENDING_TTL,
    )
    header = request.headers.get("x-vault-mfa", "")
    if header:
        await _satisfy(core, route.storage, pending, _parse_header(header))
        return Gated(route=route, relative=relative, auth=auth)
    await store.prune_pending(now)
    request_id = await store.create_pending(pending)
    requirement = {
        "mfa_request_id": request_id,
        "mfa_constraints": {
            name: {"any": [await _method_info(store, mid) for mid in method_ids]}
            for name, method_ids in constraints.items()
        },
    }
    body = {
        "request_id": request.id,
        "lease_id": "",
        "renewable": False,
        "lease_duration": 0,
        "data": None,
        "wrap_info": None,
        "warnings": [_WARNING],
        "auth": {
            "client_token": "",
            "accessor": "",
            "policies": None,
            "token_policies": None,
            "identity_policies": None,
            "metadata": None,
            "lease_duration": 0,
            "renewable": False,
            "entity_id": "",
            "token_type": "default",
            "orphan": False,
            "mfa_requirement": requirement,
            "num_uses": 0,
        },
    }
    return Gated(pending=Response(data=body, envelope=False))


async def _method_info(store: MFAStore, method_id: str) -> dict[str, Any]:
    method = await store.method(method_id)
    return {
        "type": "totp",
        "id": method_id,
        "uses_passcode": True,
        "name": method.name if method is not None else "",
    }


def _parse_header(header: str) -> dict[str, list[str]]:
    payload: dict[str, list[str]] = {}
    for part in header.split(","):
        name, sep, code = part.strip().rpartition(":")
        if not sep or not name:
            raise PermissionDenied("failed to parse the X-Vault-MFA header: <method>:<passcode>")
        payload.setdefault(name, []).append(code.removeprefix("passcode="))
    return payload


def _parse_payload(raw: Any) -> dict[str, list[str]]:
    if not isinstance(raw, Mapping) or not raw:
        raise InvalidRequest("missing mfa_payload")
    payload: dict[str, list[str]] = {}
    for name, codes in raw.items():
        if isinstance(codes, str):
            codes = [codes]
        if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
            raise InvalidRequest("mfa_payload: each method maps to a list of passcodes")
        payload[str(name)] = [c.removeprefix("passcode=") for c in codes]
    return payload


async def complete(core: SystemCore, request_id: str, raw_payload: Any) -> Auth:
    """``sys/mfa/validate``: check the codes of a pending login and consume it (once).

    Returns the Auth to mint; the gate of the same request mints it at the login path.
    """
    if not request_id:
        raise InvalidRequest("missing request ID")
    payload = _parse_payload(raw_payload)
    store: MFAStore = core.identity.mfa
    async with store.locks.hold(store.pending_lock_key(request_id)):
        found = await store.pending(request_id)
        now = core.clock.now()
        if found is None or found[0].expires <= now:
            if found is not None:
                await store.drop_pending(request_id)
            raise InvalidRequest("invalid request ID")
        pending, raw = found
        target = core.router.match(pending.path)
        if target is None:
            raise InvalidRequest("the auth mount of this login no longer exists")
        try:
            await _satisfy(core, target[0].storage, pending, payload)
        except PermissionDenied:
            attempts = pending.attempts + 1
            if attempts >= await _max_attempts(store, pending):
                await store.consume_pending(request_id, raw)
            else:
                await store.replace_pending(
                    request_id, raw, dataclasses.replace(pending, attempts=attempts)
                )
            raise
        if not await store.consume_pending(request_id, raw):
            raise InvalidRequest("invalid request ID")
    auth = _auth_from(pending.auth)
    remember(store.completed, id(auth), (auth, pending.path), _COMPLETED_LIMIT)
    return auth


async def _max_attempts(store: MFAStore, pending: PendingLogin) -> int:
    limits = []
    for method_ids in pending.constraints.values():
        for method_id in method_ids:
            method = await store.method(method_id)
            if method is not None:
                limits.append(method.max_validation_attempts)
    return min(limits) if limits else 5


async def _satisfy(
    core: SystemCore, mount_storage: Storage, pending: PendingLogin, payload: dict[str, list[str]]
) -> None:
    """Every enforcement needs one good code of one of its methods; else 403, counted."""
    store: MFAStore = core.identity.mfa
    now = core.clock.now()
    if await _locked(core, mount_storage, pending.alias_name, now):
        raise PermissionDenied()
    failure = ""
    for name, method_ids in pending.constraints.items():
        satisfied = False
        for method_id in method_ids:
            method = await store.method(method_id)
            if method is None:
                continue
            codes = payload.get(method_id) or (payload.get(method.name) if method.name else None)
            if not codes:
                continue
            if len(codes) != 1:
                failure = "found multiple passcodes for the same MFA method"
                continue
            key = await store.secret(pending.entity_id, method) if pending.entity_id else None
            if key is None:
                failure = "MFA secret not present in the entity"
                continue
            try:
                step = key.match(codes[0], now)
            except InvalidRequest:
                step = None
            if step is None:
                failure = "MFA credentials not supplied or incorrect"
                continue
            if not await store.claim_step(pending.entity_id, method, key, step, now):
                failure = "MFA passcode already used; wait until the next time period"
                continue
            satisfied = True
            break
        if not satisfied:
            await _count_failure(core, mount_storage, pending, now)
            raise PermissionDenied(
                f"failed to satisfy enforcement {name}: "
                + (failure or "MFA credentials not supplied or incorrect")
            )
    if pending.alias_name:
        await store.put_failures(pending.mount_accessor, pending.alias_name, {})


async def _lockout_config(mount_storage: Storage) -> tuple[int, float, float, bool]:
    raw = await mount_storage.get(_LOCKOUT_CONFIG)
    record = orjson.loads(raw) if raw else {}
    return (
        int(record.get("threshold", 5)),
        float(record.get("duration", 900)),
        float(record.get("counter_reset", 900)),
        bool(record.get("disabled", False)),
    )


async def _locked(core: SystemCore, mount_storage: Storage, alias: str, now: float) -> bool:
    if not alias:
        return False
    raw = await mount_storage.get(_LOCKOUT_PREFIX + alias)
    return raw is not None and float(orjson.loads(raw).get("locked_until", 0)) > now


async def _count_failure(
    core: SystemCore, mount_storage: Storage, pending: PendingLogin, now: float
) -> None:
    if not pending.alias_name:
        return
    threshold, duration, counter_reset, disabled = await _lockout_config(mount_storage)
    if disabled:
        return
    store: MFAStore = core.identity.mfa
    key = store.failures_key(pending.mount_accessor, pending.alias_name)
    async with store.locks.hold(key):
        record = await store.failures(pending.mount_accessor, pending.alias_name)
        stale = now - float(record.get("last_failed", 0)) >= counter_reset
        count = 1 if not record or stale else int(record["count"]) + 1
        if count < threshold:
            await store.put_failures(
                pending.mount_accessor, pending.alias_name, {"count": count, "last_failed": now}
            )
            return
        await store.put_failures(pending.mount_accessor, pending.alias_name, {})
    await _lock(mount_storage, pending.alias_name, count, now, now + duration)


async def _lock(storage: Storage, alias: str, count: int, now: float, until: float) -> None:
    """Write the mount's lockout record, guarded on the value read so a concurrent password
    failure counted by the method itself is not lost (retried on conflict)."""
    key = _LOCKOUT_PREFIX + alias
    record = {"count": count, "last_failed": now, "locked_until": until}
    for _ in range(5):
        raw = await storage.get(key)
        try:
            await storage.transaction(
                [StorageOp(key, raw, check=True), StorageOp(key, orjson.dumps(record))]
            )
            return
        except StorageConflict:
            continue
    raise StorageConflict("could not record the lockout")
