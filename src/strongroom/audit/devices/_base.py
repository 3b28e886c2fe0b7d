"""What every audit device shares: its table row, its common options, and the pipeline
format → HMAC → chain → write, with checkpoints and failure accounting.

A device formats each event itself, with its own salt and options (so ``log_raw`` on one
device cannot leak into another's entries), stamps the entry into its own hash chain and
writes one line. A line is committed to the chain only once the sink took all of it; a
failed write raises, counts as a failure, and leaves the chain as it was.

Subclasses implement the sink: ``_open_sink`` (returns the chain state to continue from,
why a link is written, and how many lines were recovered from a file tail), ``_write``,
``_close_sink`` and optionally ``sync`` (make what was written durable; called before the
chain state is persisted after a checkpoint).
"""

from __future__ import annotations

import abc
import asyncio
import base64
import itertools
import logging
import os
import secrets
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from strongroom.audit.alerts import AlertRule, DeniedCounter, Webhook
from strongroom.audit.chain import Chain, ChainState, CheckpointPolicy, Signer, StampedLine
from strongroom.audit.entry import AuditEvent, AuthMemo, EntryKind, FormatOptions, format_entry
from strongroom.audit.hashing import Salt
from strongroom.clock import Clock
from strongroom.errors import InvalidRequest
from strongroom.framework import format_time, parse_bool, parse_duration, parse_int

__all__ = [
    "COMMON_OPTIONS",
    "CommonOptions",
    "Device",
    "DeviceConfig",
    "DeviceEnv",
    "DeviceUnavailable",
    "host_of",
    "new_chain_id",
    "parse_common",
    "writer_id",
]

log = logging.getLogger("strongroom.audit")

COMMON_OPTIONS = frozenset(
    {
        "format",
        "prefix",
        "log_raw",
        "hmac_accessor",
        "elide_list_responses",
        "checkpoint_entries",
        "checkpoint_interval",
        "alert_denied_threshold",
        "alert_window",
        "alert_webhook",
        "fallback",
        "filter",
        "exclude",
    }
)
_REOPEN_EVERY = 1.0  # seconds between attempts to reopen a device that could not open


_writer: tuple[int, str] | None = None
_chains = itertools.count(1)


def writer_id() -> str:
    """This process's writer id for new hash chains: host name, process id and a random
    nonce drawn once per process (a forked worker draws its own), so two writers, on one
    node or several, never share a chain id."""
    global _writer
    pid = os.getpid()
    if _writer is None or _writer[0] != pid:
        host = socket.gethostname().replace('"', "").replace("\\", "")[:64] or "host"
        _writer = (pid, f"{host}-{pid}-{secrets.token_hex(4)}")
    return _writer[1]


def host_of(chain_id: str) -> str:
    """The host name in a chain id (``host-pid-nonce/N``); "" for a legacy chain."""
    writer = chain_id.split("/", 1)[0]
    parts = writer.rsplit("-", 2)
    return parts[0] if len(parts) == 3 else ""


def new_chain_id() -> str:
    """A new chain's id: this process's writer id and a per-process chain number."""
    return f"{writer_id()}/{next(_chains)}"


class DeviceUnavailable(Exception):
    """The device is not open (closed, disabled, or could not open). Never holds values."""


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    """One row of the audit table, persisted behind the barrier at ``core/audit``."""

    path: str  # "file/"
    type: str
    uuid: str
    salt: bytes = field(repr=False)
    description: str = ""
    options: Mapping[str, str] = field(default_factory=dict)
    local: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "type": self.type,
            "uuid": self.uuid,
            "salt": base64.b64encode(self.salt).decode(),
            "description": self.description,
            "options": dict(self.options),
            "local": self.local,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> DeviceConfig:
        return cls(
            path=str(raw["path"]),
            type=str(raw["type"]),
            uuid=str(raw["uuid"]),
            salt=base64.b64decode(raw["salt"]),
            description=str(raw.get("description", "")),
            options={str(k): str(v) for k, v in (raw.get("options") or {}).items()},
            local=bool(raw.get("local", False)),
        )

    def describe(self) -> dict[str, Any]:
        """The shape ``sys/audit`` lists for one device (Vault's)."""
        return {
            "type": self.type,
            "description": self.description,
            "options": dict(self.options),
            "local": self.local,
            "path": self.path,
        }


@dataclass(frozen=True, slots=True)
class CommonOptions:
    log_raw: bool = False
    hmac_accessor: bool = True
    prefix: str = ""
    elide_list_responses: bool = False
    policy: CheckpointPolicy = field(default_factory=CheckpointPolicy)
    alert: AlertRule | None = None


def _check_prefix(prefix: str) -> str:
    # A prefix is written before every line: it must not be able to start a new line (and
    # forge entries), look like JSON (verify and search find the entry at the first "{"),
    # or make the file look like a script.
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in prefix):
        raise InvalidRequest("prefix must not contain control characters")
    if "{" in prefix:
        raise InvalidRequest("prefix must not contain '{'")
    if prefix.startswith("#!"):
        raise InvalidRequest("prefix must not start with '#!'")
    if len(prefix) > 256:
        raise InvalidRequest("prefix is too long (256 characters at most)")
    return prefix


def parse_common(options: Mapping[str, str], device_keys: frozenset[str]) -> CommonOptions:
    """Validate a device's options (common ones here; ``device_keys`` are the type's own).

    Raises:
        InvalidRequest: an unknown key or a bad value (naming the key, never the value).
    """
    unknown = set(options) - COMMON_OPTIONS - device_keys
    if unknown:
        raise InvalidRequest(f"unknown audit device options: {', '.join(sorted(unknown))}")
    fmt = options.get("format", "json") or "json"
    if fmt != "json":
        raise InvalidRequest('format: only "json" is supported')
    for unsupported in ("filter", "exclude", "fallback"):
        if options.get(unsupported) not in (None, "", "false"):
            raise InvalidRequest(f"{unsupported}: not supported")
    entries = parse_int(options.get("checkpoint_entries", 1000), "checkpoint_entries")
    if not 1 <= entries <= 1_000_000:
        raise InvalidRequest("checkpoint_entries must be between 1 and 1000000")
    interval = parse_duration(options.get("checkpoint_interval", 60), "checkpoint_interval")
    if not 1 <= interval <= 86400:
        raise InvalidRequest("checkpoint_interval must be between 1s and 24h")
    alert = None
    if options.get("alert_denied_threshold"):
        alert = AlertRule(
            threshold=parse_int(options["alert_denied_threshold"], "alert_denied_threshold"),
            window=float(parse_duration(options.get("alert_window", 60), "alert_window")),
            webhook=options.get("alert_webhook", ""),
        )
    elif options.get("alert_webhook") or options.get("alert_window"):
        raise InvalidRequest("alert_window and alert_webhook need alert_denied_threshold")
    return CommonOptions(
        log_raw=parse_bool(options.get("log_raw", False), "log_raw"),
        hmac_accessor=parse_bool(options.get("hmac_accessor", True), "hmac_accessor"),
        prefix=_check_prefix(options.get("prefix", "")),
        elide_list_responses=parse_bool(
            options.get("elide_list_responses", False), "elide_list_responses"
        ),
        policy=CheckpointPolicy(entries, float(interval)),
        alert=alert,
    )


@dataclass(frozen=True, slots=True)
class DeviceEnv:
    """What the broker lends a device."""

    clock: Clock
    signer: Callable[[], Signer]
    on_checkpoint: Callable[[Device], None]


class Device(abc.ABC):
    """One enabled audit device. All writes go through one lock, so the chain order is the
    order of lines in the sink even when the sink awaits (sockets)."""

    kind: ClassVar[str] = ""
    OPTIONS: ClassVar[frozenset[str]] = frozenset()
    # True when ``_write`` never awaits anything (so a record cannot interleave with another)
    SYNC_WRITES: ClassVar[bool] = False

    def __init__(self, config: DeviceConfig, env: DeviceEnv) -> None:
        self.config = config
        self.path = config.path
        self.common = parse_common(config.options, self.OPTIONS)
        self.salt = Salt(config.salt)
        self.format = FormatOptions(
            hmac_accessor=self.common.hmac_accessor,
            elide_list_responses=self.common.elide_list_responses,
        )
        self._env = env
        self._lock = asyncio.Lock()
        self.chain: Chain | None = None
        self.is_open = False
        self.retired = False
        self._saved: ChainState | None = None
        self._pending_since = 0.0
        self._next_attempt = 0.0
        self._auth_memo: AuthMemo = {}
        self.counters = {"entries": 0, "failures": 0, "checkpoints": 0, "alerts": 0}
        self.denied = DeniedCounter(self.common.alert) if self.common.alert else None
        webhook = self.common.alert.webhook if self.common.alert else ""
        self.webhook = Webhook(webhook) if webhook else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(path={self.path!r})"

    # ----- sink hooks ------------------------------------------------------------------
    @abc.abstractmethod
    async def _open_sink(
        self, state: ChainState | None, *, recover: bool
    ) -> tuple[ChainState, str, int]:
        """Open the sink. Returns (state to continue, link reason, lines recovered)."""

    @abc.abstractmethod
    async def _write(self, data: bytes) -> int:
        """Write one whole line or raise; returns the bytes written."""

    @abc.abstractmethod
    async def _close_sink(self) -> None: ...

    async def sync(self) -> None:  # noqa: B027 (optional hook: most sinks have nothing to sync)
        """Make every line written so far durable (before chain state is persisted)."""

    # ----- lifecycle -------------------------------------------------------------------
    async def open(self, state: ChainState | None) -> None:
        """Open (at enable or unseal), recovering the chain from ``state`` and the sink.

        Raises:
            OSError, InvalidRequest: the sink cannot be opened or written.
        """
        async with self._lock:
            self._saved = state
            await self._open_locked(state, recover=True)

    async def _open_locked(self, state: ChainState | None, *, recover: bool) -> None:
        state, reason, recovered = await self._open_sink(state, recover=recover)
        if state.seq == 0 and not state.chain_id:
            state.chain_id = new_chain_id()  # a new chain: this writer's own
        self.chain = Chain(state, self.common.prefix)
        try:
            if self.chain.uncovered:
                # Lines pending when the server stopped (or recovered from the file tail)
                # are covered before the link, which starts a new checkpoint range.
                await self._checkpoint_locked(recovered=recovered)
            await self._emit(self.chain.link_entry(self._now(), self.common.policy, reason))
        except BaseException:
            await self._close_sink()
            raise
        self.is_open = True
        self._saved = None

    async def close(self) -> None:
        """Final checkpoint, then close. A closed device refuses writes until reopened."""
        async with self._lock:
            if self.is_open:
                await self._try_checkpoint()
                self.is_open = False
                await self._close_sink()
            self.retired = True
        if self.webhook is not None:
            await self.webhook.aclose()

    async def reopen(self) -> None:
        """SIGHUP: checkpoint, close and open the sink again (log rotation); a new file
        starts with a link to the old one's last line."""
        async with self._lock:
            if self.retired:
                return
            state = self._saved
            if self.is_open and self.chain is not None:
                await self._try_checkpoint()
                state = self.chain.state
                self.is_open = False
                await self._close_sink()
            try:
                await self._open_locked(state, recover=state is self._saved)
            except Exception as exc:
                self._saved = state
                log.error("audit device %s could not reopen: %s", self.path, _describe(exc))

    def snapshot(self) -> ChainState | None:
        if self.chain is not None and self.is_open:
            return self.chain.state.copy()
        return None

    # ----- writing ---------------------------------------------------------------------
    def _now(self) -> str:
        return format_time(self._env.clock.now())

    async def _emit(self, entry: dict[str, Any]) -> None:
        chain = self.chain
        if chain is None:
            raise DeviceUnavailable("audit device is not open")
        line = chain.stamp(entry)
        written = await self._write(line.data)
        self._commit(chain, line, written)

    def _commit(self, chain: Chain, line: StampedLine, written: int) -> None:
        first_pending = chain.uncovered == 0
        chain.commit(line, written)
        if first_pending and chain.uncovered:
            self._pending_since = self._env.clock.monotonic()

    def _write_now(self, data: bytes) -> int:
        """Sinks with ``SYNC_WRITES`` write one whole line here, without suspending."""
        raise NotImplementedError

    def _emit_now(self, entry: dict[str, Any]) -> None:
        chain = self.chain
        if chain is None:
            raise DeviceUnavailable("audit device is not open")
        line = chain.stamp(entry)
        self._commit(chain, line, self._write_now(line.data))

    def _record_now(self, entry: dict[str, Any]) -> None:
        """The synchronous path of :meth:`record` (see there)."""
        try:
            self._emit_now(entry)
        except Exception:
            self.counters["failures"] += 1
            raise
        self.counters["entries"] += 1
        chain = self.chain
        if chain is not None and chain.uncovered >= self.common.policy.entries:
            try:
                self._emit_now(self._checkpoint_entry(chain))
            except Exception as exc:
                self.counters["failures"] += 1
                log.error(
                    "audit device %s could not write a checkpoint: %s", self.path, _describe(exc)
                )
                return
            self._checkpointed()

    def _fast(self) -> bool:
        # A sink whose writes never suspend (a file, syslog), open, and nobody holding the
        # lock: stamp-write-commit (and a due checkpoint) then run without yielding to the
        # event loop, so they are as atomic as under the lock, without its cost.
        return self.SYNC_WRITES and self.is_open and not self._lock.locked()

    async def record_event(
        self,
        kind: EntryKind,
        event: AuditEvent,
        time: str,
        request_entry: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Format ``event`` for this device and write it (the hot path). Returns the entry
        (a response entry reuses the blocks of this device's request entry)."""
        salt = None if self.common.log_raw else self.salt
        entry = format_entry(kind, event, salt, self.format, time, request_entry, self._auth_memo)
        if self._fast():
            self._record_now(entry)
        else:
            async with self._lock:
                await self._record_locked(entry)
        return entry

    async def record(self, entry: dict[str, Any]) -> None:
        """Write one entry this device owns (it is stamped in place).

        Raises:
            DeviceUnavailable, OSError, TimeoutError: the line did not reach the sink.
        """
        if self._fast():
            self._record_now(entry)
            return
        async with self._lock:
            await self._record_locked(entry)

    async def _record_locked(self, entry: dict[str, Any]) -> None:
        try:
            if not self.is_open:
                await self._retry_open()
            await self._emit(entry)
        except Exception:
            self.counters["failures"] += 1
            raise
        self.counters["entries"] += 1
        chain = self.chain
        if chain is not None and chain.uncovered >= self.common.policy.entries:
            await self._try_checkpoint()

    async def _retry_open(self) -> None:
        """A device that could not open (or lost its sink) retries, at most once a second."""
        if self.retired:
            raise DeviceUnavailable("audit device is closed")
        now = self._env.clock.monotonic()
        if now < self._next_attempt:
            raise DeviceUnavailable("audit device is not open")
        self._next_attempt = now + _REOPEN_EVERY
        state = self._saved if self._saved is not None else self.snapshot_any()
        try:
            await self._open_locked(state, recover=state is self._saved)
        except Exception as exc:
            self._saved = state
            raise DeviceUnavailable(f"audit device could not open: {_describe(exc)}") from None

    def snapshot_any(self) -> ChainState | None:
        return self.chain.state.copy() if self.chain is not None else None

    def _checkpoint_entry(self, chain: Chain, *, recovered: int = 0) -> dict[str, Any]:
        return chain.checkpoint_entry(
            self._env.signer(), self._now(), self.common.policy, recovered=recovered
        )

    def _checkpointed(self) -> None:
        self.counters["checkpoints"] += 1
        self._env.on_checkpoint(self)

    async def _checkpoint_locked(self, *, recovered: int = 0) -> None:
        chain = self.chain
        if chain is None or not chain.uncovered:
            return
        await self._emit(self._checkpoint_entry(chain, recovered=recovered))
        self._checkpointed()

    async def _try_checkpoint(self) -> None:
        try:
            await self._checkpoint_locked()
        except Exception as exc:
            self.counters["failures"] += 1
            log.error("audit device %s could not write a checkpoint: %s", self.path, _describe(exc))

    async def tick(self) -> None:
        """Called about once a second: a checkpoint once the oldest pending line is due."""
        chain = self.chain
        if not self.is_open or chain is None or not chain.uncovered:
            return
        if self._env.clock.monotonic() - self._pending_since < self.common.policy.interval:
            return
        async with self._lock:
            if self.is_open:
                await self._try_checkpoint()

    # ----- alerts ----------------------------------------------------------------------
    async def observe_denied(self, kind: str, key: str) -> None:
        """Count one permission-denied request; write an alert (and post it) past the rule."""
        if self.denied is None:
            return
        alert = self.denied.observe(kind, key, self._env.clock.monotonic())
        if alert is None:
            return
        if kind == "accessor" and self.common.hmac_accessor and not self.common.log_raw:
            alert["key"] = self.salt.hmac(key)
        entry = {"time": self._now(), "type": "alert", "seq": 0, "prev_hash": "", "alert": alert}
        try:
            await self.record(entry)
            self.counters["alerts"] += 1
        except Exception as exc:
            log.error("audit device %s could not write an alert: %s", self.path, _describe(exc))
        log.warning(
            "audit alert on %s: more than %d permission-denied requests from one %s in %gs",
            self.path,
            alert["threshold"],
            kind,
            alert["window_seconds"],
        )
        if self.webhook is not None:
            self.webhook.post({"device": self.path, "time": entry["time"], "alert": alert})


def _describe(exc: BaseException) -> str:
    """An error's class and errno text: never a value (OSError text holds only the path)."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    if isinstance(exc, InvalidRequest | DeviceUnavailable):
        return str(exc)
    return type(exc).__name__
