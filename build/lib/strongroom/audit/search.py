"""Streaming search of an audit log. Pure: it filters lines it is given.

Built for big files: each line is first tested with plain substring checks on its bytes (a
needle built from each criterion, e.g. ``"operation":"update"``), and only the lines that
pass are parsed (orjson) and checked exactly. The time window compares the entry's leading
``"time"`` field as text, to the second, without parsing. No regular expressions per line.

Which fields are hashed, and therefore how to search them:

- in clear (search with the raw value): ``request.path``, ``request.operation``,
  ``auth.entity_id``, ``auth.display_name``, policies, mount points, ``remote_address``,
  ``error``, ``request.id``;
- HMAC'd (``hmac-sha256:…`` with the device's salt): ``auth.client_token`` and
  ``request.client_token``, accessors (unless the device sets ``hmac_accessor=false``), and
  every string in request and response data. Search these with the HMAC: the CLI computes
  it through ``sys/audit-hash/<device>`` when given ``-device``, or takes it ready-made.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from strongroom.audit.chain import json_start

__all__ = ["SearchQuery", "parse_bound", "search"]

_STATUSES = ("", "denied", "error", "ok")
_DENIED = "permission denied"


def parse_bound(text: str, now: float | None = None) -> str:
    """A time bound as ``YYYY-MM-DDTHH:MM:SS`` (UTC): RFC 3339, a date, or a duration ago
    (``90s``, ``15m``, ``2h``, ``7d``). Raises ValueError otherwise."""
    text = text.strip()
    if not text:
        return ""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text[-1:] in units and text[:-1].isdigit():
        moment = (time.time() if now is None else now) - int(text[:-1]) * units[text[-1]]
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment))
    if len(text) == 10:
        text += "T00:00:00"
    stamp = text[:19]
    parsed = time.strptime(stamp, "%Y-%m-%dT%H:%M:%S")  # raises ValueError
    if len(text) > 19 and text[19] not in ".Zz":
        # an offset: normalise to UTC
        sign = 1 if text[19] == "+" else -1
        hours, _, minutes = text[20:].partition(":")
        shift = sign * (int(hours) * 3600 + int(minutes or 0) * 60)
        moment = calendar.timegm(parsed) - shift
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment))
    return stamp


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """Every criterion that is set must hold (AND)."""

    path: str = ""  # exact, or a prefix when it ends in "*"
    entity: str = ""
    operation: str = ""
    since: str = ""  # "YYYY-MM-DDTHH:MM:SS" (parse_bound), inclusive
    until: str = ""  # inclusive, to the second
    status: str = ""  # "denied", "error" or "ok"
    types: frozenset[str] = frozenset()
    request_id: str = ""
    token: str = ""  # hmac-sha256:… as it appears in the log
    accessor: str = ""  # as it appears in the log
    remote_address: str = ""
    contains: tuple[str, ...] = ()  # raw substrings (e.g. an HMAC of a known value)
    needles: tuple[bytes, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.status not in _STATUSES:
            raise ValueError("status must be denied, error or ok")
        needles: list[bytes] = [text.encode() for text in self.contains]
        if self.path:
            if self.path.endswith("*"):
                needles.append(b'"path":' + orjson.dumps(self.path[:-1])[:-1])
            else:
                needles.append(b'"path":' + orjson.dumps(self.path))
        for name, value in (
            ("entity_id", self.entity),
            ("operation", self.operation),
            ("id", self.request_id),
            ("remote_address", self.remote_address),
        ):
            if value:
                needles.append(f'"{name}":'.encode() + orjson.dumps(value))
        for value in (self.token, self.accessor):
            if value:
                needles.append(orjson.dumps(value))
        if self.status == "denied":
            needles.append(b'"error":"' + _DENIED.encode())
        elif self.status == "error":
            needles.append(b'"error":"')
        if len(self.types) == 1:
            needles.append(b'"type":' + orjson.dumps(next(iter(self.types))))
        object.__setattr__(self, "needles", tuple(needles))

    def matches(self, entry: dict[str, Any]) -> bool:
        """The exact check on a parsed entry (after the substring pre-filter)."""
        if self.types and entry.get("type") not in self.types:
            return False
        request = entry.get("request")
        request = request if isinstance(request, dict) else {}
        auth = entry.get("auth")
        auth = auth if isinstance(auth, dict) else {}
        if self.path:
            path = request.get("path")
            if not isinstance(path, str):
                return False
            if self.path.endswith("*"):
                if not path.startswith(self.path[:-1]):
                    return False
            elif path != self.path:
                return False
        if self.entity and auth.get("entity_id") != self.entity:
            return False
        if self.operation and request.get("operation") != self.operation:
            return False
        if self.request_id and request.get("id") != self.request_id:
            return False
        if self.remote_address and request.get("remote_address") != self.remote_address:
            return False
        if self.token and self.token not in (auth.get("client_token"), request.get("client_token")):
            return False
        if self.accessor and self.accessor not in (
            auth.get("accessor"),
            request.get("client_token_accessor"),
        ):
            return False
        error = entry.get("error")
        if self.status == "denied" and not (isinstance(error, str) and _DENIED in error):
            return False
        if self.status == "error" and not error:
            return False
        return not (
            self.status == "ok" and (error or entry.get("type") not in ("request", "response"))
        )


def _time_of(body: bytes) -> bytes:
    """The leading ``"time"`` value to the second, as bytes (entries put it first)."""
    if body.startswith(b'{"time":"'):
        return body[9:28]
    start = body.find(b'"time":"')
    return body[start + 8 : start + 27] if start >= 0 else b""


def search(
    lines: Iterable[bytes], query: SearchQuery, *, prefix: bytes | None = None
) -> Iterator[tuple[int, bytes]]:
    """Yield (1-based line number, line without its newline) for each matching entry."""
    needles = query.needles
    since = query.since.encode()
    until = query.until.encode()
    for number, raw in enumerate(lines, 1):
        line = raw.rstrip(b"\r\n")
        if any(needle not in line for needle in needles):
            continue
        start = json_start(line, prefix)
        if start < 0:
            continue
        body = line[start:]
        if since or until:
            stamp = _time_of(body)
            if not stamp or (since and stamp < since) or (until and stamp > until):
                continue
        try:
            entry = orjson.loads(body)
        except orjson.JSONDecodeError:
            continue
        if isinstance(entry, dict) and query.matches(entry):
            yield number, line
