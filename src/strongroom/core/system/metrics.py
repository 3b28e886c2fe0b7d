"""sys/metrics: the server's metrics, as Vault's JSON shape or Prometheus text.

Authenticated like any sys path (Vault's default), unless a listener sets
``telemetry { unauthenticated_metrics_access = true }`` (http/ then serves it itself);
``?format=prometheus`` gives the text exposition format for scrapers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from strongroom.barrier import View
from strongroom.core.system._context import SysContext, SystemCore
from strongroom.core.telemetry import PROMETHEUS_CONTENT_TYPE, Snapshot
from strongroom.errors import InvalidRequest
from strongroom.framework import Endpoint, format_time, list_all
from strongroom.logical import Operation, Request, Response

__all__ = ["TABLE", "collect", "render_metrics"]


@dataclass(frozen=True, slots=True)
class MetricsArgs:
    format: str = ""


async def collect(core: SystemCore) -> Snapshot:
    """Gauges and counters computed now (scrape time), never on the request road."""
    gauges: dict[str, float] = {"core.unsealed": 0.0 if core.sealed else 1.0}
    counters: dict[str, float] = {"quota.refused": float(core.quotas.refused)}
    audit = core.audit.metrics()
    counters["audit.refused_requests"] = float(audit.get("refused", 0))
    failures = 0.0
    for path, device in audit.get("devices", {}).items():
        label = path.rstrip("/").replace("/", "_")
        for key, value in device.items():
            if isinstance(value, bool):
                gauges[f"audit.{label}.{key}"] = 1.0 if value else 0.0
            elif isinstance(value, int | float):
                counters[f"audit.{label}.{key}"] = float(value)
                if "fail" in key:
                    failures += float(value)
    counters["audit.device_failures"] = failures
    if not core.sealed:
        leases = core.leases
        gauges["expire.num_leases"] = float(await leases.count())
        now = core.clock.now()
        # the expiry schedule is in memory: leases due and not yet revoked are the backlog
        schedule = getattr(leases, "_heap", ())
        gauges["expire.backlog"] = float(sum(1 for when, _ in schedule if when <= now))
        counters["expire.revoked"] = float(leases.revoked)
        counters["expire.revoke_failures"] = float(leases.failed_revocations)
        tokens = await list_all(View(core.barrier, "sys/token/"), "id/")
        gauges["token.count"] = float(len(tokens))
    cluster = getattr(core, "cluster", None)
    if cluster is not None:
        # HA: which role this node holds, how far its change feed has applied, and how long
        # since the feed last answered (a standby's lag)
        gauges["core.active"] = 1.0 if cluster.active else 0.0
        gauges["ha.applied_index"] = float(cluster.applied_index)
        heard = getattr(cluster, "_heard", 0.0)
        if heard:
            gauges["ha.feed_silence_seconds"] = max(0.0, time.monotonic() - heard)
        counters["ha.transitions"] = float(cluster.transitions)
    else:
        gauges["core.active"] = 0.0 if core.sealed else 1.0
    snapshot = Snapshot(gauges, counters)
    core.telemetry.snapshot = snapshot
    return snapshot


async def render_metrics(core: SystemCore, fmt: str) -> Response:
    """The body of sys/metrics in ``fmt`` ("" or "json", or "prometheus").

    Raises:
        InvalidRequest: an unknown format, or Prometheus with retention 0 (turned off).
    """
    if fmt not in ("", "json", "prometheus"):
        raise InvalidRequest("format must be 'prometheus' or empty")
    snapshot = await collect(core)
    if fmt == "prometheus":
        if core.telemetry.settings.prometheus_retention_time <= 0:
            raise InvalidRequest(
                "prometheus is not enabled: set telemetry.prometheus_retention_time"
            )
        return Response(
            raw_body=core.telemetry.prometheus_text(), content_type=PROMETHEUS_CONTENT_TYPE
        )
    body: dict[str, Any] = {
        "Timestamp": format_time(time.time() if core.sealed else core.clock.now()),
        "Gauges": [
            {"Name": n, "Value": v, "Labels": {}} for n, v in sorted(snapshot.gauges.items())
        ],
        "Counters": [
            {"Name": n, "Count": v, "Sum": v, "Labels": {}}
            for n, v in sorted(snapshot.counters.items())
        ],
        "Samples": core.telemetry.samples(),
    }
    return Response(data=body, envelope=False)


async def _metrics(ctx: SysContext, request: Request, args: MetricsArgs) -> Response:
    return await render_metrics(ctx.core, args.format)


TABLE: list[Endpoint[SysContext]] = [
    Endpoint(r"metrics", {Operation.READ: _metrics}, MetricsArgs, synopsis="Server metrics")
]
