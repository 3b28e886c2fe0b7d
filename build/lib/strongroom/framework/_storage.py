"""Small helpers backends use on their storage view: JSON records, per-key locks and
guarded read-modify-write (:func:`swap`)."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson

from strongroom.errors import StorageConflict
from strongroom.logical import Storage, StorageOp

__all__ = ["KEEP", "KeyLocks", "Swap", "get_json", "list_all", "put_json", "swap"]

T = TypeVar("T")


class _Keep:
    def __repr__(self) -> str:
        return "KEEP"


KEEP: Any = _Keep()
"""``Swap(KEEP, ...)``: leave the key as it is (its guard still holds the transaction)."""

_ATTEMPTS = 200


@dataclass(frozen=True, slots=True)
class Swap(Generic[T]):
    """What a :func:`swap` change decided: the key's new value (``None`` deletes it,
    :data:`KEEP` leaves it), more ops for the same transaction, and the result to return."""

    value: bytes | None
    result: T
    ops: Sequence[StorageOp] = ()


async def swap(
    storage: Storage,
    key: str,
    change: Callable[[bytes | None], Awaitable[Swap[T]]],
    *,
    attempts: int = _ATTEMPTS,
) -> T:
    """Read ``key``, let ``change`` decide, and commit only if ``key`` is still unchanged.

    The commit is one transaction guarded on the value read (``StorageOp(check=True)``), so
    two callers (tasks, worker processes or nodes sharing the storage) can never both act
    on the same value: the loser re-reads and ``change`` runs again on the new value. A
    ``change`` that raises aborts without writing; one that keeps the key and adds no ops
    writes nothing (no transaction at all).

    Raises:
        StorageConflict: still conflicting after ``attempts`` tries (extreme contention).
    """
    for attempt in range(attempts):
        current = await storage.get(key)
        decided = await change(current)
        if decided.value is KEEP and not decided.ops:
            return decided.result  # nothing to write: the read alone decided
        ops = [StorageOp(key, current, check=True)]
        if decided.value is not KEEP:
            ops.append(StorageOp(key, decided.value))
        ops.extend(decided.ops)
        try:
            await storage.transaction(ops)
        except StorageConflict:
            if attempt >= 2:  # heavy contention: spread the retries out a little
                await asyncio.sleep(random.random() * min(0.001 * attempt, 0.02))  # noqa: S311
            continue
        return decided.result
    raise StorageConflict("too many concurrent changes to one record; try again")


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
