"""Fixtures: one event loop per test (``run``) and the backends under test (``storage``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from strongroom.storage import CachedStorage, MemoryStorage, PhysicalStorage, SQLiteStorage

KINDS = ("memory", "sqlite", "sqlite_shared", "cached")


async def open_backend(kind: str, directory: Path) -> PhysicalStorage:
    if kind == "memory":
        return MemoryStorage()
    if kind == "sqlite":
        return await SQLiteStorage.open(str(directory / "strongroom.db"))
    if kind == "sqlite_shared":  # HA / workers mode: fencing and the change feed on
        return await SQLiteStorage.open(str(directory / "strongroom.db"), shared=True)
    if kind == "cached":
        return CachedStorage(MemoryStorage(), max_entries=64)
    raise AssertionError(kind)


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as runner:
        yield runner


@pytest.fixture
def run(runner: asyncio.Runner) -> Callable[[Awaitable[Any]], Any]:
    """``run(coroutine)`` on this test's event loop (the same loop for the whole test)."""

    def run_one(awaitable: Awaitable[Any]) -> Any:
        async def wrap() -> Any:
            return await awaitable

        return runner.run(wrap())

    return run_one


@pytest.fixture(params=KINDS)
def storage(
    request: pytest.FixtureRequest, run: Callable[[Awaitable[Any]], Any], tmp_path: Path
) -> Iterator[PhysicalStorage]:
    backend: PhysicalStorage = run(open_backend(request.param, tmp_path))
    yield backend
    run(backend.close())
