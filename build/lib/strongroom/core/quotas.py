"""Resource quotas: rate limits (token buckets) and lease-count limits, as Vault applies them.

A quota applies to a *scope*: the whole server (``path = ""``), a mount (``secret/``), a
path below a mount (``secret/data/team-a``), optionally narrowed to the logins of one
``role`` of an auth mount. For a request, the most specific quota of each type wins (the
longest matching path; at equal paths a role quota before a role-less one), as in Vault.

Rate limits: one token bucket per client key (the client IP, or the caller's identity
when the quota's ``group_by`` is ``"entity"``), ``rate`` requests per ``interval``;
once empty the client is refused with 429 (and blocked for ``block_interval`` when set).

Lease counts: a request under a lease-count quota is refused with 429 once the leases
under its path (plus the requests already admitted and still running) reach
``max_leases``; admission and release happen in one place so a burst cannot overshoot.

Cost: with no quota configured, the request road checks one boolean (``active``).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

from strongroom.errors import RateLimited
from strongroom.framework import glob_match, remember
from strongroom.logical import Request, Response

__all__ = [
    "DEFAULT_EXEMPT_PATHS",
    "LeaseCountQuota",
    "QuotaConfig",
    "QuotaManager",
    "RateLimitQuota",
    "Ticket",
]

DEFAULT_EXEMPT_PATHS = (
    "sys/generate-recovery-token/attempt",
    "sys/generate-recovery-token/update",
    "sys/generate-root/attempt",
    "sys/generate-root/update",
    "sys/health",
    "sys/seal-status",
    "sys/unseal",
)
_MATCH_CACHE_LIMIT = 8192
_BUCKET_LIMIT = 65536


@dataclass(frozen=True, slots=True)
class QuotaConfig:
    rate_limit_exempt_paths: tuple[str, ...] = DEFAULT_EXEMPT_PATHS
    enable_rate_limit_audit_logging: bool = False
    enable_rate_limit_response_headers: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "rate_limit_exempt_paths": list(self.rate_limit_exempt_paths),
            "enable_rate_limit_audit_logging": self.enable_rate_limit_audit_logging,
            "enable_rate_limit_response_headers": self.enable_rate_limit_response_headers,
        }


@dataclass(frozen=True, slots=True)
class RateLimitQuota:
    name: str
    rate: float
    interval: int = 1
    block_interval: int = 0
    path: str = ""
    role: str = ""
    group_by: str = "ip"  # our addition: "ip" (Vault's behaviour) or "entity"

    @property
    def limit_header(self) -> str:
        return f"{self.rate:g}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": "rate-limit",
            "path": self.path,
            "role": self.role,
            "rate": self.rate,
            "interval": self.interval,
            "block_interval": self.block_interval,
            "inheritable": False,
            "group_by": self.group_by,
        }


@dataclass(frozen=True, slots=True)
class LeaseCountQuota:
    name: str
    max_leases: int
    path: str = ""
    role: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": "lease-count",
            "path": self.path,
            "role": self.role,
            "max_leases": self.max_leases,
            "inheritable": False,
        }


_Q = TypeVar("_Q", RateLimitQuota, LeaseCountQuota)


def _most_specific(quotas: list[_Q], path: str, role: str) -> _Q | None:
    best: _Q | None = None
    best_key = (-1, -1)
    for quota in quotas:
        if quota.path and not path.startswith(quota.path):
            continue
        if quota.role and quota.role != role:
            continue
        key = (len(quota.path), 1 if quota.role else 0)
        if key > best_key:
            best, best_key = quota, key
    return best


@dataclass(slots=True)
class _Bucket:
    tokens: float
    reset: float  # when the bucket is full again
    blocked_until: float = 0.0


@dataclass(slots=True)
class Ticket:
    """What admission hands back: headers to add and a lease slot to give back."""

    headers: dict[str, str] = field(default_factory=dict)
    lease_slot: str = ""


class QuotaManager:
    """All quotas of one core. Reads (``admit``) use immutable snapshots; writes replace them."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.config = QuotaConfig()
        self.rate_limits: dict[str, RateLimitQuota] = {}
        self.lease_counts: dict[str, LeaseCountQuota] = {}
        self.active = False
        self._rate_by_path: dict[tuple[str, str], RateLimitQuota | None] = {}
        self._lease_by_path: dict[tuple[str, str], LeaseCountQuota | None] = {}
        self._match: dict[tuple[str, str], tuple[RateLimitQuota | None, LeaseCountQuota | None]]
        self._match = {}
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._in_flight: dict[str, int] = {}
        self._lease_lock = asyncio.Lock()
        self.refused = 0

    # ----- configuration ---------------------------------------------------------------
    def load(
        self,
        config: QuotaConfig,
        rate_limits: list[RateLimitQuota],
        lease_counts: list[LeaseCountQuota],
    ) -> None:
        self.config = config
        self.rate_limits = {q.name: q for q in rate_limits}
        self.lease_counts = {q.name: q for q in lease_counts}
        self._changed()

    def set_config(self, config: QuotaConfig) -> None:
        self.config = config
        self._changed()

    def put_rate_limit(self, quota: RateLimitQuota) -> None:
        self.rate_limits = {**self.rate_limits, quota.name: quota}
        self._buckets = {k: v for k, v in self._buckets.items() if k[0] != quota.name}
        self._changed()

    def put_lease_count(self, quota: LeaseCountQuota) -> None:
        self.lease_counts = {**self.lease_counts, quota.name: quota}
        self._changed()

    def delete(self, kind: str, name: str) -> None:
        if kind == "rate-limit":
            self.rate_limits = {k: v for k, v in self.rate_limits.items() if k != name}
            self._buckets = {k: v for k, v in self._buckets.items() if k[0] != name}
        else:
            self.lease_counts = {k: v for k, v in self.lease_counts.items() if k != name}
        self._changed()

    def _changed(self) -> None:
        self._rate_by_path = {}
        self._lease_by_path = {}
        self._match = {}
        self.active = bool(self.rate_limits or self.lease_counts)

    # ----- admission -------------------------------------------------------------------
    def rate_quota_for(self, path: str, role: str) -> RateLimitQuota | None:
        key = (path, role)
        try:
            return self._rate_by_path[key]
        except KeyError:
            found = None
            if not self.exempt(path):
                found = _most_specific(list(self.rate_limits.values()), path, role)
            return remember(self._rate_by_path, key, found, _MATCH_CACHE_LIMIT)

    def lease_quota_for(self, path: str, role: str) -> LeaseCountQuota | None:
        key = (path, role)
        try:
            return self._lease_by_path[key]
        except KeyError:
            found = _most_specific(list(self.lease_counts.values()), path, role)
            return remember(self._lease_by_path, key, found, _MATCH_CACHE_LIMIT)

    def take(self, quota: RateLimitQuota, client: str, path: str) -> dict[str, str] | None:
        """Spend one request from the client's bucket; the rate-limit headers to send.

        Raises:
            RateLimited: the bucket is empty (or the client is blocked).
        """
        now = self._clock()
        key = (quota.name, client)
        bucket = self._buckets.get(key)
        if bucket is None or now >= bucket.reset:
            bucket = _Bucket(tokens=quota.rate, reset=now + quota.interval)
            if key not in self._buckets and len(self._buckets) >= _BUCKET_LIMIT:
                self._evict(now)
            self._buckets[key] = bucket
        if bucket.blocked_until > now:
            raise self._refuse(quota, path, 0, bucket.blocked_until - now)
        if bucket.tokens < 1:
            if quota.block_interval:
                bucket.blocked_until = now + quota.block_interval
                bucket.reset = max(bucket.reset, bucket.blocked_until)
            raise self._refuse(quota, path, 0, bucket.reset - now)
        bucket.tokens -= 1
        if not self.config.enable_rate_limit_response_headers:
            return None
        return _headers(quota, int(bucket.tokens), bucket.reset - now)

    def _evict(self, now: float) -> None:
        stale = [k for k, b in self._buckets.items() if b.reset <= now and b.blocked_until <= now]
        for k in stale:
            del self._buckets[k]
        while len(self._buckets) >= _BUCKET_LIMIT:  # all live: drop the oldest
            del self._buckets[next(iter(self._buckets))]

    def _refuse(self, quota: RateLimitQuota, path: str, left: int, wait: float) -> RateLimited:
        self.refused += 1
        headers = {"Retry-After": str(max(1, math.ceil(wait)))}
        if self.config.enable_rate_limit_response_headers:
            headers |= _headers(quota, left, wait)
        return RateLimited(f'request path "{path}": rate limit quota exceeded', headers=headers)

    def exempt(self, path: str) -> bool:
        return glob_match(self.config.rate_limit_exempt_paths, path)

    async def admit_lease(
        self, quota: LeaseCountQuota, path: str, count: Callable[[str], Awaitable[int]]
    ) -> str:
        """Reserve one lease slot under ``quota`` (``count(prefix)`` counts stored leases).

        Raises:
            RateLimited: the quota is full.
        """
        async with self._lease_lock:
            stored = await count(quota.path)
            if stored + self._in_flight.get(quota.name, 0) >= quota.max_leases:
                self.refused += 1
                raise RateLimited(f'request path "{path}": lease count quota exceeded')
            self._in_flight[quota.name] = self._in_flight.get(quota.name, 0) + 1
        return quota.name

    async def guard(
        self,
        request: Request,
        path: str,
        *,
        lease_count: Callable[[str], Awaitable[int]],
        entity_of: Callable[[str], Awaitable[str]],
        proceed: Callable[[], Awaitable[Response | None]],
    ) -> Response | None:
        """Run ``proceed`` under the request's quotas (called only while ``active``).

        Raises:
            RateLimited: a rate-limit or lease-count quota refused the request.
        """
        role = ""
        if path.startswith("auth/"):
            raw = request.data.get("role")
            role = raw if isinstance(raw, str) else ""
        key = (path, role)
        match = self._match.get(key)
        if match is None:
            match = remember(
                self._match,
                key,
                (self.rate_quota_for(path, role), self.lease_quota_for(path, role)),
                _MATCH_CACHE_LIMIT,
            )
        rate, lease = match
        headers: dict[str, str] | None = None
        if rate is not None:
            client = request.connection.remote_addr
            if rate.group_by == "entity" and request.client_token:
                client = "entity:" + await entity_of(request.client_token)
            headers = self.take(rate, client, path)
        if lease is None:
            response = await proceed()
        else:
            slot = await self.admit_lease(lease, path, lease_count)
            try:
                response = await proceed()
            finally:
                self.release_lease(slot)
        if headers and response is not None:
            response.headers.update(headers)
        return response

    def release_lease(self, name: str) -> None:
        left = self._in_flight.get(name, 0) - 1
        if left > 0:
            self._in_flight[name] = left
        else:
            self._in_flight.pop(name, None)


def _headers(quota: RateLimitQuota, left: int, wait: float) -> dict[str, str]:
    return {
        "X-Ratelimit-Limit": quota.limit_header,
        "X-Ratelimit-Remaining": str(left if left > 0 else 0),
        "X-Ratelimit-Reset": str(int(wait) + (wait % 1 > 0) if wait > 0 else 0),
    }


def encode_quota(quota: RateLimitQuota | LeaseCountQuota) -> bytes:
    return orjson.dumps(quota.to_json())


def decode_rate_limit(raw: bytes) -> RateLimitQuota:
    doc = orjson.loads(raw)
    return RateLimitQuota(
        name=doc["name"],
        rate=float(doc["rate"]),
        interval=int(doc.get("interval", 1)),
        block_interval=int(doc.get("block_interval", 0)),
        path=doc.get("path", ""),
        role=doc.get("role", ""),
        group_by=doc.get("group_by", "ip"),
    )


def decode_lease_count(raw: bytes) -> LeaseCountQuota:
    doc = orjson.loads(raw)
    return LeaseCountQuota(
        name=doc["name"],
        max_leases=int(doc["max_leases"]),
        path=doc.get("path", ""),
        role=doc.get("role", ""),
    )


def decode_config(raw: bytes | None) -> QuotaConfig:
    if raw is None:
        return QuotaConfig()
    doc = orjson.loads(raw)
    return QuotaConfig(
        rate_limit_exempt_paths=tuple(doc.get("rate_limit_exempt_paths", DEFAULT_EXEMPT_PATHS)),
        enable_rate_limit_audit_logging=bool(doc.get("enable_rate_limit_audit_logging")),
        enable_rate_limit_response_headers=bool(doc.get("enable_rate_limit_response_headers")),
    )
