"""Vault's timestamp format: Go's RFC3339Nano in UTC (trailing zeros of the fraction trimmed)."""

from __future__ import annotations

import time

from strongroom.framework._memo import remember

__all__ = ["format_time", "format_time_ns"]

_NS = 1_000_000_000


# Rendered whole seconds: strftime costs microseconds, and responses keep rendering the
# same few instants (a secret's creation time, "now"). Bounded; cleared when full.
# Process-wide on purpose: rendering is a pure function of the integer, holds no secret and
# no core's state, so several cores in one process sharing it cannot observe each other.
_SECONDS: dict[int, str] = {}
_SECONDS_LIMIT = 8192


def _whole_seconds(seconds: int) -> str:
    text = _SECONDS.get(seconds)
    if text is None:
        t = time.gmtime(seconds)
        text = remember(
            _SECONDS,
            seconds,
            f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}"
            f"T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}",
            _SECONDS_LIMIT,
        )
    return text


def format_time_ns(ns: int | None) -> str:
    """``2018-03-22T02:24:06.945319214Z``; ``""`` for an unset time."""
    if ns is None:
        return ""
    seconds, frac = divmod(ns, _NS)
    stamp = _whole_seconds(seconds)
    if frac:
        stamp += "." + f"{frac:09d}".rstrip("0")
    return stamp + "Z"


def format_time(seconds: float) -> str:
    """The same from a float of seconds since the epoch (microsecond precision)."""
    return format_time_ns(round(seconds * 1_000_000) * 1000)
