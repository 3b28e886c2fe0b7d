"""Vault's timestamp format: Go's RFC3339Nano in UTC (trailing zeros of the fraction trimmed)."""

from __future__ import annotations

import datetime

__all__ = ["format_time", "format_time_ns"]

_NS = 1_000_000_000


_last: list[tuple[int, str]] = [(-1, "")]  # one-entry cache: strftime is slow on hot paths


def _whole_seconds(seconds: int) -> str:
    cached = _last[0]
    if cached[0] == seconds:
        return cached[1]
    text = datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    _last[0] = (seconds, text)
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
