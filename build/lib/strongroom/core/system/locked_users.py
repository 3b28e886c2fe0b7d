"""sys/locked-users and sys/locked-users/<mount accessor>/unlock/<alias identifier>.

Auth methods with user lockout (userpass) keep their lockout records in their own mount
storage at ``lockout/<normalised name>`` as ``{"count", "last_failed", "locked_until"}``;
this lists the locked ones across mounts and deletes a record to unlock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from strongroom.errors import InvalidRequest
from strongroom.framework import Path
from strongroom.logical import Operation, Request, Response

if TYPE_CHECKING:
    from strongroom.core.core import Core

__all__ = ["locked_user_paths"]

_LOCKOUT_PREFIX = "lockout/"


@dataclass(frozen=True, slots=True)
class ListArgs:
    mount_accessor: str = ""


@dataclass(frozen=True, slots=True)
class UnlockArgs:
    mount_accessor: str
    alias_identifier: str


def locked_user_paths(core: Core) -> list[Path]:
    async def listing(request: Request, args: ListArgs) -> Response:
        now = core.clock.now()
        accessors: list[dict[str, Any]] = []
        total = 0
        for route in core.router.routes():
            entry = route.entry
            if not entry.is_auth or (args.mount_accessor and entry.accessor != args.mount_accessor):
                continue
            locked = []
            for name in await route.storage.list(_LOCKOUT_PREFIX):
                raw = await route.storage.get(_LOCKOUT_PREFIX + name)
                if raw is not None and float(orjson.loads(raw).get("locked_until", 0)) > now:
                    locked.append(name)
            if locked:
                total += len(locked)
                accessors.append(
                    {
                        "mount_accessor": entry.accessor,
                        "counts": len(locked),
                        "alias_identifiers": sorted(locked),
                    }
                )
        namespace = {
            "namespace_id": "root",
            "namespace_path": "",
            "counts": total,
            "mount_accessors": accessors,
        }
        return Response(
            data={"by_namespace": [namespace] if total else [], "total": total}, data_only=True
        )

    async def unlock(request: Request, args: UnlockArgs) -> None:
        for route in core.router.routes():
            if route.entry.is_auth and route.entry.accessor == args.mount_accessor:
                name = args.alias_identifier.strip()
                if route.entry.type == "userpass":
                    name = name.lower()
                await route.storage.delete(_LOCKOUT_PREFIX + name)
                return
        raise InvalidRequest("no auth mount with that accessor")

    return [
        Path(r"locked-users", {Operation.READ: listing}, ListArgs, synopsis="Locked users"),
        Path(
            r"locked-users/(?P<mount_accessor>[^/]+)/unlock/(?P<alias_identifier>.+)",
            {Operation.UPDATE: unlock},
            UnlockArgs,
            synopsis="Unlock a locked user",
        ),
    ]
