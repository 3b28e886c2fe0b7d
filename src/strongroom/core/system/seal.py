"""sys/ endpoints that work while sealed: init, unseal, seal-status, health, leader,
generate-root and rekey. They run before the sealed check and the router, like Vault's.

Cancelling a root generation or a rekey needs an authenticated caller allowed to delete
on that path (an unauthenticated cancel would let anyone disrupt a quorum ceremony).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from strongroom.core.system._context import caller_acl
from strongroom.errors import InvalidRequest, PermissionDenied, Sealed, UnsupportedOperation
from strongroom.framework import format_time, parse_bool, parse_int
from strongroom.logical import Operation, Request, Response

if TYPE_CHECKING:
    from strongroom.core.system._context import SystemCore

__all__ = ["SEAL_OPERATIONS", "SEAL_SPECS", "decode_key_share"]

SealOp = Callable[["SystemCore", Request], Awaitable[Response | None]]


def decode_key_share(value: Any) -> bytes:
    """Unseal keys arrive hex- or base64-encoded, as Vault prints both."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest("missing key")
    text = value.strip()
    try:
        return bytes.fromhex(text)
    except ValueError:
        pass
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("'key' must be a valid hex or base64 string") from None


def _ops(*allowed: Operation) -> Callable[[Request], None]:
    def check(request: Request) -> None:
        if request.operation not in allowed:
            raise UnsupportedOperation()

    return check


async def _require_authorized(core: SystemCore, request: Request) -> None:
    if core.sealed:
        raise Sealed()
    acl = await caller_acl(core, request)
    if not acl.check(Operation.DELETE, request.path, None).allowed:
        raise PermissionDenied()


async def seal_status_json(core: SystemCore) -> dict[str, Any]:
    initialized = await core.seal_manager.initialized()
    config = await core.seal_manager.seal_config() if initialized else None
    progress = core.seal_manager.unseal_progress()
    cluster_name, cluster_id = core.cluster_info()
    out: dict[str, Any] = {
        "type": "shamir",
        "initialized": initialized,
        "sealed": core.sealed,
        "t": config.secret_threshold if config else 0,
        "n": config.secret_shares if config else 0,
        "progress": progress.progress,
        "nonce": progress.nonce,
        "version": core.settings.version,
        "build_date": "2026-11-22T00:00:00Z",
        "migration": False,
        "recovery_seal": False,
        "storage_type": core.settings.storage_type,
    }
    if not core.sealed:
        out["cluster_name"] = cluster_name
        out["cluster_id"] = cluster_id
    return out


async def _seal_status(core: SystemCore, request: Request) -> Response:
    _ops(Operation.READ)(request)
    return _bare(await seal_status_json(core))


def _bare(data: dict[str, Any], status: int | None = None) -> Response:
    """A response whose data is the whole body, without Vault's envelope."""
    return Response(data=data, envelope=False, status=status)


async def _init(core: SystemCore, request: Request) -> Response:
    if request.operation is Operation.READ:
        return _bare({"initialized": await core.seal_manager.initialized()})
    _ops(Operation.UPDATE, Operation.CREATE)(request)
    data = request.data
    if data.get("pgp_keys") or data.get("root_token_pgp_key"):
        raise InvalidRequest("PGP-encrypted key shares are not supported yet")
    if data.get("stored_shares") or data.get("recovery_shares"):
        raise InvalidRequest("stored shares and recovery keys need an auto-unseal, not supported")
    shares = parse_int(data.get("secret_shares", 0), "secret_shares")
    threshold = parse_int(data.get("secret_threshold", 0), "secret_threshold")
    keys, root_token = await core.initialize(shares, threshold)
    return _bare(
        {
            "keys": [k.hex() for k in keys],
            "keys_base64": [base64.b64encode(k).decode() for k in keys],
            "root_token": root_token,
        }
    )


async def _unseal(core: SystemCore, request: Request) -> Response:
    _ops(Operation.UPDATE, Operation.CREATE)(request)
    manager = core.seal_manager
    if not await manager.initialized():
        raise InvalidRequest("Vault is not initialized")
    if parse_bool(request.data.get("reset", False), "reset"):
        manager.reset_unseal()
        if core.peer_relay is not None:
            await core.peer_relay("PUT", "sys/unseal", {"reset": True}, "")
        return _bare(await seal_status_json(core))
    relay = core.peer_relay
    if not core.sealed:
        if relay is not None and request.data.get("key"):
            await relay("PUT", "sys/unseal", {"key": request.data["key"]}, "")
        return _bare(await seal_status_json(core))
    key = decode_key_share(request.data.get("key"))
    progress = await manager.submit_unseal_key(key)
    if relay is not None:  # worker processes: every sibling gets the same (valid) share
        await relay("PUT", "sys/unseal", {"key": request.data["key"]}, "")
    if not progress.sealed:
        await core.after_unseal()
    return _bare(await seal_status_json(core))


async def _health(core: SystemCore, request: Request) -> Response:
    _ops(Operation.READ)(request)
    query = request.query
    initialized = await core.seal_manager.initialized()
    sealed = core.sealed
    now = core.clock.now()
    cluster_name, cluster_id = core.cluster_info()
    # an HA standby serves reads itself: Vault calls that a performance standby
    standby = not sealed and core.cluster is not None and not core.cluster.active
    body = {
        "initialized": initialized,
        "sealed": sealed,
        "standby": standby,
        "performance_standby": standby,
        "replication_performance_mode": "disabled",
        "replication_dr_mode": "disabled",
        "server_time_utc": int(now),
        "version": core.settings.version,
        "enterprise": False,
        "echo_duration_ms": 0,
        "clock_skew_ms": 0,
        "cluster_name": cluster_name,
        "cluster_id": cluster_id,
    }
    if sealed and core.seal_reason:  # ours: why the node sealed itself (docs/ha.md)
        body["seal_reason"] = core.seal_reason

    def code(name: str, default: int) -> int:
        if name not in query:
            return default
        value = parse_int(query[name], name)
        if not 100 <= value <= 599:
            raise InvalidRequest(f"{name}: not a valid HTTP status code")
        return value

    if not initialized:
        status = code("uninitcode", 501)
    elif sealed:
        status = code("sealedcode", 503)
    elif standby and not _flag(query, "perfstandbyok"):
        status = code("performancestandbycode", 473)
    else:
        status = code("activecode", 200)
    return _bare((body), status=status)


async def _leader(core: SystemCore, request: Request) -> Response:
    _ops(Operation.READ)(request)
    if core.sealed:
        raise Sealed()
    active = core.active_time
    active_str = format_time(active) if active else "0001-01-01T00:00:00Z"
    body = {
        "ha_enabled": False,
        "is_self": False,
        "active_time": active_str,
        "leader_address": "",
        "leader_cluster_address": "",
        "performance_standby": False,
        "performance_standby_last_remote_wal": 0,
    }
    cluster = core.cluster
    if cluster is not None:
        leader = await cluster.leader()
        body["ha_enabled"] = True
        body["is_self"] = cluster.active
        body["performance_standby"] = not cluster.active
        body["performance_standby_last_remote_wal"] = cluster.applied_index
        if leader is not None:
            body["leader_address"] = leader.api_addr
            body["leader_cluster_address"] = leader.cluster_addr
        if not cluster.active:
            body["active_time"] = "0001-01-01T00:00:00Z"
    return _bare(body)


def _flag(query: Mapping[str, str], name: str) -> bool:
    """A health-check boolean query parameter: present without a value means true."""
    if name not in query:
        return False
    value = query[name]
    return value == "" or parse_bool(value, name)


async def _generate_root_attempt(core: SystemCore, request: Request) -> Response | None:
    manager = core.seal_manager
    if request.operation is Operation.READ:
        return _bare(manager.generate_root_status().to_json())
    if request.operation is Operation.DELETE:
        await _require_authorized(core, request)
        manager.generate_root_cancel()
        return None
    _ops(Operation.UPDATE, Operation.CREATE)(request)
    if core.sealed:
        raise Sealed()
    if request.data.get("pgp_key"):
        raise InvalidRequest("PGP-encrypted root tokens are not supported yet; use the OTP")
    status = manager.generate_root_init(otp=str(request.data.get("otp") or ""))
    return _bare(status.to_json())


async def _generate_root_update(core: SystemCore, request: Request) -> Response:
    _ops(Operation.UPDATE, Operation.CREATE)(request)
    if core.sealed:
        raise Sealed()
    key = decode_key_share(request.data.get("key"))
    nonce = str(request.data.get("nonce", ""))
    status = await core.seal_manager.generate_root_update(key, nonce, core.mint_root_token)
    return _bare(status.to_json())


async def _rekey_init(core: SystemCore, request: Request) -> Response | None:
    manager = core.seal_manager
    if request.operation is Operation.READ:
        return _bare(manager.rekey_status().to_json())
    if request.operation is Operation.DELETE:
        await _require_authorized(core, request)
        manager.rekey_cancel(str(request.data.get("nonce") or request.query.get("nonce", "")))
        return None
    _ops(Operation.UPDATE, Operation.CREATE)(request)
    if core.sealed:
        raise Sealed()
    data = request.data
    if data.get("pgp_keys") or parse_bool(data.get("backup", False), "backup"):
        raise InvalidRequest("PGP-encrypted shares and key backup are not supported yet")
    status = manager.rekey_init(
        parse_int(data.get("secret_shares", 0), "secret_shares"),
        parse_int(data.get("secret_threshold", 0), "secret_threshold"),
        parse_bool(data.get("require_verification", False), "require_verification"),
    )
    return _bare(status.to_json())


async def _rekey_update(core: SystemCore, request: Request) -> Response:
    _ops(Operation.UPDATE, Operation.CREATE)(request)
    if core.sealed:
        raise Sealed()
    key = decode_key_share(request.data.get("key"))
    result = await core.seal_manager.rekey_update(key, str(request.data.get("nonce", "")))
    return _bare(result.to_json())


async def _rekey_verify(core: SystemCore, request: Request) -> Response | None:
    manager = core.seal_manager
    if request.operation is Operation.READ:
        return _bare(manager.rekey_verify_status().to_json())
    if request.operation is Operation.DELETE:
        await _require_authorized(core, request)
        return _bare(manager.rekey_verify_cancel().to_json())
    _ops(Operation.UPDATE, Operation.CREATE)(request)
    if core.sealed:
        raise Sealed()
    key = decode_key_share(request.data.get("key"))
    result = await manager.rekey_verify_update(key, str(request.data.get("nonce", "")))
    return _bare(result.to_json())


async def _rekey_recovery(core: SystemCore, request: Request) -> Response:
    # Recovery keys exist only with an auto-unseal seal; this server has the Shamir seal
    # only, where Vault answers the same refusal.
    raise InvalidRequest("recovery rekeying not supported")


async def _seal_backend_status(core: SystemCore, request: Request) -> Response:
    # one seal, Shamir's, which cannot become unhealthy (Vault's seal HA has several)
    _ops(Operation.READ)(request)
    return _bare(
        {"healthy": True, "unhealthy_since": "", "backends": [{"name": "shamir", "healthy": True}]}
    )


SEAL_OPERATIONS: dict[str, SealOp] = {
    "sys/init": _init,
    "sys/seal-status": _seal_status,
    "sys/unseal": _unseal,
    "sys/health": _health,
    "sys/leader": _leader,
    "sys/generate-root/attempt": _generate_root_attempt,
    "sys/generate-root/update": _generate_root_update,
    "sys/rekey/init": _rekey_init,
    "sys/rekey/update": _rekey_update,
    "sys/rekey/verify": _rekey_verify,
    "sys/seal-backend-status": _seal_backend_status,
    "sys/rekey-recovery-key/init": _rekey_recovery,
    "sys/rekey-recovery-key/update": _rekey_recovery,
    "sys/rekey-recovery-key/verify": _rekey_recovery,
}

# The OpenAPI document's entries for these paths (core/system/specs.py): (path below sys/,
# HTTP methods, synopsis). Kept beside SEAL_OPERATIONS, which has no path table to describe.
SEAL_SPECS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("init", ("get", "post"), "Initialize a new server, or read whether it is"),
    ("seal-status", ("get",), "The seal status"),
    ("unseal", ("post",), "Submit an unseal key share"),
    ("health", ("get",), "Health of the node"),
    ("leader", ("get",), "The active node"),
    ("generate-root/attempt", ("get", "post", "delete"), "Root token generation"),
    ("generate-root/update", ("post",), "Submit a key share for root generation"),
    ("rekey/init", ("get", "post", "delete"), "Rekey the unseal keys"),
    ("rekey/update", ("post",), "Submit a key share for the rekey"),
    ("rekey/verify", ("get", "post", "delete"), "Verify the new unseal keys"),
    ("seal-backend-status", ("get",), "The seal backends' health"),
    ("rekey-recovery-key/init", ("get", "post", "delete"), "Rekey the recovery keys (none)"),
    ("rekey-recovery-key/update", ("post",), "Submit a recovery key share (none)"),
    ("rekey-recovery-key/verify", ("get", "post", "delete"), "Verify new recovery keys (none)"),
)
if {"sys/" + path for path, _, _ in SEAL_SPECS} != set(SEAL_OPERATIONS):
    raise RuntimeError("SEAL_SPECS must describe every path of SEAL_OPERATIONS")
