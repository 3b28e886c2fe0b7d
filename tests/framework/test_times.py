"""Vault's timestamps: Go's RFC3339Nano in UTC, checked against the standard library."""

from __future__ import annotations

import datetime

from hypothesis import given
from hypothesis import strategies as st

from strongroom.framework import format_time, format_time_ns

_NS = 1_000_000_000


@given(st.integers(min_value=-(10**18), max_value=253_402_300_799 * _NS))
def test_format_time_ns_matches_datetime(ns: int) -> None:
    seconds, frac = divmod(ns, _NS)
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    expected = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        expected += "." + f"{frac:09d}".rstrip("0")
    assert format_time_ns(ns) == expected + "Z"
    assert format_time_ns(ns) == format_time_ns(ns)  # the cached rendering is the same


def test_unset_and_float_forms() -> None:
    assert format_time_ns(None) == ""
    assert format_time_ns(0) == "1970-01-01T00:00:00Z"
    assert format_time(1.5) == "1970-01-01T00:00:01.5Z"
    assert format_time(1_521_685_446.945319) == "2018-03-22T02:24:06.945319Z"
