"""sys/rotate/config (the barrier key's automatic rotation settings) and
sys/rekey/backup, sys/rekey-recovery-key/backup (unseal-key backups).

Unseal-key backups exist only for PGP-encrypted rekeys, which this server refuses, so
there is never a backup: reads answer Vault's "no backed-up keys found", deletes succeed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from strongroom.errors import InvalidRequest
from strongroom.framework import Duration, NoArgs, Path
from strongroom.logical import Operation, Request, Response

if TYPE_CHECKING:
    from strongroom.core.core import Core

__all__ = ["ROTATE_CONFIG_KEY", "key_paths"]

ROTATE_CONFIG_KEY = "core/rotate-config"
# Vault's bounds: NIST's 2^32 AES-GCM operations per key, with a safety margin
MAX_OPERATIONS = 3_865_470_566
MIN_OPERATIONS = 1_000_000
MIN_INTERVAL = 24 * 3600


@dataclass(frozen=True, slots=True)
class RotateConfigArgs:
    enabled: bool | None = None
    max_operations: int | None = None
    interval: Duration | None = None


async def _rotate_config(core: Core) -> dict[str, Any]:
    raw = await core.barrier.get(ROTATE_CONFIG_KEY)
    stored = orjson.loads(raw) if raw else {}
    return {
        "enabled": stored.get("enabled", True),
        "max_operations": stored.get("max_operations", MAX_OPERATIONS),
        "interval": stored.get("interval", 0),
    }


def key_paths(core: Core) -> list[Path]:
    async def read_rotate(request: Request, args: RotateConfigArgs) -> Response:
        return Response(data=await _rotate_config(core))

    async def write_rotate(request: Request, args: RotateConfigArgs) -> None:
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

    async def read_backup(request: Request, args: NoArgs) -> Response:
        raise InvalidRequest("no backed-up keys found")

    async def delete_backup(request: Request, args: NoArgs) -> None:
        return None  # nothing is ever backed up (PGP-encrypted rekeys are refused)

    op = Operation
    backup = {op.READ: read_backup, op.DELETE: delete_backup}
    return [
        Path(
            r"rotate/config",
            {op.READ: read_rotate, op.UPDATE: write_rotate},
            RotateConfigArgs,
            synopsis="Automatic barrier key rotation settings",
        ),
        Path(r"rekey/backup", backup, synopsis="Backed-up unseal keys (never any)"),
        Path(r"rekey-recovery-key/backup", backup, synopsis="Backed-up recovery keys (never any)"),
    ]
