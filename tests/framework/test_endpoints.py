"""Module-level path tables (``framework.Endpoint``): bound to an owner when a backend is
built, dispatched like any ``Path``; one table serves many owners without sharing state."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from strongroom.errors import InvalidRequest
from strongroom.framework import Endpoint, FrameworkBackend
from strongroom.logical import BackendKind, Operation, Request, Response

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Counter:
    name: str
    hits: int = 0


@dataclass(frozen=True, slots=True)
class HitArgs:
    step: int = 1


async def _hit(owner: Counter, request: Request, args: HitArgs) -> Response:
    owner.hits += args.step
    return Response(data={"owner": owner.name, "hits": owner.hits})


async def _exists(owner: Counter, request: Request, args: HitArgs) -> bool:
    return owner.hits > 0


TABLE: list[Endpoint[Counter]] = [
    Endpoint(
        r"hit",
        {Operation.UPDATE: _hit, Operation.READ: _hit},
        HitArgs,
        existence_check=_exists,
        synopsis="Count",
    )
]


def _backend(owner: Counter) -> FrameworkBackend:
    return FrameworkBackend(kind=BackendKind.SECRET, paths=[e.bind(owner) for e in TABLE])


async def test_one_table_bound_to_two_owners_keeps_them_apart() -> None:
    first, second = Counter("a"), Counter("b")
    a, b = _backend(first), _backend(second)
    update = Request(operation=Operation.UPDATE, path="hit", data={"step": 2})
    assert await a.exists(update) is False
    answer = await a.handle(update)
    assert answer is not None and answer.data == {"owner": "a", "hits": 2}
    assert await a.exists(update) is True
    assert await b.exists(update) is False
    answer = await b.handle(Request(operation=Operation.READ, path="hit"))
    assert answer is not None and answer.data == {"owner": "b", "hits": 1}
    assert (first.hits, second.hits) == (2, 1)


async def test_bound_paths_keep_typed_args_and_help() -> None:
    backend = _backend(Counter("a"))
    with pytest.raises(InvalidRequest, match="step"):
        await backend.handle(Request(operation=Operation.UPDATE, path="hit", data={"step": "x"}))
    assert backend.describe_help("hit")["help"] == "Count"
    assert backend.paths[0].args is HitArgs


def test_a_url_group_must_be_a_field_when_bound() -> None:
    endpoint: Endpoint[Counter] = Endpoint(r"hit/(?P<nope>[^/]+)", {Operation.READ: _hit}, HitArgs)
    with pytest.raises(TypeError, match="nope"):
        endpoint.bind(Counter("a"))
