"""The client-count activity log behind sys/internal/counters/activity*.

A *client* is what Vault counts: an identity entity, or, for a token without one, the set
of its policies (Vault's non-entity client ID). The request road calls :meth:`note` after
the token lookup; a client seen for the first time this month (UTC) is recorded once::

    sys/counters/activity/<YYYY-MM>/<sha256(client)>  {client_id, client_type, mount_path,
                                                        mount_accessor, timestamp}
    sys/counters/config                                {enabled, retention_months}

What costs per request: a month check and one set lookup (the clients seen this month in
this process); only a first sighting writes. Records older than ``retention_months`` are
dropped by :meth:`prune` (at the first record of each month).

A performance standby (a separate node or a worker) counts the clients of the requests it
serves too, but cannot write storage: a first sighting there goes to an outbox
(:meth:`note` with ``relay``), which the standby's echo to the active carries over the
cluster channel (:meth:`outgoing`, ``core/cluster.py``); the active stores what it
receives (:meth:`receive`), once per client and month as for its own. An outbox the active
could not take is kept for the next echo (at most :data:`MAX_OUTBOX` records; past that,
sightings are dropped and counted in :attr:`ActivityLog.dropped`). Departures from Vault: a
client is attributed to the mount that made its token, and the namespace is always the
root one.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import orjson

from strongroom.clock import Clock
from strongroom.errors import InvalidRequest
from strongroom.logical import Storage

__all__ = ["ECHO_BATCH", "MAX_OUTBOX", "ActivityLog", "ActivityRecord"]

_CONFIG: Final = "config"
_PREFIX: Final = "activity/"
_MAX_SEEN: Final = 1_000_000
DEFAULT_RETENTION: Final = 48
MAX_OUTBOX: Final = 10_000  # a standby's sightings waiting for the active
ECHO_BATCH: Final = 400  # records per echo (~60 KiB)
_ZERO = {
    "acme_clients": 0,
    "clients": 0,
    "distinct_entities": 0,
    "entity_clients": 0,
    "non_entity_clients": 0,
    "non_entity_tokens": 0,
    "secret_syncs": 0,
}


@dataclass(frozen=True, slots=True)
class ActivityRecord:
    client_id: str
    client_type: str  # "entity" or "non-entity-token"
    mount_path: str
    mount_accessor: str
    timestamp: int


def month_of(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m")


def month_start(month: str) -> datetime.datetime:
    return datetime.datetime.strptime(month + "-01", "%Y-%m-%d").replace(tzinfo=datetime.UTC)


def _next_month(month: str) -> str:
    year, mon = int(month[:4]), int(month[5:])
    return f"{year + mon // 12:04d}-{mon % 12 + 1:02d}"


def _counts(records: list[ActivityRecord]) -> dict[str, int]:
    entities = sum(1 for r in records if r.client_type == "entity")
    tokens = len(records) - entities
    return {
        **_ZERO,
        "clients": len(records),
        "distinct_entities": entities,
        "entity_clients": entities,
        "non_entity_clients": tokens,
        "non_entity_tokens": tokens,
    }


def _namespaces(records: list[ActivityRecord]) -> list[dict[str, Any]]:
    if not records:
        return []
    by_mount: dict[str, list[ActivityRecord]] = {}
    for record in records:
        by_mount.setdefault(record.mount_path, []).append(record)
    mounts = [
        {"mount_path": path, "counts": _counts(group)} for path, group in sorted(by_mount.items())
    ]
    return [
        {
            "namespace_id": "root",
            "namespace_path": "",
            "counts": _counts(records),
            "mounts": mounts,
        }
    ]


class ActivityLog:
    """Per-month distinct clients in ``storage`` (a barrier view of ``sys/counters/``)."""

    def __init__(self, storage: Storage, clock: Clock) -> None:
        self._storage = storage
        self._clock = clock
        self._config: dict[str, Any] | None = None
        self._month = ""
        self._month_from = 0.0
        self._month_to = 0.0
        self._seen: set[object] = set()
        self._prune_due = False
        self._outbox: list[ActivityRecord] = []
        self.dropped = 0

    # -- configuration ---------------------------------------------------------------------
    async def config(self) -> dict[str, Any]:
        if self._config is None:
            raw = await self._storage.get(_CONFIG)
            stored = orjson.loads(raw) if raw else {}
            self._config = {
                "enabled": stored.get("enabled", "default"),
                "retention_months": int(stored.get("retention_months", DEFAULT_RETENTION)),
            }
        return self._config

    def enabled(self) -> bool:
        return self._config is None or self._config["enabled"] in ("default", "enable")

    async def write_config(self, enabled: str | None, retention_months: int | None) -> None:
        config = dict(await self.config())
        if enabled is not None:
            if enabled not in ("default", "enable", "disable"):
                raise InvalidRequest('enabled must be "default", "enable" or "disable"')
            config["enabled"] = enabled
        if retention_months is not None:
            if retention_months < DEFAULT_RETENTION:
                raise InvalidRequest(f"retention_months must be at least {DEFAULT_RETENTION}")
            config["retention_months"] = retention_months
        await self._storage.put(_CONFIG, orjson.dumps(config))
        self._config = config

    def describe(self, config: dict[str, Any]) -> dict[str, Any]:
        enabled = config["enabled"]
        shown = {"default": "default-enabled", "enable": "enable", "disable": "disable"}
        return {
            "default_report_months": 12,
            "enabled": shown.get(enabled, enabled),
            "minimum_retention_months": DEFAULT_RETENTION,
            "queries_available": True,
            "reporting_enabled": False,
            "retention_months": config["retention_months"],
        }

    # -- recording (the request road) ------------------------------------------------------
    def note(
        self,
        entity_id: str,
        policies: tuple[str, ...],
        creation_path: str,
        mount_of: Callable[[str], tuple[str, str]],
        *,
        relay: bool = False,
    ) -> Awaitable[None] | None:
        """Record the client of a request: None when it was already seen this month, or
        when ``relay`` (a standby): its first sighting then waits in the outbox."""
        key: object = entity_id or policies
        now = self._clock.now()
        if not self._month_from <= now < self._month_to:
            self._roll(now)
        if key in self._seen:
            return None
        month = self._month
        if len(self._seen) < _MAX_SEEN:
            self._seen.add(key)
        if entity_id:
            client_id, kind = entity_id, "entity"
        else:
            digest = hashlib.sha256(("root\x00" + "\x00".join(sorted(policies))).encode())
            client_id, kind = digest.hexdigest()[:36], "non-entity-token"
        mount_path, accessor = mount_of(creation_path)
        record = ActivityRecord(client_id, kind, mount_path, accessor, int(now))
        if relay:
            if len(self._outbox) < MAX_OUTBOX:
                self._outbox.append(record)
            else:
                self.dropped += 1
            return None
        return self._store(month, record)

    # -- a standby's sightings, relayed to the active ---------------------------------------
    def outgoing(self) -> list[dict[str, Any]]:
        """Take up to :data:`ECHO_BATCH` waiting sightings for an echo (give them back with
        :meth:`requeue` if it fails)."""
        batch, self._outbox = self._outbox[:ECHO_BATCH], self._outbox[ECHO_BATCH:]
        return [_record_json(record) for record in batch]

    def requeue(self, records: list[dict[str, Any]]) -> None:
        """Sightings an echo could not deliver, back at the head of the outbox."""
        room = max(0, MAX_OUTBOX - len(self._outbox))
        kept = [_record_of(raw) for raw in records[:room]]
        self.dropped += len(records) - len(kept)
        self._outbox = [r for r in kept if r is not None] + self._outbox

    async def receive(self, records: object) -> None:
        """The active stores sightings a standby relayed (each once per client and month).

        Raises:
            ValueError: ``records`` is not a list of activity records (nothing stored).
        """
        if not isinstance(records, list) or len(records) > ECHO_BATCH:
            raise ValueError("activity: expected a list of records")
        parsed = [_record_of(raw) for raw in records]
        if any(record is None for record in parsed):
            raise ValueError("activity: malformed record")
        for record in parsed:
            assert record is not None
            await self._store(month_of(record.timestamp), record)

    async def flush_outbox(self) -> None:
        """A standby promoted to active stores what it had not relayed yet."""
        waiting, self._outbox = self._outbox, []
        for record in waiting:
            await self._store(month_of(record.timestamp), record)

    def _roll(self, now: float) -> None:
        self._month = month_of(now)
        self._month_from = month_start(self._month).timestamp()
        self._month_to = month_start(_next_month(self._month)).timestamp()
        self._seen = set()
        self._prune_due = True

    async def _store(self, month: str, record: ActivityRecord) -> None:
        if (await self.config())["enabled"] == "disable":
            return
        if self._prune_due:
            self._prune_due = False
            await self.prune()
        key = f"{_PREFIX}{month}/{hashlib.sha256(record.client_id.encode()).hexdigest()}"
        if await self._storage.get(key) is None:  # first sighting this month on any node
            await self._storage.put(key, orjson.dumps(_record_json(record)))

    # -- queries ---------------------------------------------------------------------------
    async def month_records(self, month: str) -> list[ActivityRecord]:
        out = []
        for name in await self._storage.list(f"{_PREFIX}{month}/"):
            raw = await self._storage.get(f"{_PREFIX}{month}/{name}")
            if raw is not None:
                out.append(ActivityRecord(**orjson.loads(raw)))
        return out

    def months_between(self, start: float, end: float) -> list[str]:
        months: list[str] = []
        month, last = month_of(start), month_of(end)
        while month <= last and len(months) < 1200:
            months.append(month)
            month = _next_month(month)
        return months

    async def report(self, start: float, end: float) -> dict[str, Any]:
        months = []
        seen: set[str] = set()
        distinct: list[ActivityRecord] = []
        for month in self.months_between(start, end):
            records = await self.month_records(month)
            new = [r for r in records if r.client_id not in seen]
            seen.update(r.client_id for r in new)
            distinct += new
            months.append(
                {
                    "timestamp": _rfc3339(month_start(month)),
                    "counts": _counts(records),
                    "namespaces": _namespaces(records),
                    "new_clients": {"counts": _counts(new), "namespaces": _namespaces(new)},
                }
            )
        return {
            "start_time": _rfc3339(datetime.datetime.fromtimestamp(start, datetime.UTC)),
            "end_time": _rfc3339(datetime.datetime.fromtimestamp(end, datetime.UTC)),
            "by_namespace": _namespaces(distinct),
            "months": months,
            "total": _counts(distinct),
        }

    async def monthly(self) -> dict[str, Any]:
        month = month_of(self._clock.now())
        records = await self.month_records(month)
        counts = _counts(records)
        return {
            **counts,
            "by_namespace": _namespaces(records),
            "months": [
                {
                    "timestamp": _rfc3339(month_start(month)),
                    "counts": counts,
                    "namespaces": _namespaces(records),
                    "new_clients": {"counts": counts, "namespaces": _namespaces(records)},
                }
            ],
        }

    async def export(self, start: float, end: float) -> list[ActivityRecord]:
        seen: set[str] = set()
        out = []
        for month in self.months_between(start, end):
            for record in await self.month_records(month):
                if record.client_id not in seen:
                    seen.add(record.client_id)
                    out.append(record)
        return out

    async def prune(self) -> None:
        """Drop the months older than the retention period."""
        config = await self.config()
        now = datetime.datetime.fromtimestamp(self._clock.now(), datetime.UTC)
        total = now.year * 12 + now.month - 1 - int(config["retention_months"])
        oldest = f"{total // 12:04d}-{total % 12 + 1:02d}"
        for month in await self._storage.list(_PREFIX):
            month = month.rstrip("/")
            if month < oldest:
                for name in await self._storage.list(f"{_PREFIX}{month}/"):
                    await self._storage.delete(f"{_PREFIX}{month}/{name}")


def _record_json(record: ActivityRecord) -> dict[str, Any]:
    return {
        "client_id": record.client_id,
        "client_type": record.client_type,
        "mount_path": record.mount_path,
        "mount_accessor": record.mount_accessor,
        "timestamp": record.timestamp,
    }


def _record_of(raw: object) -> ActivityRecord | None:
    """A relayed record, checked field by field (None when malformed)."""
    if not isinstance(raw, dict):
        return None
    texts = [raw.get(k) for k in ("client_id", "client_type", "mount_path", "mount_accessor")]
    timestamp = raw.get("timestamp")
    if not all(isinstance(t, str) and len(t) <= 1024 for t in texts):
        return None
    if not isinstance(timestamp, int) or isinstance(timestamp, bool) or timestamp < 0:
        return None
    if raw["client_type"] not in ("entity", "non-entity-token") or not raw["client_id"]:
        return None
    return ActivityRecord(
        raw["client_id"], raw["client_type"], raw["mount_path"], raw["mount_accessor"], timestamp
    )


def _rfc3339(when: datetime.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")
