"""Fixtures for driving the transit backend directly: the shared fakes from
``tests/engines/conftest.py`` (dict storage, FakeClock system view, Caller) plus helpers."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from strongroom.engines import transit
from strongroom.engines.transit import TransitBackend
from strongroom.logical import BackendConfig, Operation, Request, Response
from tests.engines.conftest import Caller, MemoryStorage

MakeTransit = Callable[..., Awaitable[Caller]]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


def data(response: Response | None) -> dict[str, Any]:
    assert response is not None and response.data is not None
    return response.data


@pytest.fixture
async def make_transit(make_config: Callable[..., BackendConfig], storage: MemoryStorage) -> Any:
    backends: list[TransitBackend] = []

    async def make() -> Caller:
        backend = await transit.factory(make_config("transit"))
        assert isinstance(backend, TransitBackend)
        await backend.initialize()
        backends.append(backend)
        return Caller(backend, storage)

    yield make
    for backend in backends:
        await backend.cleanup()


@pytest.fixture
async def tr(make_transit: MakeTransit) -> Caller:
    return await make_transit()


async def update_only(caller: Caller, path: str, body: dict[str, Any]) -> Response | None:
    """An UPDATE as core sends it to a caller without the create capability (no upsert)."""
    request = Request(Operation.UPDATE, path, body, storage=caller.storage)
    return await caller.backend.handle(request)
