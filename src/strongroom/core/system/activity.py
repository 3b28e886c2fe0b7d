"""sys/internal/counters/activity, …/activity/monthly, …/activity/export and
…/counters/config: Vault's client counts, over :class:`strongroom.core.activity.ActivityLog`.

``start_time``/``end_time`` are RFC 3339 (or Unix seconds); without them a report covers
the last twelve months up to now. Export answers one JSON object per line, or CSV.
"""

from __future__ import annotations

import csv
import datetime
import io
from dataclasses import dataclass

import orjson

from strongroom.core.activity import month_start
from strongroom.core.system._context import SysContext, SystemCore
from strongroom.errors import InvalidRequest
from strongroom.framework import Endpoint, NoArgs
from strongroom.logical import Operation, Request, Response

__all__ = ["TABLE"]

_EXPORT_FIELDS = (
    "client_id",
    "client_type",
    "namespace_id",
    "namespace_path",
    "mount_accessor",
    "mount_path",
    "timestamp",
)


@dataclass(frozen=True, slots=True)
class RangeArgs:
    start_time: str = ""
    end_time: str = ""
    format: str = "json"


@dataclass(frozen=True, slots=True)
class ConfigArgs:
    enabled: str | None = None
    retention_months: int | None = None
    default_report_months: int | None = None


def _time(value: str, name: str) -> float:
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(f"{name}: not an RFC 3339 time: {text[:40]!r}") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)).timestamp()


def _range(core: SystemCore, args: RangeArgs) -> tuple[float, float]:
    end = _time(args.end_time, "end_time") if args.end_time else core.clock.now()
    if args.start_time:
        start = _time(args.start_time, "start_time")
    else:
        now = datetime.datetime.fromtimestamp(end, datetime.UTC)
        back = now.year * 12 + now.month - 1 - 11
        start = month_start(f"{back // 12:04d}-{back % 12 + 1:02d}").timestamp()
    if start > end:
        raise InvalidRequest("start_time is later than end_time")
    return start, end


async def _report(ctx: SysContext, request: Request, args: RangeArgs) -> Response:
    start, end = _range(ctx.core, args)
    return Response(data=await ctx.core.activity.report(start, end))


async def _monthly(ctx: SysContext, request: Request, args: NoArgs) -> Response:
    return Response(data=await ctx.core.activity.monthly())


async def _export(ctx: SysContext, request: Request, args: RangeArgs) -> Response:
    if args.format not in ("json", "csv"):
        raise InvalidRequest('format must be "json" or "csv"')
    start, end = _range(ctx.core, args)
    rows = [
        {
            "client_id": r.client_id,
            "client_type": r.client_type,
            "namespace_id": "root",
            "namespace_path": "",
            "mount_accessor": r.mount_accessor,
            "mount_path": r.mount_path,
            "timestamp": datetime.datetime.fromtimestamp(r.timestamp, datetime.UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
        }
        for r in await ctx.core.activity.export(start, end)
    ]
    if args.format == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=_EXPORT_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return Response(raw_body=out.getvalue().encode(), content_type="text/csv")
    body = b"".join(orjson.dumps(row) + b"\n" for row in rows)
    return Response(raw_body=body, content_type="application/json")


async def _read_config(ctx: SysContext, request: Request, args: ConfigArgs) -> Response:
    return Response(data=ctx.core.activity.describe(await ctx.core.activity.config()))


async def _write_config(ctx: SysContext, request: Request, args: ConfigArgs) -> None:
    enabled = {"default-enabled": "default", "default-disabled": "default"}.get(
        args.enabled or "", args.enabled
    )
    await ctx.core.activity.write_config(enabled, args.retention_months)


_op = Operation


TABLE: list[Endpoint[SysContext]] = [
    Endpoint(r"internal/counters/activity", {_op.READ: _report}, RangeArgs, synopsis="Clients"),
    Endpoint(
        r"internal/counters/activity/monthly",
        {_op.READ: _monthly},
        synopsis="Clients this month",
    ),
    Endpoint(
        r"internal/counters/activity/export",
        {_op.READ: _export},
        RangeArgs,
        synopsis="Client records (JSON lines or CSV)",
    ),
    Endpoint(
        r"internal/counters/config",
        {_op.READ: _read_config, _op.UPDATE: _write_config},
        ConfigArgs,
        synopsis="Client counting settings",
    ),
]
