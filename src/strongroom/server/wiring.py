"""The composition root: storage → barrier → seal → audit → core(builtin) → http.

The only place where concrete classes meet. Tests and the dev server use it too.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from strongroom.audit import AuditBroker
from strongroom.barrier import AESGCMBarrier
from strongroom.builtin import FACTORIES
from strongroom.clock import Clock, SystemClock
from strongroom.core.cluster import Cluster, HASettings, new_node_id
from strongroom.core.core import Core, CoreSettings
from strongroom.core.handling import handle
from strongroom.core.snapshots import SnapshotSchedule, SnapshotScheduler
from strongroom.core.system.metrics import render_metrics
from strongroom.core.telemetry import InstrumentedStorage, Telemetry, TelemetrySettings
from strongroom.errors import InvalidRequest, StorageUnavailable
from strongroom.http import AppHooks, HttpLimits, StrongroomApp
from strongroom.logical import Request, Response
from strongroom.seal import SealManager
from strongroom.storage import CachedStorage, MemoryStorage, PostgreSQLStorage, SQLiteStorage
from strongroom.storage.bulk import MIGRATION_LOCK
from strongroom.storage.ha import ChangeFeed, HABackend

__all__ = ["Assembly", "assemble", "open_storage"]

log = logging.getLogger("strongroom.server")


@dataclass(slots=True)
class Assembly:
    core: Core
    app: StrongroomApp
    physical: Any = field(repr=False)
    snapshots: SnapshotScheduler | None = None

    async def close(self) -> None:
        if self.snapshots is not None:
            await self.snapshots.stop()
        if not self.core.sealed:
            await self.core.seal()
        await self.physical.close()


# the storage stanza's keys PostgreSQLStorage takes (the HA timings are core's)
_PG_OPTIONS = frozenset(
    {
        "connection_url",
        "table",
        "ha_table",
        "ha_enabled",
        "max_parallel",
        "max_idle_connections",
        "skip_create_table",
        "retry_timeout",
    }
)


async def open_storage(kind: str, options: dict[str, Any]) -> Any:
    if kind == "inmem":
        return MemoryStorage()
    if kind == "sqlite":
        path = options.get("path")
        if not path:
            raise InvalidRequest('storage "sqlite" needs a path')
        # HA (several server or worker processes on one file): shared mode, fenced writes
        return await SQLiteStorage.open(str(path), shared=ha_enabled(options))
    if kind == "postgresql":
        # an unreachable server is not fatal: the server starts sealed and retries
        own = {k: v for k, v in options.items() if k in _PG_OPTIONS}
        return await PostgreSQLStorage.open(**own)
    raise InvalidRequest(
        f"storage type {kind!r} is not supported (use sqlite, postgresql or inmem)"
    )


def ha_enabled(options: dict[str, Any]) -> bool:
    value = options.get("ha_enabled", False)
    return value is True or str(value).lower() in ("true", "1")


def ha_settings(
    options: dict[str, Any],
    api_addr: str,
    cluster_addr: str,
    *,
    disable_clustering: bool = False,
    version: str = "",
) -> HASettings:
    """The node's HA settings from the storage stanza: lock TTL (default 3 s: a dead
    active is replaced within about 3.5 s), renewal interval (default a quarter TTL) and
    our ``ha_echo_interval`` (standbys' heartbeat to the active, default 2 s)."""
    ttl = float(options.get("ha_lock_ttl") or 3.0)
    echo = float(options.get("ha_echo_interval") or 2.0)
    renew = float(options.get("ha_renew_interval") or ttl / 4)
    if renew * 2 > ttl:
        raise InvalidRequest("ha_renew_interval must be at most half of ha_lock_ttl")
    return HASettings(
        node_id=str(options.get("node_id") or new_node_id()),
        api_addr=api_addr,
        cluster_addr=cluster_addr,
        lock_ttl=ttl,
        renew_interval=renew,
        retry_interval=min(0.25, ttl / 8),
        disable_clustering=disable_clustering,
        echo_interval=echo,
        version=version,
    )


async def assemble(
    storage_type: str,
    storage_options: dict[str, Any],
    *,
    default_lease_ttl: int = 768 * 3600,
    max_lease_ttl: int = 768 * 3600,
    max_request_size: int = 32 * 1024 * 1024,
    api_addr: str = "",
    cluster_addr: str = "",
    clock: Clock | None = None,
    cache_entries: int = 100_000,
    audit_directory: str = "",
    snapshot_schedule: SnapshotSchedule | None = None,
    telemetry: TelemetrySettings | None = None,
    ui: bool = False,
    raw_storage_endpoint: bool = False,
    introspection_endpoint: bool = False,
    sanitized_config: Mapping[str, Any] | None = None,
    disable_clustering: bool = False,
) -> Assembly:
    clock = clock or SystemClock()
    physical = await open_storage(storage_type, storage_options)
    metrics = Telemetry(telemetry)
    # physical operations are timed (the cache above absorbs most reads, so few are)
    timed = InstrumentedStorage(physical, metrics.observe_storage)
    cached = CachedStorage(timed, max_entries=cache_entries)
    barrier = AESGCMBarrier(cached, clock=clock)
    # with HA another process may initialise, rekey or rotate the shared store while this
    # one is sealed (and not following the change feed): seal records are read uncached
    seal = SealManager(physical if ha_enabled(storage_options) else cached, barrier, clock=clock)
    try:
        if await physical.get(MIGRATION_LOCK) is not None:
            await physical.close()
            raise InvalidRequest(
                "a storage migration is in progress on this storage (strongroom operator"
                " migrate); wait for it, or remove a stale lock with: strongroom operator"
                " migrate -reset -config=<file>"
            )
        await seal.load()
    except StorageUnavailable:
        # storage down at start (PostgreSQL not up yet): serve anyway; seal status and
        # every request answer 503 until storage answers, then work as usual
        log.warning("storage is unavailable at start; the server stays sealed and retries")
    settings = CoreSettings(
        default_lease_ttl=default_lease_ttl,
        max_lease_ttl=max_lease_ttl,
        storage_type=storage_type,
        api_addr=api_addr,
        cluster_addr=cluster_addr,
        raw_storage_endpoint=raw_storage_endpoint,
        introspection_endpoint=introspection_endpoint,
        sanitized_config=dict(sanitized_config or {}),
    )
    audit = AuditBroker(audit_directory=audit_directory, clock=clock)
    core = Core(
        barrier=barrier,
        seal=seal,
        factories=FACTORIES,
        settings=settings,
        clock=clock,
        audit=audit,
    )
    if ha_enabled(storage_options):
        if not isinstance(physical, HABackend) or not isinstance(physical, ChangeFeed):
            await cached.close()
            raise InvalidRequest(f"storage {storage_type!r} does not support ha_enabled")
        settings_ha = ha_settings(
            storage_options,
            api_addr,
            cluster_addr,
            disable_clustering=disable_clustering,
            version=settings.version,
        )
        core.enable_ha(Cluster(physical, physical, settings_ha, core), cached)

    core.telemetry = metrics
    metrics.mount_of = core.mount_of_http_path

    async def handler(request: Request) -> Response | None:
        return await handle(core, request)

    async def unauthenticated_metrics(fmt: str) -> Response:
        return await render_metrics(core, fmt)

    app = StrongroomApp(
        handler,
        limits=HttpLimits(max_request_size=max_request_size),
        hooks=AppHooks(
            cors=lambda: core.cors_config,
            observe=metrics.observe_request,
            render_metrics=unauthenticated_metrics,  # served only where a listener says so
            in_flight=core.in_flight,
            audited_headers=lambda: core.audited_header_names,
            ui=ui,
            ui_headers=lambda: core.ui_headers,
        ),
    )
    scheduler = None
    if snapshot_schedule is not None:
        scheduler = SnapshotScheduler(core, snapshot_schedule)
        scheduler.start()
    return Assembly(core=core, app=app, physical=physical, snapshots=scheduler)
