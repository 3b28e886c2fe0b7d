"""HTTP request parsing limits."""

from __future__ import annotations

import pytest

from strongroom.errors import InvalidRequest, UnsupportedOperation
from strongroom.http.requests import HttpLimits, operation_for, parse_json_object
from strongroom.logical import Operation


def test_operation_mapping() -> None:
    assert operation_for("GET", {}) is Operation.READ
    assert operation_for("GET", {"list": "true"}) is Operation.LIST
    assert operation_for("LIST", {}) is Operation.LIST
    assert operation_for("PUT", {}) is Operation.UPDATE
    assert operation_for("POST", {}) is Operation.UPDATE
    assert operation_for("PATCH", {}) is Operation.PATCH
    assert operation_for("DELETE", {}) is Operation.DELETE
    with pytest.raises(UnsupportedOperation):
        operation_for("BREW", {})


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b"1",
        b"{",
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b'{"a": 1' + b"0" * 40 + b"}",
        b"[" * 500 + b"]" * 500,
    ],
)
def test_rejected_bodies(body: bytes) -> None:
    with pytest.raises(InvalidRequest):
        parse_json_object(body, HttpLimits())


def test_depth_and_size_limits() -> None:
    limits = HttpLimits(max_json_depth=3, max_string_length=5, max_container_entries=2)
    assert parse_json_object(b'{"a": {"b": 1}}', limits) == {"a": {"b": 1}}
    for body in (b'{"a": {"b": {"c": {"d": 1}}}}', b'{"a": "toolong"}', b'{"a": [1, 2, 3]}'):
        with pytest.raises(InvalidRequest):
            parse_json_object(body, limits)


def test_errors_never_echo_the_body() -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_json_object(b'{"password": "hunter2"', HttpLimits())
    assert "hunter2" not in str(info.value)
