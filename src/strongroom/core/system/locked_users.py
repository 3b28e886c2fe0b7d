"""sys/locked-users and sys/locked-users/<mount accessor>/unlock/<alias identifier>.

Auth methods with user lockout (userpass) keep their lockout records in their own mount
storage at ``lockout/<normalised name>`` as ``{"count", "last_failed", "locked_until"}``;
this lists the locked ones across mounts and deletes a record to unlock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from strongroom.core.system._context import SysContext
from strongroom.errors import InvalidRequest
from strongroom.framework import Endpoint
from strongroom.logical import Operation, Request, Response

__all__ = ["TABLE"]

_LOCKOUT_PREFIX = "lockout/"


@dataclass(frozen=True, slots=True)
class ListArgs:
    mount_accessor: str = ""


@dataclass(frozen=True, slots=True)
class UnlockArgs:
    mount_accessor: str
    alias_identifier: str


async def _listing(ctx: SysContext, request: Request, args: ListArgs) -> Response:
    now = ctx.core.clock.now()
    accessors: list[dict[str, Any]] = []
    total = 0
    for route in ctx.core.router.routes():
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


async def _unlock(ctx: SysContext, request: Request, args: UnlockArgs) -> None:
    for route in ctx.core.router.routes():
        if route.entry.is_auth and route.entry.accessor == args.mount_accessor:
            name = args.alias_identifier.strip()
            if route.entry.type == "userpass":
                name = name.lower()
            await route.storage.delete(_LOCKOUT_PREFIX + name)
            return
    raise InvalidRequest("no auth mount with that accessor")


TABLE: list[Endpoint[SysContext]] = [
    Endpoint(r"locked-users", {Operation.READ: _listing}, ListArgs, synopsis="Locked users"),
    Endpoint(
        r"locked-users/(?P<mount_accessor>[^/]+)/unlock/(?P<alias_identifier>.+)",
        {Operation.UPDATE: _unlock},
        UnlockArgs,
        synopsis="Unlock a locked user",
    ),
]
