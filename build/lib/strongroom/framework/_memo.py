"""Bounded memo tables for the request road.

Every per-request cache in Strongroom is a plain dict probed with ``get`` on the hot path
and filled through :func:`remember`, which empties the table once it holds ``limit``
entries: a crude bound, but O(1), with no bookkeeping on hits, and a request path or token
an attacker varies can never grow memory without end. Tables hold immutable values only.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import TypeVar

__all__ = ["memo_by_object", "remember"]

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")


def remember(table: MutableMapping[K, V], key: K, value: V, limit: int) -> V:
    """Store ``value`` under ``key`` (emptying a full table first) and return it."""
    if len(table) >= limit:
        table.clear()
    table[key] = value
    return value


def memo_by_object(table: dict[int, tuple[T, V]], obj: T, build: Callable[[T], V], limit: int) -> V:
    """``build(obj)``, computed once per object. For immutable objects that are replaced,
    never changed; the table keeps the object itself, so its ``id`` cannot be reused by
    another object while the entry lives."""
    memo = table.get(id(obj))
    if memo is not None and memo[0] is obj:
        return memo[1]
    return remember(table, id(obj), (obj, build(obj)), limit)[1]
