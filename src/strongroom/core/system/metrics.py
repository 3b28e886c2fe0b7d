"""sys/metrics: the server's counters, as Vault's JSON shape or Prometheus text.

Authenticated like any sys path (Vault's default); ``?format=prometheus`` gives the text
exposition format for scrapers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strongroom.errors import InvalidRequest
from strongroom.framework import Path, format_time
from strongroom.logical import Operation, Request, Response

if TYPE_CHECKING:
    from strongroom.core.core import Core

__all__ = ["metric_paths"]


@dataclass(frozen=True, slots=True)
class MetricsArgs:
    format: str = ""


def _prom_name(name: str) -> str:
    return "strongroom_" + name.replace(".", "_").replace("-", "_")


async def collect(core: Core) -> tuple[dict[str, float], dict[str, float]]:
    """(gauges, counters) by metric name."""
    leases = core.leases
    audit = core.audit.metrics()
    gauges: dict[str, float] = {
        "expire.num_leases": float(await leases.count()),
        "core.unsealed": 0.0 if core.sealed else 1.0,
    }
    counters: dict[str, float] = {
        "expire.revoked": float(leases.revoked),
        "expire.revoke_failures": float(leases.failed_revocations),
        "audit.refused_requests": float(audit.get("refused", 0)),
    }
    for path, device in audit.get("devices", {}).items():
        label = path.rstrip("/").replace("/", "_")
        for key, value in device.items():
            if isinstance(value, bool):
                gauges[f"audit.{label}.{key}"] = 1.0 if value else 0.0
            elif isinstance(value, int | float):
                counters[f"audit.{label}.{key}"] = float(value)
    return gauges, counters


def metric_paths(core: Core) -> list[Path]:
    async def metrics(request: Request, args: MetricsArgs) -> Response:
        gauges, counters = await collect(core)
        if args.format == "prometheus":
            lines: list[str] = []
            for kind, values in (("gauge", gauges), ("counter", counters)):
                for name, value in sorted(values.items()):
                    metric = _prom_name(name)
                    lines.append(f"# TYPE {metric} {kind}")
                    lines.append(f"{metric} {value:g}")
            return Response(
                raw_body=("\n".join(lines) + "\n").encode(),
                content_type="text/plain; version=0.0.4",
            )
        if args.format not in ("", "json"):
            raise InvalidRequest("format must be 'prometheus' or empty")
        body: dict[str, Any] = {
            "Timestamp": format_time(core.clock.now()),
            "Gauges": [{"Name": n, "Value": v, "Labels": {}} for n, v in sorted(gauges.items())],
            "Counters": [
                {"Name": n, "Count": v, "Sum": v, "Labels": {}} for n, v in sorted(counters.items())
            ],
            "Samples": [],
        }
        return Response(data=body, envelope=False)

    return [Path(r"metrics", {Operation.READ: metrics}, MetricsArgs, synopsis="Server metrics")]
