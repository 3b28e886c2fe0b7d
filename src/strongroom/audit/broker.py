"""The audit broker: the device table, fan-out of every entry, and failing closed.

Core owns one broker for its whole life; :meth:`AuditBroker.start` runs at unseal (the
table, the salts, the signing key and each device's chain state all live behind the
barrier) and :meth:`AuditBroker.stop` at seal (a final checkpoint on every device, chain
state persisted). While no device is enabled, :attr:`AuditBroker.enabled` is ``False`` and
the request road skips auditing with that single attribute check.

Rules, as Vault's (website/content/docs/audit/index.mdx):

- An entry is recorded when *at least one* device wrote it. If devices are enabled and none
  could record a request entry, the request is refused before its backend runs
  (``failed to audit request, cannot continue`` in the server log, Vault's ``internal
  error`` to the client), so it has no effect. A response entry that no device can record
  fails the request the same way, as Vault does, although the backend has already acted.
- A failing device is logged (its path and the error class, never an entry) and counted;
  :meth:`AuditBroker.metrics` exposes the counts.
- A device whose configuration cannot be used at unseal (say ``audit_directory`` changed)
  stays in the table and counts as enabled-but-failing: it never silently stops auditing.

Storage layout (all behind the barrier): ``core/audit`` the device table (with each
device's random 32-byte HMAC salt), ``core/audit-signing-key`` the server's Ed25519
checkpoint key (generated on first use), ``core/audit-chain/<device uuid>`` each device's
chain head, written after every checkpoint once the device's sink was synced.

Several writers (HA: the active and its performance standbys, each worker process):
every process opens the enabled devices itself and writes its own hash chain (its own
chain id). Only a *writer* broker (the active, or a server without HA) changes storage: it
enables and disables devices, generates the signing key, and saves and continues the chain
heads. A standby starts its broker ``read_only``: it reads the table (so the per-device
HMAC salts, and ``sys/audit-hash`` answers, are the active's), reads the signing key,
starts a fresh chain of its own on every device, writes nothing behind the barrier, and
follows table changes with :meth:`AuditBroker.reload`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import secrets
import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from strongroom.audit.chain import ChainState, Signer
from strongroom.audit.devices import Device, DeviceConfig, DeviceEnv, FileDevice, build_device
from strongroom.audit.devices._base import _describe, host_of, writer_id
from strongroom.audit.entry import AuditAuth, AuditEvent, MountInfo, entry_time
from strongroom.audit.hashing import SALT_SIZE, Salt
from strongroom.clock import Clock, SystemClock
from strongroom.errors import (
    Fenced,
    InternalError,
    InvalidRequest,
    PermissionDenied,
    Sealed,
    StrongroomError,
)
from strongroom.framework import format_time
from strongroom.logical import Request, Response, Storage

__all__ = [
    "AUDIT_REQUEST_FAILED",
    "AUDIT_RESPONSE_FAILED",
    "CHAIN_PREFIX",
    "SIGNING_KEY",
    "TABLE_KEY",
    "AuditBroker",
    "Ticket",
    "Trail",
    "error_text",
]

log = logging.getLogger("strongroom.audit")

TABLE_KEY = "core/audit"
SIGNING_KEY = "core/audit-signing-key"
CHAIN_PREFIX = "core/audit-chain/"
AUDIT_REQUEST_FAILED = "failed to audit request, cannot continue"
AUDIT_RESPONSE_FAILED = "failed to audit response, cannot continue"
_TICK = 1.0
_ADOPT_EVERY = 30  # ticks between looks for writers that died (appended bytes only)

Ticket = tuple[tuple[Device, dict[str, Any]], ...]
"""The devices that recorded a request entry, each with that entry: the response entry
goes to them, reusing the entry's (already hashed) auth and request blocks."""

LOG_RAW_WARNING = (
    "audit device %s has log_raw enabled: tokens, accessors and secret values will be "
    "written to it IN CLEAR. Anyone who can read that log can use them."
)


class AuditBroker:
    def __init__(self, *, audit_directory: str = "", clock: Clock | None = None) -> None:
        """
        Args:
            audit_directory: the server's ``audit_directory``: file devices must live in it
                (empty: any absolute path, symlinks at the last component refused).
            clock: time for entries and checkpoint intervals.
        """
        self.enabled = False
        self.audit_directory = audit_directory
        # request headers copied into entries (name → HMAC it), set by core
        self.request_headers: dict[str, bool] = {}
        self._clock: Clock = clock or SystemClock()
        self._devices: dict[str, Device] = {}
        self._configs: dict[str, DeviceConfig] = {}
        self._storage: Storage | None = None
        self._signer: Signer | None = None
        self._signer_lock = asyncio.Lock()
        self._lock = asyncio.Lock()
        self._ticker: asyncio.Task[None] | None = None
        self._persisting: dict[str, asyncio.Task[None]] = {}
        self._persist_again: set[str] = set()
        self.refused = 0
        self.read_only = False
        self.started = False
        self._env = DeviceEnv(
            clock=self._clock, signer=self._current_signer, on_checkpoint=self._schedule_persist
        )

    def __repr__(self) -> str:
        return f"AuditBroker(devices={sorted(self._configs)})"

    def _recompute(self) -> None:
        self.enabled = bool(self._configs)

    def _ensure_ticker(self) -> None:
        """The checkpoint timer runs while there is a device to tick."""
        if self._ticker is None and self._devices:
            self._ticker = asyncio.get_running_loop().create_task(self._tick_loop())

    # ----- lifecycle -------------------------------------------------------------------
    async def start(self, storage: Storage, *, read_only: bool = False) -> None:
        """At unseal (or an HA role change): load the table and open every device (a device
        that cannot open is logged and retried on each write: it is not dropped).

        ``read_only`` (an HA standby): nothing is written behind the barrier; every device
        starts a new chain of this process's own instead of continuing the saved head,
        which belongs to the active's chain.
        """
        async with self._lock:
            self._storage = storage
            self.read_only = read_only
            self.started = True
            for config in await self._load_table(storage):
                await self._open_device(config)
            self._recompute()
            self._ensure_ticker()

    async def _load_table(self, storage: Storage) -> list[DeviceConfig]:
        raw = await storage.get(TABLE_KEY)
        rows = orjson.loads(raw)["entries"] if raw else []
        configs = [DeviceConfig.from_json(row) for row in rows]
        if configs:
            try:
                await self._ensure_signer()
            except StrongroomError as exc:  # a standby that cannot read it: checkpoints fail
                log.error("audit signing key not available: %s", _describe(exc))
        return configs

    async def _open_device(self, config: DeviceConfig) -> None:
        self._configs[config.path] = config
        try:
            device = build_device(config, self._env, audit_directory=self.audit_directory)
        except InvalidRequest as exc:
            log.error("audit device %s cannot be used: %s", config.path, exc)
            return
        if device.common.log_raw:
            log.warning(LOG_RAW_WARNING, config.path)
        state = None
        if not self.read_only:
            saved = await self._require_storage().get(CHAIN_PREFIX + config.uuid)
            state = ChainState.from_json(orjson.loads(saved)) if saved else None
        if state is not None and state.chain_id and host_of(state.chain_id) != host_of(writer_id()):
            # the saved head is another host's chain, in that host's file: a new active on
            # another node starts a chain of its own rather than fork that one
            state = None
        try:
            await device.open(state)
        except Exception as exc:
            log.error("audit device %s could not open: %s", config.path, _describe(exc))
        self._devices[config.path] = device
        if isinstance(device, FileDevice):
            await self._adopt_dead(device)

    async def _dead_writer(self, device: FileDevice) -> bool:
        try:
            return await device.dead_writer_seen()
        except OSError as exc:
            log.error("audit device %s: looking for dead writers: %s", device.path, _describe(exc))
            return False

    async def _adopt_dead(self, device: FileDevice) -> None:
        """Close the unsigned tails left in the device's file by this host's dead writers
        (a worker or standby killed uncleanly), except the chain whose head is saved
        behind the barrier: that one is the active's to continue (audit/adopt.py)."""
        try:
            saved = await self._require_storage().get(CHAIN_PREFIX + device.config.uuid)
            owned = {str(orjson.loads(saved).get("chain", ""))} if saved else set()
            for adopted in await device.adopt_dead(owned):
                log.warning(
                    "audit device %s: closed chain %s of a writer that died uncleanly: a "
                    "checkpoint marks its last %d line(s) as recovered",
                    device.path,
                    adopted.chain,
                    adopted.lines,
                )
        except Exception as exc:
            log.error(
                "audit device %s: dead writers' chains not closed: %s", device.path, _describe(exc)
            )

    async def reload(self) -> None:
        """An HA standby follows the active's table (the change feed saw ``core/audit``
        change): devices enabled since open with a chain of this process's own, devices
        disabled close (after a final checkpoint), the others carry on untouched."""
        async with self._lock:
            storage = self._require_storage()
            wanted = {config.path: config for config in await self._load_table(storage)}
            for path, config in list(self._configs.items()):
                if wanted.get(path, None) is None or wanted[path].uuid != config.uuid:
                    del self._configs[path]
                    device = self._devices.pop(path, None)
                    if device is not None:
                        await device.close()
                    log.info("audit device %s closed (disabled on the active)", path)
            for path, config in wanted.items():
                if path not in self._configs:
                    await self._open_device(config)
                    log.info("audit device %s opened (enabled on the active)", path)
            self._recompute()
            self._ensure_ticker()

    async def stop(self) -> None:
        """At seal: final checkpoints, chain state persisted, every device closed."""
        async with self._lock:
            self.enabled = False
            ticker, self._ticker = self._ticker, None
            if ticker is not None:
                ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker
            devices = list(self._devices.values())
            for device in devices:
                await device.close()
            if self._persisting:
                await asyncio.gather(*self._persisting.values(), return_exceptions=True)
            for device in devices:
                try:
                    await self._persist_now(device, closed=True)
                except Fenced:
                    # a demoted active: its final checkpoint is in the file (written
                    # before the lock was released); its successor continues from there
                    log.info(
                        "audit device %s: chain head not saved (no longer active); the final "
                        "checkpoint is in the log, where the next active continues the chain",
                        device.path,
                    )
                except Exception as exc:
                    log.error("audit device %s: chain state not saved: %s", device.path, exc)
            self._devices.clear()
            self._configs.clear()
            self._storage = None
            self._signer = None
            self.started = False

    async def _tick_loop(self) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(_TICK)
            ticks += 1
            if ticks % _ADOPT_EVERY == 0:
                for device in list(self._devices.values()):
                    if isinstance(device, FileDevice) and await self._dead_writer(device):
                        await self._adopt_dead(device)
            for device in list(self._devices.values()):
                try:
                    await device.tick()
                except Exception as exc:
                    log.error("audit device %s: checkpoint timer: %s", device.path, _describe(exc))

    async def reopen(self) -> None:
        """SIGHUP: every device closes and reopens its sink (log rotation)."""
        for device in list(self._devices.values()):
            await device.reopen()
        log.info("audit devices reopened")

    # ----- the device table ------------------------------------------------------------
    def _require_storage(self) -> Storage:
        if self._storage is None:
            raise Sealed()
        return self._storage

    async def _save_table(self, configs: Mapping[str, DeviceConfig]) -> None:
        rows = [config.to_json() for config in configs.values()]
        await self._require_storage().put(TABLE_KEY, orjson.dumps({"entries": rows}))

    async def enable(
        self,
        path: str,
        device_type: str,
        *,
        description: str = "",
        options: Mapping[str, str] | None = None,
        local: bool = False,
    ) -> None:
        """Enable a device at ``path`` (canonical, ending in ``/``).

        Raises:
            InvalidRequest: path in use, bad type or options, or the sink cannot be written.
        """
        async with self._lock:
            storage = self._require_storage()
            if path in self._configs:
                raise InvalidRequest(f"path already in use: {path}")
            config = DeviceConfig(
                path=path,
                type=device_type,
                uuid=str(uuid.uuid4()),
                salt=secrets.token_bytes(SALT_SIZE),
                description=description,
                options=dict(options or {}),
                local=local,
            )
            device = build_device(config, self._env, audit_directory=self.audit_directory)
            self._check_unique_file(device)
            await self._ensure_signer()
            try:
                await device.open(None)
            except OSError as exc:
                detail = exc.strerror or type(exc).__name__
                raise InvalidRequest(f"audit device {path} cannot be written: {detail}") from None
            except TimeoutError:
                raise InvalidRequest(f"audit device {path} cannot be reached") from None
            try:
                await self._save_table({**self._configs, path: config})
                snapshot = device.snapshot()
                if snapshot is not None:
                    await storage.put(CHAIN_PREFIX + config.uuid, orjson.dumps(snapshot.to_json()))
            except BaseException:
                await device.close()
                raise
            self._configs[path] = config
            self._devices[path] = device
            self._recompute()
            self._ensure_ticker()
            if device.common.log_raw:
                log.warning(LOG_RAW_WARNING, path)
            log.info("enabled audit device %s (%s)", path, device_type)

    def _check_unique_file(self, device: Device) -> None:
        if not isinstance(device, FileDevice) or device.file_path in ("stdout", "discard"):
            return
        for other in self._devices.values():
            if isinstance(other, FileDevice) and other.file_path == device.file_path:
                raise InvalidRequest(f"file_path is already used by audit device {other.path}")

    async def disable(self, path: str) -> bool:
        """Disable the device at ``path`` (after a final checkpoint). False if none."""
        async with self._lock:
            config = self._configs.get(path)
            if config is None:
                return False
            remaining = {p: c for p, c in self._configs.items() if p != path}
            await self._save_table(remaining)
            self._configs = remaining
            device = self._devices.pop(path, None)
            self._recompute()
            if device is not None:
                await device.close()
                task = self._persisting.get(config.uuid)
                if task is not None:
                    await asyncio.gather(task, return_exceptions=True)
            await self._require_storage().delete(CHAIN_PREFIX + config.uuid)
            log.info("disabled audit device %s", path)
            return True

    def describe(self) -> dict[str, dict[str, Any]]:
        """``sys/audit``: path → {type, description, options, local, path}."""
        return {path: config.describe() for path, config in sorted(self._configs.items())}

    def hash(self, path: str, value: str) -> str:
        """``sys/audit-hash``: the device's HMAC of ``value``.

        Raises:
            InvalidRequest: no device at ``path``.
        """
        config = self._configs.get(path)
        if config is None:
            raise InvalidRequest(f"unknown audit backend {path}")
        return Salt(config.salt).hmac(value)

    def log_file(self, path: str) -> tuple[str, bytes | None]:
        """(file, line prefix) of the file device at ``path``, for sys/audit-verify and
        sys/audit-search (the web UI's audit screen).

        Raises:
            InvalidRequest: no device at ``path``, or not a file device writing a file.
        """
        device = self._devices.get(path)
        if device is None:
            raise InvalidRequest(f"unknown audit backend {path}")
        file_path = str(getattr(device, "file_path", ""))
        if device.kind != "file" or file_path in ("", "stdout", "discard"):
            raise InvalidRequest(f"audit device {path} does not write a local file")
        prefix = device.common.prefix
        return file_path, prefix.encode() if prefix else None

    # ----- signing key -----------------------------------------------------------------
    def _current_signer(self) -> Signer:
        if self._signer is None:
            raise InternalError("audit signing key not loaded")
        return self._signer

    async def _ensure_signer(self) -> Signer:
        async with self._signer_lock:
            if self._signer is not None:
                return self._signer
            storage = self._require_storage()
            raw = await storage.get(SIGNING_KEY)
            if raw is not None:
                signer = Signer.from_private_bytes(base64.b64decode(orjson.loads(raw)["ed25519"]))
            elif self.read_only:
                # a standby cannot create it: the request goes to the active, which does
                raise Fenced("the audit signing key is not stored yet: the active creates it")
            else:
                signer = Signer.generate()
                record = {
                    "ed25519": base64.b64encode(signer.private_bytes()).decode(),
                    "created": format_time(self._clock.now()),
                }
                await storage.put(SIGNING_KEY, orjson.dumps(record))
                log.info("generated the audit checkpoint signing key %s", signer.key_id)
            self._signer = signer
            return signer

    async def public_key(self) -> tuple[str, str]:
        """(PEM, key_id) of the checkpoint signing key, generating it on first use."""
        signer = await self._ensure_signer()
        return signer.public_pem(), signer.key_id

    # ----- chain state persistence -----------------------------------------------------
    def _schedule_persist(self, device: Device) -> None:
        key = device.config.uuid
        if key in self._persisting:
            self._persist_again.add(key)
            return
        task = asyncio.get_running_loop().create_task(self._persist_loop(device))
        self._persisting[key] = task

    async def _persist_loop(self, device: Device) -> None:
        key = device.config.uuid
        try:
            while True:
                self._persist_again.discard(key)
                await self._persist_now(device)
                if key not in self._persist_again:
                    return
        except Exception as exc:
            log.error("audit device %s: chain state not saved: %s", device.path, _describe(exc))
        finally:
            self._persisting.pop(key, None)

    async def _persist_now(self, device: Device, *, closed: bool = False) -> None:
        # a closed device's head is its final checkpoint: saved, a restart has no tail to
        # recover
        snapshot = device.snapshot_any() if closed else device.snapshot()
        storage = self._storage
        if snapshot is None or storage is None or device.path not in self._configs:
            return
        await device.sync()  # the lines the state vouches for are on disk first
        if self.read_only:
            return  # a standby's chain is its own: no saved head (it cannot write anyway)
        await storage.put(CHAIN_PREFIX + device.config.uuid, orjson.dumps(snapshot.to_json()))

    # ----- recording -------------------------------------------------------------------
    async def log_request(self, event: AuditEvent) -> Ticket:
        """Write a request entry to every device.

        Returns:
            The devices that recorded it (its response entry goes to them).

        Raises:
            InternalError: devices are enabled and none recorded it (fail closed).
        """
        time = entry_time(self._clock.now())
        recorded: list[tuple[Device, dict[str, Any]]] = []
        for device in tuple(self._devices.values()):
            try:
                recorded.append((device, await device.record_event("request", event, time)))
            except Exception as exc:
                self._failed(device, exc)
        if not recorded and self.enabled:
            self.refused += 1
            log.error("%s (path %s)", AUDIT_REQUEST_FAILED, event.request.path)
            raise InternalError(AUDIT_REQUEST_FAILED)
        return tuple(recorded)

    async def log_response(self, ticket: Ticket, event: AuditEvent) -> None:
        """Write a response entry to the devices that recorded the request (and are still
        enabled: a device disabled or sealed meanwhile is skipped, not failed).

        Raises:
            InternalError: none of them recorded it.
        """
        devices = [(d, entry) for d, entry in ticket if not d.retired]
        if not devices:
            return
        time = entry_time(self._clock.now())
        recorded = 0
        for device, request_entry in devices:
            try:
                await device.record_event("response", event, time, request_entry)
                recorded += 1
            except Exception as exc:
                self._failed(device, exc)
        if not recorded:
            self.refused += 1
            log.error("%s (path %s)", AUDIT_RESPONSE_FAILED, event.request.path)
            raise InternalError(AUDIT_RESPONSE_FAILED)

    async def denied(self, ticket: Ticket, event: AuditEvent) -> None:
        """Count a permission-denied request for the devices' alert rules."""
        auth = event.auth
        if auth is not None and auth.entity_id:
            kind, key = "entity_id", auth.entity_id
        elif auth is not None and auth.accessor:
            kind, key = "accessor", auth.accessor
        else:
            kind, key = "remote_address", event.request.connection.remote_addr or "unknown"
        for device, _ in ticket:
            if device.denied is not None and not device.retired:
                await device.observe_denied(kind, key)

    def _failed(self, device: Device, exc: BaseException) -> None:
        if device.retired:
            return
        log.error("audit device %s failed to record an entry: %s", device.path, _describe(exc))

    def metrics(self) -> dict[str, Any]:
        """In-memory counters: refused requests, and per device entries, failures,
        checkpoints, alerts, and whether it is open."""
        devices: dict[str, Any] = {}
        for path in self._configs:
            device = self._devices.get(path)
            if device is None:
                devices[path] = {"open": False, "usable": False}
            else:
                devices[path] = {**device.counters, "open": device.is_open, "usable": True}
        return {"refused": self.refused, "devices": devices}


# ----- one request's trail ----------------------------------------------------------
def error_text(exc: BaseException) -> str:
    """The ``error`` of an entry. Our exceptions carry descriptions, never values; anything
    else is reported as Vault's generic ``internal error``."""
    if isinstance(exc, StrongroomError):
        return "; ".join(exc.messages) or type(exc).__name__
    return "internal error"


class Trail:
    """One request's passage through the broker.

    Core's request road creates a Trail only when a device is enabled, fills in what it
    learns as it goes (the mount, the caller's identity, the effective operation) and calls
    :meth:`record_request` just before the backend runs (and before a limited-use token is
    spent: if no device records it, this raises and the request has no effect), then
    :meth:`succeeded` with the response or :meth:`failed` with the exception. A request
    refused before the backend (bad token, permission denied, no route) gets its request
    entry in :meth:`failed`, carrying the error, then its response entry: every request that
    reaches core leaves exactly one request and one response entry on each device.
    """

    __slots__ = ("_broker", "_refused", "_ticket", "auth", "login", "mount", "operation", "request")

    def __init__(self, broker: AuditBroker, request: Request) -> None:
        self._broker = broker
        self.request = request
        self.operation = request.operation
        self.auth: AuditAuth | None = None
        self.mount: MountInfo | None = None
        self.login: AuditAuth | None = None
        self._ticket: Ticket | None = None
        self._refused = False

    def _event(self, response: Response | None = None, error: str = "") -> AuditEvent:
        return AuditEvent(
            request=self.request,
            operation=self.operation,
            auth=self.auth,
            mount=self.mount,
            response=response,
            error=error,
            login=self.login,
            headers=self._headers(),
        )

    def _headers(self) -> tuple[tuple[str, str, bool], ...]:
        config = self._broker.request_headers
        if not config:
            return ()
        sent = self.request.headers
        return tuple((name, sent[name], hmac) for name, hmac in config.items() if name in sent)

    async def record_request(self, error: str = "") -> None:
        """Write the request entry.

        Raises:
            InternalError: no device recorded it (fail closed).
        """
        try:
            self._ticket = await self._broker.log_request(self._event(error=error))
        except BaseException:
            self._refused = True
            raise

    async def succeeded(self, response: Response | None) -> None:
        if self._ticket is None:
            await self.record_request()
        await self._broker.log_response(self._ticket or (), self._event(response=response))

    async def failed(self, exc: BaseException) -> None:
        """Entries for a request that raised. Raises InternalError when the entries cannot
        be recorded (the client then sees the audit failure, not the original error)."""
        if self._refused:
            return
        error = error_text(exc)
        if self._ticket is None:
            await self.record_request(error)
        ticket = self._ticket or ()
        event = self._event(error=error)
        await self._broker.log_response(ticket, event)
        if isinstance(exc, PermissionDenied):
            await self._broker.denied(ticket, event)
