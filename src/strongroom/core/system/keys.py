"""sys/rotate/config (the barrier key's automatic rotation settings) and
sys/rekey/backup, sys/rekey-recovery-key/backup (unseal-key backups).

Automatic rotation: the active node checks once a second (core's sweep loop) whether the
data key is due, by age (``interval``) or by the encryptions this process made under it
(``max_operations``, an estimate as in Vault), and rotates it through sys/rotate's path.

Unseal-key backups exist only for PGP-encrypted rekeys, which this server refuses, so
there is never a backup: reads answer Vault's "no backed-up keys found", deletes succeed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import orjson

from strongroom.core.system._context import SysContext, SystemCore
from strongroom.errors import InvalidRequest
from strongroom.framework import Duration, Endpoint, NoArgs
from strongroom.logical import Operation, Request, Response, Storage

__all__ = [
    "ROTATE_CONFIG_KEY",
    "TABLE",
    "RotateConfig",
    "load_rotate_config",
    "rotate_if_due",
    "rotation_due",
]

log = logging.getLogger("strongroom.core")

ROTATE_CONFIG_KEY = "core/rotate-config"
# Vault's bounds: NIST's 2^32 AES-GCM operations per key, with a safety margin
MAX_OPERATIONS = 3_865_470_566
MIN_OPERATIONS = 1_000_000
MIN_INTERVAL = 24 * 3600


@dataclass(frozen=True, slots=True)
class RotateConfig:
    enabled: bool = True
    max_operations: int = MAX_OPERATIONS
    interval: int = 0  # seconds; 0: no age limit

    def to_json(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "max_operations": self.max_operations,
            "interval": self.interval,
        }


async def load_rotate_config(storage: Storage) -> RotateConfig:
    raw = await storage.get(ROTATE_CONFIG_KEY)
    if raw is None:
        return RotateConfig()
    doc = orjson.loads(raw)
    return RotateConfig(
        enabled=bool(doc.get("enabled", True)),
        max_operations=int(doc.get("max_operations", MAX_OPERATIONS)),
        interval=int(doc.get("interval", 0)),
    )


def rotation_due(config: RotateConfig, install_time: float, encryptions: int, now: float) -> bool:
    """Whether the data key installed at ``install_time`` must be rotated now."""
    if not config.enabled:
        return False
    if config.interval and now - install_time >= config.interval:
        return True
    return encryptions >= config.max_operations


async def rotate_if_due(core: SystemCore) -> bool:
    status = core.seal_manager.key_status()
    now = core.clock.now()
    if not rotation_due(core.rotate_config, status.install_time, status.encryptions, now):
        return False
    await core.seal_manager.rotate()
    log.info("barrier key rotated automatically (term %d was due)", status.term)
    return True


@dataclass(frozen=True, slots=True)
class RotateConfigArgs:
    enabled: bool | None = None
    max_operations: int | None = None
    interval: Duration | None = None


async def _rotate_config(core: SystemCore) -> dict[str, Any]:
    return (await load_rotate_config(core.barrier)).to_json()


async def _read_rotate(ctx: SysContext, request: Request, args: RotateConfigArgs) -> Response:
    return Response(data=await _rotate_config(ctx.core))


async def _write_rotate(ctx: SysContext, request: Request, args: RotateConfigArgs) -> None:
    core = ctx.core
    config = await _rotate_config(core)
    if args.max_operations is not None:
        if not MIN_OPERATIONS <= args.max_operations <= MAX_OPERATIONS:
            raise InvalidRequest(
                f"max_operations must be in the range [{MIN_OPERATIONS},{MAX_OPERATIONS}]"
            )
        config["max_operations"] = args.max_operations
    if args.interval is not None:
        if args.interval and args.interval < MIN_INTERVAL:
            raise InvalidRequest("interval must be greater or equal to 24h0m0s")
        config["interval"] = int(args.interval)
    if args.enabled is not None:
        config["enabled"] = args.enabled
    await core.barrier.put(ROTATE_CONFIG_KEY, orjson.dumps(config))
    core.rotate_config = RotateConfig(**config)


async def _read_backup(ctx: SysContext, request: Request, args: NoArgs) -> Response:
    raise InvalidRequest("no backed-up keys found")


async def _delete_backup(ctx: SysContext, request: Request, args: NoArgs) -> None:
    return None  # nothing is ever backed up (PGP-encrypted rekeys are refused)


_op = Operation


_BACKUP = {_op.READ: _read_backup, _op.DELETE: _delete_backup}


TABLE: list[Endpoint[SysContext]] = [
    Endpoint(
        r"rotate/config",
        {_op.READ: _read_rotate, _op.UPDATE: _write_rotate},
        RotateConfigArgs,
        synopsis="Automatic barrier key rotation settings",
    ),
    Endpoint(r"rekey/backup", _BACKUP, synopsis="Backed-up unseal keys (never any)"),
    Endpoint(r"rekey-recovery-key/backup", _BACKUP, synopsis="Backed-up recovery keys (never any)"),
]
