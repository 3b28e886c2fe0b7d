"""Small helpers backends use on their storage view: JSON records and per-key locks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson

from strongroom.logical import Storage

__all__ = ["KeyLocks", "get_json", "list_all", "put_json"]


async def get_json(storage: Storage, key: str) -> Any:
    raw = await storage.get(key)
    return None if raw is None else orjson.loads(raw)


async def put_json(storage: Storage, key: str, value: Any) -> None:
    await storage.put(key, orjson.dumps(value))


async def list_all(storage: Storage, prefix: str) -> list[str]:
    """Every leaf key below ``prefix`` (recursively), relative to ``prefix``."""
    out: list[str] = []
    pending = [""]
    while pending:
        sub = pending.pop()
        for child in await storage.list(prefix + sub):
            if child.endswith("/"):
                pending.append(sub + child)
            else:
                out.append(sub + child)
    return sorted(out)


class KeyLocks:
    """Per-key asyncio locks for read-modify-write sequences (CAS, version bookkeeping)."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[key] -= 1
            if self._users[key] == 0:
                del self._users[key]
                del self._locks[key]
