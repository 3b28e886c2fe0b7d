"""The server's metrics, kept with prometheus_client in a registry of its own per Core.

Measured on the request road (cheap, per request): HTTP requests by method, mount and
status with a latency histogram (``strongroom_http_request_duration_seconds``), and the
latency of physical storage operations (``strongroom_storage_operation_seconds``).
A request's observation is one tuple appended to a batch; batches are folded into the
histogram every ``_BATCH`` requests, at each scrape and before the mount table changes (so
every request is labelled with the mount it reached); the series of a (method, path,
status) is remembered until the mount table changes.
Computed at scrape time (never on the road): token and lease counts, the expiry backlog
(leases past their expiry and not yet revoked), revocation and audit failures, seal state.

``sys/metrics`` renders them in Vault's JSON shape (Gauges, Counters, Samples) or, with
``?format=prometheus``, in Prometheus' text format. The ``telemetry`` stanza's
``prometheus_retention_time = 0`` turns the Prometheus format off (as in Vault), and
``disable_hostname = false`` adds a ``host`` label.
"""

from __future__ import annotations

import bisect
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from strongroom.logical import Storage, StorageOp

__all__ = ["InstrumentedStorage", "Telemetry", "TelemetrySettings"]

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_REQUEST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)
_STORAGE_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5)
_CHILD_LIMIT = 4096
_BATCH = 256  # observations folded together (a scrape folds the rest)
_PATH_LIMIT = 8192


@dataclass(frozen=True, slots=True)
class TelemetrySettings:
    """The server config's ``telemetry`` stanza."""

    prometheus_retention_time: int = 24 * 3600
    disable_hostname: bool = False


@dataclass(slots=True)
class Snapshot:
    """What the scrape-time collector reads from core (filled by sys/metrics)."""

    gauges: dict[str, float] = field(default_factory=dict)
    counters: dict[str, float] = field(default_factory=dict)


class _StateCollector:
    """Turns the latest :class:`Snapshot` into Prometheus families."""

    def __init__(self, telemetry: Telemetry) -> None:
        self._telemetry = telemetry

    def collect(self) -> Iterable[Metric]:
        snapshot = self._telemetry.snapshot
        labels, values = self._telemetry.const_labels()
        for name, value in sorted(snapshot.gauges.items()):
            gauge = GaugeMetricFamily(_prom_name(name), name, labels=labels)
            gauge.add_metric(values, value)
            yield gauge
        for name, value in sorted(snapshot.counters.items()):
            counter = CounterMetricFamily(_prom_name(name), name, labels=labels)
            counter.add_metric(values, value)
            yield counter

    def describe(self) -> Iterable[Metric]:
        return []


@dataclass(slots=True)
class _Series:
    count: int = 0
    total: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(_REQUEST_BUCKETS) + 1))


class _RequestCollector:
    """The request accumulator as a Prometheus histogram family."""

    def __init__(self, telemetry: Telemetry) -> None:
        self._telemetry = telemetry

    def collect(self) -> Iterable[Metric]:
        host_labels, host_values = self._telemetry.const_labels()
        family = HistogramMetricFamily(
            "strongroom_http_request_duration_seconds",
            "HTTP requests by method, mount and status",
            labels=["method", "mount", "status", *host_labels],
        )
        for (method, mount, status), series in sorted(self._telemetry.request_series().items()):
            cumulative, buckets = 0, []
            for bound, hits in zip(
                [*map(str, _REQUEST_BUCKETS), "+Inf"], series.buckets, strict=True
            ):
                cumulative += hits
                buckets.append((bound, float(cumulative)))
            family.add_metric(
                [method, mount or "none", str(status), *host_values], buckets, series.total
            )
        yield family

    def describe(self) -> Iterable[Metric]:
        return []


def _prom_name(name: str) -> str:
    return "strongroom_" + name.replace(".", "_").replace("-", "_")


class Telemetry:
    def __init__(self, settings: TelemetrySettings | None = None) -> None:
        self.settings = settings or TelemetrySettings()
        self.registry = CollectorRegistry(auto_describe=False)
        self.hostname = socket.gethostname()
        host = () if self.settings.disable_hostname else ("host",)
        # requests are counted by a plain accumulator (no lock: one event loop observes)
        # and handed to prometheus_client as a histogram family at scrape time
        self.requests: dict[tuple[str, str, int], _Series] = {}
        # observations not folded into ``requests`` yet: (method, path, status, seconds)
        self._pending: list[tuple[str, str, int, float]] = []
        # (method, path, status) → its series: the mount lookup once per path (bounded)
        self._by_path: dict[tuple[str, str, int], _Series] = {}
        self.storage = Histogram(
            "strongroom_storage_operation_seconds",
            "Physical storage operations by kind",
            ["op", *host],
            buckets=_STORAGE_BUCKETS,
            registry=self.registry,
        )
        self.snapshot = Snapshot()
        self.registry.register(_StateCollector(self))
        self.registry.register(_RequestCollector(self))
        # bound children per label: labels() costs several µs, a dict hit much less
        self._storage_children: dict[str, Any] = {}
        self.mount_of: Callable[[str], str] = lambda path: ""

    def const_labels(self) -> tuple[list[str], list[str]]:
        if self.settings.disable_hostname:
            return [], []
        return ["host"], [self.hostname]

    # ----- on the road -----------------------------------------------------------------
    def observe_request(self, method: str, path: str, status: int, seconds: float) -> None:
        pending = self._pending
        pending.append((method, path, status, seconds))
        if len(pending) >= _BATCH:
            self.flush_requests()

    def flush_requests(self) -> None:
        """Fold the pending observations into the per-(method, mount, status) histograms."""
        pending, self._pending = self._pending, []
        by_path = self._by_path
        first = _REQUEST_BUCKETS[0]
        for method, path, status, seconds in pending:
            key = (method, path, status)
            series = by_path.get(key)
            if series is None:
                series = self._series_of(key)
            series.count += 1
            series.total += seconds
            if seconds <= first:  # most requests: no bucket search
                series.buckets[0] += 1
            else:
                series.buckets[bisect.bisect_left(_REQUEST_BUCKETS, seconds)] += 1

    def _series_of(self, key: tuple[str, str, int]) -> _Series:
        method, path, status = key
        mount = self.mount_of(path) if path.startswith("/v1/") else ""
        label = (method, mount, status)
        series = self.requests.get(label)
        if series is None:
            if len(self.requests) >= _CHILD_LIMIT:
                label = (method, "other", status)  # bounded: odd paths cannot grow labels
            series = self.requests.setdefault(label, _Series())
        if len(self._by_path) < _PATH_LIMIT:  # past the bound: looked up each time
            self._by_path[key] = series
        return series

    def routes_changing(self) -> None:
        """The mount table is about to change: what was observed keeps the mounts it
        reached, and paths are looked up again from now on."""
        self.flush_requests()
        self._by_path = {}

    def request_series(self) -> dict[tuple[str, str, int], _Series]:
        """The request histograms, every observation so far folded in."""
        self.flush_requests()
        return self.requests

    def observe_storage(self, op: str, seconds: float) -> None:
        child = self._storage_children.get(op)
        if child is None:
            labels = [op] if self.settings.disable_hostname else [op, self.hostname]
            child = self._storage_children.setdefault(op, self.storage.labels(*labels))
        child.observe(seconds)

    # ----- rendering -------------------------------------------------------------------
    def prometheus_text(self) -> bytes:
        return bytes(generate_latest(self.registry))

    def samples(self) -> list[dict[str, Any]]:
        """The histograms in Vault's JSON ``Samples`` shape (count, sum, mean per label set)."""
        out: list[dict[str, Any]] = []
        for (method, mount, status), series in sorted(self.request_series().items()):
            out.append(
                {
                    "Name": "http_request_duration_seconds",
                    "Count": series.count,
                    "Sum": series.total,
                    "Mean": series.total / series.count if series.count else 0.0,
                    "Labels": {"method": method, "mount": mount or "none", "status": str(status)},
                }
            )
        for metric in (self.storage,):
            for family in metric.collect():
                sums: dict[tuple[tuple[str, str], ...], dict[str, float]] = {}
                for sample in family.samples:
                    labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le"))
                    entry = sums.setdefault(labels, {})
                    if sample.name.endswith("_count"):
                        entry["Count"] = sample.value
                    elif sample.name.endswith("_sum"):
                        entry["Sum"] = sample.value
                for labels, entry in sums.items():
                    count = entry.get("Count", 0.0)
                    total = entry.get("Sum", 0.0)
                    out.append(
                        {
                            "Name": family.name.removeprefix("strongroom_"),
                            "Count": int(count),
                            "Sum": total,
                            "Mean": total / count if count else 0.0,
                            "Labels": dict(labels),
                        }
                    )
        return out


class InstrumentedStorage:
    """A physical storage whose get/put/delete/list/transaction are timed into telemetry.

    Everything else (close, backend-specific methods) is passed through untouched.
    """

    def __init__(self, inner: Any, observe: Callable[[str, float], None]) -> None:
        self._inner = inner
        self._observe = observe

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def _timed(self, op: str, call: Awaitable[Any]) -> Any:
        start = time.perf_counter()
        try:
            return await call
        finally:
            self._observe(op, time.perf_counter() - start)

    async def get(self, key: str) -> bytes | None:
        result: bytes | None = await self._timed("get", self._inner.get(key))
        return result

    async def put(self, key: str, value: bytes) -> None:
        await self._timed("put", self._inner.put(key, value))

    async def delete(self, key: str) -> None:
        await self._timed("delete", self._inner.delete(key))

    async def list(self, prefix: str) -> list[str]:
        result: list[str] = await self._timed("list", self._inner.list(prefix))
        return result

    async def transaction(self, ops: Sequence[StorageOp]) -> None:
        await self._timed("transaction", self._inner.transaction(ops))


def _storage_protocol_check(storage: InstrumentedStorage) -> Storage:
    return storage  # mypy: InstrumentedStorage satisfies the Storage protocol
