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

Cost: with no quota configured, the request road checks one boolean (``active``). With
rate limits only, :meth:`QuotaManager.admit` is synchronous: one dict hit for the path's
quota (cached per path until a quota changes), one clock read, the client's bucket, and
when response headers are on three pre-encoded header pairs (the limit's is built once
per quota). Role quotas on a login, ``group_by = "entity"`` and lease-count quotas take
the general, asynchronous road (:meth:`QuotaManager.guard`).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
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
    "QuotaRefused",
    "RateLimitQuota",
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


class QuotaRefused(RateLimited):
    """A rate-limit or lease-count quota refused the request (before it ran)."""


_BUCKET_LIMIT = 65536  # clients per rate-limit quota


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


Headers = tuple[tuple[bytes, bytes], ...]
"""Response headers as the HTTP edge sends them: lower-case names, latin-1 bytes."""


class _Rate:
    """A rate-limit quota as the road uses it: its client buckets and its limit header."""

    __slots__ = ("buckets", "by_entity", "limit_header", "quota")

    def __init__(self, quota: RateLimitQuota, buckets: dict[str, _Bucket]) -> None:
        self.quota = quota
        self.buckets = buckets  # client key → bucket (shared by every path the quota covers)
        self.by_entity = quota.group_by == "entity"
        self.limit_header = (b"x-ratelimit-limit", f"{quota.rate:g}".encode())


_Match = tuple[_Rate | None, LeaseCountQuota | None]
_NO_MATCH: _Match = (None, None)


class QuotaManager:
    """All quotas of one core. Admission reads immutable snapshots; writes replace them."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.config = QuotaConfig()
        self.rate_limits: dict[str, RateLimitQuota] = {}
        self.lease_counts: dict[str, LeaseCountQuota] = {}
        self.active = False
        self.role_quotas = False
        self._headers_on = False
        # the quotas a request path falls under, per path (role-less) and per (path, role)
        self._by_path: dict[str, _Match] = {}
        self._by_role: dict[tuple[str, str], _Match] = {}
        # per rate-limit quota name: its clients' buckets (replaced with the quota)
        self._buckets: dict[str, dict[str, _Bucket]] = {}
        self._rates: dict[str, _Rate] = {}
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
        self._buckets = {k: v for k, v in self._buckets.items() if k != quota.name}
        self._changed()

    def put_lease_count(self, quota: LeaseCountQuota) -> None:
        self.lease_counts = {**self.lease_counts, quota.name: quota}
        self._changed()

    def delete(self, kind: str, name: str) -> None:
        if kind == "rate-limit":
            self.rate_limits = {k: v for k, v in self.rate_limits.items() if k != name}
            self._buckets = {k: v for k, v in self._buckets.items() if k != name}
        else:
            self.lease_counts = {k: v for k, v in self.lease_counts.items() if k != name}
        self._changed()

    def _changed(self) -> None:
        self._by_path = {}
        self._by_role = {}
        self._rates = {}
        self._headers_on = self.config.enable_rate_limit_response_headers
        self.active = bool(self.rate_limits or self.lease_counts)
        self.role_quotas = any(q.role for q in self.rate_limits.values()) or any(
            q.role for q in self.lease_counts.values()
        )

    # ----- matching --------------------------------------------------------------------
    def _match(self, path: str, role: str) -> _Match:
        rate = None
        if not self.exempt(path):
            rate = _most_specific(list(self.rate_limits.values()), path, role)
        lease = _most_specific(list(self.lease_counts.values()), path, role)
        if rate is None:
            return (None, lease) if lease is not None else _NO_MATCH
        state = self._rates.get(rate.name)
        if state is None or state.quota is not rate:
            buckets = self._buckets.setdefault(rate.name, {})
            state = self._rates[rate.name] = _Rate(rate, buckets)
        return (state, lease)

    def _match_for(self, path: str, role: str) -> _Match:
        if not role:
            match = self._by_path.get(path)
            if match is None:
                match = remember(self._by_path, path, self._match(path, ""), _MATCH_CACHE_LIMIT)
            return match
        key = (path, role)
        match = self._by_role.get(key)
        if match is None:
            match = remember(self._by_role, key, self._match(path, role), _MATCH_CACHE_LIMIT)
        return match

    def exempt(self, path: str) -> bool:
        return glob_match(self.config.rate_limit_exempt_paths, path)

    # ----- admission -------------------------------------------------------------------
    def admit(self, request: Request, path: str) -> Headers | None:
        """The common case, synchronously: spend one request of the path's rate limit.

        Returns the rate-limit headers to add to the response (``()`` when none), or None
        when the request needs the general road (:meth:`guard`): a role quota on a login,
        a quota grouped by entity, a lease-count quota. None spends nothing.

        Raises:
            QuotaRefused: the client's bucket is empty (or the client is blocked).
        """
        if self.role_quotas and path.startswith("auth/"):
            return None
        match = self._by_path.get(path)
        if match is None:
            match = self._match_for(path, "")
        rate, lease = match
        if lease is not None:
            return None
        if rate is None:
            return ()
        if rate.by_entity and request.client_token:
            return None
        return self.take(rate, request.connection.remote_addr, path)

    def take(self, rate: _Rate, client: str, path: str) -> Headers:
        """Spend one request from the client's bucket; the rate-limit headers to send.

        Raises:
            QuotaRefused: the bucket is empty (or the client is blocked).
        """
        now = self._clock()
        buckets = rate.buckets
        bucket = buckets.get(client)
        if bucket is None or now >= bucket.reset:
            quota = rate.quota
            if bucket is None and len(buckets) >= _BUCKET_LIMIT:
                _evict(buckets, now)
            bucket = buckets[client] = _Bucket(tokens=quota.rate, reset=now + quota.interval)
        if bucket.blocked_until > now:
            raise self._refuse(rate, path, bucket.blocked_until - now)
        if bucket.tokens < 1:
            block = rate.quota.block_interval
            if block:
                bucket.blocked_until = now + block
                bucket.reset = max(bucket.reset, bucket.blocked_until)
            raise self._refuse(rate, path, bucket.reset - now)
        bucket.tokens -= 1
        if not self._headers_on:
            return ()
        left = int(bucket.tokens)
        wait = bucket.reset - now
        return (
            rate.limit_header,
            (b"x-ratelimit-remaining", b"%d" % (left if left > 0 else 0)),
            (b"x-ratelimit-reset", b"%d" % (math.ceil(wait) if wait > 0 else 0)),
        )

    def _refuse(self, rate: _Rate, path: str, wait: float) -> QuotaRefused:
        self.refused += 1
        headers = {"Retry-After": str(max(1, math.ceil(wait)))}
        if self._headers_on:
            headers["X-Ratelimit-Limit"] = rate.limit_header[1].decode()
            headers["X-Ratelimit-Remaining"] = "0"
            headers["X-Ratelimit-Reset"] = str(math.ceil(wait) if wait > 0 else 0)
        return QuotaRefused(f'request path "{path}": rate limit quota exceeded', headers=headers)

    async def admit_lease(
        self, quota: LeaseCountQuota, path: str, count: Callable[[str], Awaitable[int]]
    ) -> str:
        """Reserve one lease slot under ``quota`` (``count(prefix)`` counts stored leases).

        Raises:
            QuotaRefused: the quota is full.
        """
        async with self._lease_lock:
            stored = await count(quota.path)
            if stored + self._in_flight.get(quota.name, 0) >= quota.max_leases:
                self.refused += 1
                raise QuotaRefused(f'request path "{path}": lease count quota exceeded')
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
        role_of: Callable[[Request, str], Awaitable[str]] | None = None,
    ) -> Response | None:
        """Run ``proceed`` under the request's quotas: the general road, for what
        :meth:`admit` hands over (role quotas on logins, entity grouping, lease counts).

        Raises:
            QuotaRefused: a rate-limit or lease-count quota refused the request.
        """
        role = ""
        if self.role_quotas and path.startswith("auth/"):
            if role_of is not None:
                role = await role_of(request, path)
            else:
                raw = request.data.get("role")
                role = raw if isinstance(raw, str) else ""
        rate, lease = self._match_for(path, role)
        headers: Headers = ()
        if rate is not None:
            client = request.connection.remote_addr
            if rate.by_entity and request.client_token:
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
            response.wire_headers += headers
        return response

    def release_lease(self, name: str) -> None:
        left = self._in_flight.get(name, 0) - 1
        if left > 0:
            self._in_flight[name] = left
        else:
            self._in_flight.pop(name, None)


def _evict(buckets: dict[str, _Bucket], now: float) -> None:
    stale = [k for k, b in buckets.items() if b.reset <= now and b.blocked_until <= now]
    for k in stale:
        del buckets[k]
    while len(buckets) >= _BUCKET_LIMIT:  # all live: drop the oldest
        del buckets[next(iter(buckets))]


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
