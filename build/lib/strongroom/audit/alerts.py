"""Threshold alerts: too many permission-denied requests from one identity in a window.

A device configured with ``alert_denied_threshold=N`` (and optionally ``alert_window``,
default 60 s, and ``alert_webhook``) counts the permission-denied requests it records per
*key*: the token's ``entity_id``, else its accessor, else the caller's remote address (a
request with a bad or missing token has no identity but its address). When a key sees more
than N denials within the window, the device writes ONE ``alert`` entry into its own chain
and, if configured, POSTs the same alert to the webhook; then the key is muted for one
window, so a flood yields one alert per window rather than a flood of alerts.

Security decisions:

- The alert carries the key as the log would show it: an accessor is HMAC'd with the
  device's salt unless ``hmac_accessor=false``; an entity ID or address is in clear, as
  in every other entry. The webhook receives nothing the log does not already hold.
- The webhook is fire-and-forget (httpx, 2 s timeout, at most 8 in flight, further alerts
  dropped with a log line): a slow or hostile receiver can never hold up requests.
- Memory is bounded: at most :data:`MAX_KEYS` keys are tracked; past that, keys whose
  last denial left the window are forgotten first, then the oldest.
- Webhook URLs must be http or https; failures are logged by class, never with the URL
  (it may embed a credential, as Slack-style webhook URLs do).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from strongroom.errors import InvalidRequest

__all__ = ["MAX_KEYS", "AlertRule", "DeniedCounter", "Webhook"]

log = logging.getLogger("strongroom.audit")

MAX_KEYS = 10_000
_MAX_IN_FLIGHT = 8
_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class AlertRule:
    threshold: int
    window: float = 60.0
    webhook: str = ""

    def __post_init__(self) -> None:
        if self.threshold < 1:
            raise InvalidRequest("alert_denied_threshold must be at least 1")
        if not 1 <= self.window <= 86400:
            raise InvalidRequest("alert_window must be between 1s and 24h")
        if self.webhook:
            parts = urlsplit(self.webhook)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise InvalidRequest("alert_webhook must be an http or https URL")


class DeniedCounter:
    """Sliding-window counts of denials per key, with one alert per key per window."""

    def __init__(self, rule: AlertRule) -> None:
        self.rule = rule
        self._events: dict[tuple[str, str], deque[float]] = {}
        self._muted: dict[tuple[str, str], float] = {}

    def __len__(self) -> int:
        return len(self._events)

    def observe(self, kind: str, key: str, now: float) -> dict[str, Any] | None:
        """Count one denial. Returns the alert body when this one crosses the threshold.

        Args:
            kind: ``"entity_id"``, ``"accessor"`` or ``"remote_address"``.
            key: the raw value (the device hashes an accessor before writing it).
            now: seconds (any monotonic-enough clock; the window is relative).
        """
        ident = (kind, key)
        rule = self.rule
        muted = self._muted.get(ident)
        if muted is not None:
            if now < muted:
                return None
            del self._muted[ident]
        events = self._events.get(ident)
        if events is None:
            if len(self._events) >= MAX_KEYS:
                self._evict(now)
            events = self._events[ident] = deque()
        events.append(now)
        horizon = now - rule.window
        while events and events[0] <= horizon:
            events.popleft()
        if len(events) <= rule.threshold:
            return None
        first = events[0]
        count = len(events)
        del self._events[ident]
        self._muted[ident] = now + rule.window
        return {
            "rule": "permission_denied_threshold",
            "key_type": kind,
            "key": key,
            "count": count,
            "threshold": rule.threshold,
            "window_seconds": rule.window,
            "first_seen_ago": round(now - first, 3),
        }

    def _evict(self, now: float) -> None:
        horizon = now - self.rule.window
        for ident in [i for i, ev in self._events.items() if not ev or ev[-1] <= horizon]:
            del self._events[ident]
        for ident in [i for i, until in self._muted.items() if until <= now]:
            del self._muted[ident]
        # still full: forget the oldest tenth at once, so eviction is not paid per key
        while len(self._events) >= MAX_KEYS - MAX_KEYS // 10:
            del self._events[next(iter(self._events))]


class Webhook:
    """POSTs alerts to a URL in the background; never awaited by the request path."""

    def __init__(self, url: str, *, timeout: float = _TIMEOUT) -> None:
        self._url = url
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.sent = 0
        self.failed = 0
        self.dropped = 0

    def __repr__(self) -> str:  # the URL may embed a credential
        return "Webhook(<url hidden>)"

    def post(self, payload: dict[str, Any]) -> None:
        if len(self._tasks) >= _MAX_IN_FLIGHT:
            self.dropped += 1
            log.warning("audit alert webhook: too many deliveries in flight; alert dropped")
            return
        task = asyncio.get_running_loop().create_task(self._deliver(payload))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, payload: dict[str, Any]) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout, follow_redirects=False)
        try:
            response = await self._client.post(self._url, json=payload)
            if response.status_code >= 300:
                raise httpx.HTTPStatusError("status", request=response.request, response=response)
            self.sent += 1
        except Exception as exc:
            self.failed += 1
            log.warning("audit alert webhook delivery failed: %s", type(exc).__name__)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None
