"""Field parsers and path tables."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.errors import InvalidRequest, NotFound, UnsupportedOperation
from strongroom.framework import (
    Duration,
    FrameworkBackend,
    Path,
    parse_bool,
    parse_duration,
    parse_int,
    parse_str_list,
    parse_str_map,
)
from strongroom.logical import BackendKind, Operation, Request, Response


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        (0, 0),
        ("", 0),
        (90, 90),
        ("90", 90),
        ("768h", 2764800),
        ("1h30m", 5400),
        ("45s", 45),
        ("1.5h", 5400),
        ("2d", 172800),
        ("500ms", 0),
    ],
)
def test_durations(raw: object, seconds: int) -> None:
    assert parse_duration(raw) == seconds


@pytest.mark.parametrize("raw", ["1x", "h", "-5", "1h-5m", True, [1], 1e300, "99999999999h"])
def test_bad_durations(raw: object) -> None:
    with pytest.raises(InvalidRequest):
        parse_duration(raw)


@given(st.integers(min_value=0, max_value=10**6))
def test_duration_roundtrip(seconds: int) -> None:
    assert parse_duration(f"{seconds}s") == seconds
    assert parse_duration(seconds) == seconds


def test_bools_ints_lists_maps() -> None:
    assert parse_bool("true") is True and parse_bool(0) is False
    with pytest.raises(InvalidRequest):
        parse_bool("maybe")
    assert parse_int("42") == 42
    with pytest.raises(InvalidRequest):
        parse_int(True)
    assert parse_str_list("a, b,,c") == ["a", "b", "c"]
    assert parse_str_list(["a", 1]) == ["a", "1"]
    with pytest.raises(InvalidRequest):
        parse_str_list([{"a": 1}])
    assert parse_str_map("a=1,b=2") == {"a": "1", "b": "2"}
    with pytest.raises(InvalidRequest):
        parse_str_map({"a": {"nested": 1}})


@dataclass(frozen=True, slots=True)
class _Args:
    name: str
    ttl: Duration = Duration(0)
    tags: list[str] = field(default_factory=list)


def test_path_table_dispatch() -> None:
    async def read(request: Request, args: _Args) -> Response:
        return Response(data={"name": args.name, "ttl": args.ttl, "tags": args.tags})

    backend = FrameworkBackend(
        kind=BackendKind.SECRET,
        paths=[Path(r"item/(?P<name>\w+)", {Operation.READ: read}, _Args)],
    )

    async def scenario() -> None:
        response = await backend.handle(
            Request(operation=Operation.READ, path="item/x", data={"ttl": "1m", "tags": "a,b"})
        )
        assert response is not None
        assert response.data == {"name": "x", "ttl": 60, "tags": ["a", "b"]}
        with pytest.raises(NotFound):
            await backend.handle(Request(operation=Operation.READ, path="nope"))
        with pytest.raises(UnsupportedOperation):
            await backend.handle(Request(operation=Operation.DELETE, path="item/x"))
        with pytest.raises(InvalidRequest):
            await backend.handle(
                Request(operation=Operation.READ, path="item/x", data={"ttl": "x"})
            )

    asyncio.run(scenario())


def test_path_groups_must_be_fields() -> None:
    with pytest.raises(TypeError):
        Path(r"item/(?P<other>\w+)", {}, _Args)
