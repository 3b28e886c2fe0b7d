"""Field types shared by path tables: durations, booleans, string lists, and their parsers.

Vault accepts loose JSON: ``"true"`` for a bool, ``"30"`` for an int, ``"1h30m"`` or ``90`` for a
duration, ``"a,b"`` or ``["a","b"]`` for a list of strings. These parsers accept exactly that and
raise :class:`~strongroom.errors.InvalidRequest` (naming the field, never echoing its value) for
anything else.
"""

from __future__ import annotations

import math
import re
from typing import Any, NewType

from strongroom.errors import InvalidRequest

__all__ = [
    "Duration",
    "parse_bool",
    "parse_duration",
    "parse_int",
    "parse_str",
    "parse_str_list",
    "parse_str_map",
]

Duration = NewType("Duration", int)
"""Seconds, parsed from an int or a Vault duration string (``"768h"``, ``"1h30m"``, ``"45s"``)."""

_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)")
_MAX_DURATION = 100 * 365 * 86400


def parse_duration(value: Any, name: str = "duration") -> Duration:
    if isinstance(value, bool):
        raise InvalidRequest(f"{name}: expected a duration")
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidRequest(f"{name}: expected a duration")
        seconds = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if text == "":
            return Duration(0)
        if re.fullmatch(r"-?\d+", text):
            seconds = int(text)
        else:
            pos, total = 0, 0.0
            for match in _DURATION_PART.finditer(text):
                if match.start() != pos:
                    raise InvalidRequest(f"{name}: invalid duration string")
                total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
                pos = match.end()
            if pos != len(text) or pos == 0:
                raise InvalidRequest(f"{name}: invalid duration string")
            seconds = int(total)
    else:
        raise InvalidRequest(f"{name}: expected a duration")
    if seconds < 0:
        raise InvalidRequest(f"{name}: duration must not be negative")
    if seconds > _MAX_DURATION:
        raise InvalidRequest(f"{name}: duration too large")
    return Duration(seconds)


def parse_bool(value: Any, name: str = "value") -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "t", "yes"):
            return True
        if lowered in ("false", "0", "f", "no", ""):
            return False
    raise InvalidRequest(f"{name}: expected a boolean")


def parse_int(value: Any, name: str = "value") -> int:
    if isinstance(value, bool):
        raise InvalidRequest(f"{name}: expected an integer")
    if isinstance(value, int) and _INT_MIN <= value <= _INT_MAX:
        return value
    if isinstance(value, float) and value.is_integer() and _INT_MIN <= value <= _INT_MAX:
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,18}\s*", value):
        return int(value)
    raise InvalidRequest(f"{name}: expected an integer")


_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1


def parse_str(value: Any, name: str = "value") -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    raise InvalidRequest(f"{name}: expected a string")


def parse_str_list(value: Any, name: str = "value") -> list[str]:
    """A list of strings, or a comma-separated string (Vault's CommaStringSlice)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list):
        out: list[str] = []
        for item in value:
            if not isinstance(item, str | int | float) or isinstance(item, bool):
                raise InvalidRequest(f"{name}: expected a list of strings")
            out.append(str(item).strip())
        return [item for item in out if item]
    raise InvalidRequest(f"{name}: expected a list of strings")


def parse_str_map(value: Any, name: str = "value") -> dict[str, str]:
    """A map of string to string; also accepts ``"k1=v1,k2=v2"`` as the CLI sends it."""
    if value is None:
        return {}
    if isinstance(value, str):
        out: dict[str, str] = {}
        for part in value.split(","):
            if not part.strip():
                continue
            key, sep, val = part.partition("=")
            if not sep:
                raise InvalidRequest(f"{name}: expected key=value pairs")
            out[key.strip()] = val.strip()
        return out
    if isinstance(value, dict):
        result: dict[str, str] = {}
        for key, val in value.items():
            if not isinstance(val, str | int | float | bool):
                raise InvalidRequest(f"{name}: expected a map of strings")
            result[str(key)] = parse_str(val, name)
        return result
    raise InvalidRequest(f"{name}: expected a map of strings")
