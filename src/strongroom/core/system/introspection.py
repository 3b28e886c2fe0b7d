"""What the server can tell about itself: sys/version-history, sys/host-info,
sys/in-flight-req, sys/internal/counters/* and GET sys/leases (irrevocable leases)."""

from __future__ import annotations

import os
import platform
import shutil
import socket
import time
from dataclasses import dataclass
from typing import Any

import orjson

from strongroom import __version__
from strongroom.barrier import View
from strongroom.core.leases import LeaseEntry
from strongroom.core.system._context import SysContext, SystemCore
from strongroom.errors import InvalidRequest
from strongroom.framework import Endpoint, NoArgs, format_time, list_all
from strongroom.logical import Operation, Request, Response

__all__ = ["IRREVOCABLE_AFTER", "TABLE", "InFlight"]

_VERSIONS = "core/versions/"
# Vault marks a lease irrevocable after its sixth failed revocation; ours keep being
# retried with backoff, and are listed as irrevocable from that attempt on.
IRREVOCABLE_AFTER = 6
_MAX_IRREVOCABLE = 10_000


class InFlight:
    """The requests the HTTP edge is serving right now (sys/in-flight-req).

    The edge writes ``live`` itself on every request (no call): the ASGI scope and the
    ``time.perf_counter()`` reading it took anyway for request metrics, under the scope's
    ``id``; the listing turns that into wall-clock time and formats it when asked.
    """

    def __init__(self) -> None:
        self.live: dict[int, tuple[float, Any]] = {}

    def describe(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        wall_offset = time.time() - time.perf_counter()
        for key, (started, scope) in list(self.live.items()):
            client = scope.get("client") or ("", 0)
            out[str(key)] = {
                "start_time": format_time(started + wall_offset),
                "client_remote_address": f"{client[0]}:{client[1]}",
                "request_path": scope.get("path", ""),
                "request_method": scope.get("method", ""),
            }
        return out


@dataclass(frozen=True, slots=True)
class LeasesArgs:
    type: str = ""
    include_child_namespaces: bool = False
    limit: str = ""


async def _version_history(core: SystemCore) -> dict[str, Any]:
    view = View(core.barrier, _VERSIONS)
    if await view.get(__version__) is None:  # first use of this version on this storage
        record = {"timestamp_installed": format_time(time.time())}
        await view.put(__version__, orjson.dumps(record))
    names = sorted(await view.list(""), key=_version_key)
    info: dict[str, Any] = {}
    previous: str | None = None
    for name in names:
        raw = await view.get(name)
        record = orjson.loads(raw) if raw else {}
        info[name] = {
            "previous_version": previous,
            "timestamp_installed": record.get("timestamp_installed", ""),
            "build_date": "",
        }
        previous = name
    return {"keys": names, "key_info": info}


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else 0 for part in name.split("."))


def _meminfo() -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        with open("/proc/meminfo", encoding="ascii") as file:
            for line in file:
                key, _, rest = line.partition(":")
                out[key] = int(rest.split()[0]) * 1024
    except OSError:
        pass
    return out


def _host_info() -> dict[str, Any]:
    memory = _meminfo()
    total = memory.get("MemTotal", 0)
    available = memory.get("MemAvailable", 0)
    disk = shutil.disk_usage("/")
    try:
        with open("/proc/uptime", encoding="ascii") as file:
            uptime = int(float(file.read().split()[0]))
    except OSError:
        uptime = 0
    times = os.times()
    return {
        "timestamp": format_time(time.time()),
        "cpu": [
            {"cpu": i, "modelName": platform.processor() or platform.machine(), "cores": 1}
            for i in range(os.cpu_count() or 1)
        ],
        "cpu_times": [{"cpu": "cpu-total", "user": times.user, "system": times.system}],
        "disk": [
            {
                "path": "/",
                "total": disk.total,
                "free": disk.free,
                "used": disk.used,
                "usedPercent": disk.used / disk.total * 100 if disk.total else 0.0,
            }
        ],
        "host": {
            "hostname": socket.gethostname(),
            "os": platform.system().lower(),
            "platform": platform.platform(),
            "kernelVersion": platform.release(),
            "uptime": uptime,
            "bootTime": int(time.time()) - uptime,
            "procs": len([p for p in os.listdir("/proc") if p.isdigit()])
            if os.path.isdir("/proc")
            else 0,
        },
        "memory": {
            "total": total,
            "available": available,
            "used": total - available,
            "free": memory.get("MemFree", 0),
            "usedPercent": (total - available) / total * 100 if total else 0.0,
        },
    }


async def _read_version_history(ctx: SysContext, request: Request, args: NoArgs) -> Response:
    return Response(data=await _version_history(ctx.core))


async def _read_host_info(ctx: SysContext, request: Request, args: NoArgs) -> Response:
    return Response(data=_host_info())


async def _in_flight(ctx: SysContext, request: Request, args: NoArgs) -> Response:
    # Vault answers the bare map of requests (no envelope)
    return Response(data=ctx.core.in_flight.describe(), envelope=False)


async def _token_counter(ctx: SysContext, request: Request, args: NoArgs) -> Response:
    tokens = await list_all(View(ctx.core.barrier, "sys/token/"), "id/")
    return Response(data={"counters": {"service_tokens": {"total": len(tokens)}}})


async def _entity_counter(ctx: SysContext, request: Request, args: NoArgs) -> Response:
    total = len(ctx.core.identity.index.entities)
    return Response(data={"counters": {"entities": {"total": total}}})


async def _request_counter(ctx: SysContext, request: Request, args: NoArgs) -> Response:
    raise InvalidRequest("The functionality has been removed on this path")


async def _irrevocable(ctx: SysContext, request: Request, args: LeasesArgs) -> Response | None:
    if args.type.lower() != "irrevocable":
        return None  # Vault: nothing but irrevocable leases can be listed here
    limit = _MAX_IRREVOCABLE
    if args.limit:
        if args.limit.lower() == "none":
            limit = 0
        elif not args.limit.isdigit() or int(args.limit) < 1:
            raise InvalidRequest("limit must be 'none' or a positive integer")
        else:
            limit = int(args.limit)
    view = View(ctx.core.barrier, "sys/expire/")
    found: list[tuple[float, str, dict[str, Any]]] = []
    warnings: list[str] = []
    for name in await list_all(view, "id/"):
        raw = await view.get("id/" + name)
        if raw is None:
            continue
        entry = LeaseEntry.decode(raw)
        if entry.revoke_attempts < IRREVOCABLE_AFTER:
            continue
        if limit and len(found) >= limit:
            warnings.append("some irrevocable leases were not returned: raise 'limit'")
            break
        mount = ctx.core.entry_by_uuid(entry.mount_uuid)
        found.append(
            (
                entry.expire_time,
                entry.lease_id,
                {
                    "lease_id": entry.lease_id,
                    "mount_id": mount.accessor if mount else "",
                    "error": entry.last_revoke_error,
                },
            )
        )
    found.sort(key=lambda item: (item[0], item[1]))
    leases = [item[2] for item in found]
    return Response(data={"lease_count": len(leases), "leases": leases}, warnings=warnings)


_read, _lst = Operation.READ, Operation.LIST


TABLE: list[Endpoint[SysContext]] = [
    Endpoint(r"version-history/?", {_lst: _read_version_history, _read: _read_version_history}),
    Endpoint(r"host-info", {_read: _read_host_info}, synopsis="Information about the host"),
    Endpoint(r"in-flight-req", {_read: _in_flight}, synopsis="Requests being served now"),
    Endpoint(r"internal/counters/tokens", {_read: _token_counter}, synopsis="Token count"),
    Endpoint(r"internal/counters/entities", {_read: _entity_counter}, synopsis="Entity count"),
    Endpoint(r"internal/counters/requests", {_read: _request_counter}, synopsis="Removed"),
    Endpoint(r"leases", {_read: _irrevocable}, LeasesArgs, synopsis="Irrevocable leases"),
]
