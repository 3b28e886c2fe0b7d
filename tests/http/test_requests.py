"""HTTP request parsing limits."""

from __future__ import annotations

import asyncio

import pytest

from strongroom.errors import InvalidRequest, RequestTooLarge, UnsupportedOperation
from strongroom.http.requests import HttpLimits, operation_for, parse_json_object, read_body
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


def _receiver(*messages: dict[str, object]):  # type: ignore[no-untyped-def]
    queue = list(messages)

    async def receive() -> dict[str, object]:
        return queue.pop(0)

    return receive


@pytest.mark.parametrize("complete", [True, False])
def test_read_body_joins_chunks(complete: bool) -> None:
    receive = _receiver(
        {"type": "http.request", "body": b'{"a":', "more_body": True},
        {"type": "http.request", "body": b"1}", "more_body": False},
    )
    limits = HttpLimits()
    body = asyncio.run(read_body(receive, 7, limits, complete=complete))
    assert body == b'{"a":1}'


def test_read_body_complete_still_bounds_size() -> None:
    receive = _receiver({"type": "http.request", "body": b"x" * 11, "more_body": False})
    with pytest.raises(RequestTooLarge):
        asyncio.run(read_body(receive, None, HttpLimits(max_request_size=10), complete=True))


def test_read_body_times_out_only_when_incomplete() -> None:
    async def stalls() -> dict[str, object]:
        await asyncio.sleep(10)
        raise AssertionError("unreachable")

    with pytest.raises(InvalidRequest, match="timed out"):
        asyncio.run(read_body(stalls, 5, HttpLimits(body_timeout=0.05)))


def test_read_body_disconnect() -> None:
    receive = _receiver({"type": "http.disconnect"})
    with pytest.raises(InvalidRequest, match="disconnected"):
        asyncio.run(read_body(receive, 3, HttpLimits(), complete=True))
