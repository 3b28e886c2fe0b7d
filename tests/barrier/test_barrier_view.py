"""Prefix views ("chroot" per mount)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

import pytest

from strongroom import errors
from strongroom.barrier import AESGCMBarrier, View
from strongroom.logical import StorageOp

T = TypeVar("T")


class MemStorage:
    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    async def get(self, key: str) -> bytes | None:
        return self.data.get(key)

    async def put(self, key: str, value: bytes) -> None:
        self.data[key] = value

    async def delete(self, key: str) -> None:
        self.data.pop(key, None)

    async def list(self, prefix: str) -> list[str]:
        children = set()
        for key in self.data:
            if key.startswith(prefix):
                head, sep, _ = key[len(prefix) :].partition("/")
                children.add(head + sep)
        return sorted(children)

    async def transaction(self, ops: Sequence[StorageOp]) -> None:
        for op in ops:
            if op.value is None:
                self.data.pop(op.key, None)
            else:
                self.data[op.key] = op.value


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def test_keys_are_prefixed() -> None:
    base = MemStorage()
    view = View(base, "logical/abc/")
    run(view.put("config", b"1"))
    run(view.put("roles/admin", b"2"))
    assert set(base.data) == {"logical/abc/config", "logical/abc/roles/admin"}
    assert run(view.get("config")) == b"1"
    assert run(view.list("")) == ["config", "roles/"]
    assert run(view.list("roles/")) == ["admin"]
    run(view.delete("config"))
    assert run(view.get("config")) is None
    assert view.prefix == "logical/abc/"


def test_view_cannot_see_its_neighbours() -> None:
    base = MemStorage()
    base.data["logical/other/secret"] = b"no"
    base.data["logical/abcd/secret"] = b"no"
    view = View(base, "logical/abc/")
    assert run(view.list("")) == []
    assert run(view.get("secret")) is None


@pytest.mark.parametrize("key", ["/etc", "../other/secret", "a/../../b", "a/./b", ".", ".."])
def test_escaping_keys_are_refused(key: str) -> None:
    view = View(MemStorage(), "logical/abc/")
    for coro in (view.get(key), view.put(key, b"x"), view.delete(key)):
        with pytest.raises(errors.InvalidPath):
            run(coro)
    with pytest.raises(errors.InvalidPath):
        run(view.transaction([StorageOp(key, b"x")]))


def test_bad_list_prefixes_and_empty_keys() -> None:
    view = View(MemStorage(), "p/")
    for prefix in ("no-slash", "../", "/abs/"):
        with pytest.raises(errors.InvalidPath):
            run(view.list(prefix))
    with pytest.raises(errors.InvalidPath):
        run(view.get(""))


@pytest.mark.parametrize("prefix", ["no-slash", "/abs/", "../x/", "a/../"])
def test_bad_view_prefixes(prefix: str) -> None:
    with pytest.raises(errors.InvalidPath):
        View(MemStorage(), prefix)


def test_views_nest() -> None:
    base = MemStorage()
    outer = View(base, "a/")
    inner = View(outer, "b/")
    run(inner.put("k", b"v"))
    assert base.data == {"a/b/k": b"v"}
    assert run(outer.list("")) == ["b/"]
    flat = outer.sub_view("b/")
    assert flat.prefix == "a/b/"
    assert run(flat.get("k")) == b"v"
    with pytest.raises(errors.InvalidPath):
        outer.sub_view("../")


def test_transaction_maps_keys() -> None:
    base = MemStorage()
    base.data["m/old"] = b"x"
    view = View(base, "m/")
    run(view.transaction([StorageOp("new", b"y"), StorageOp("old")]))
    assert base.data == {"m/new": b"y"}


def test_view_over_barrier_binds_full_path() -> None:
    physical = MemStorage()
    barrier = AESGCMBarrier(physical)
    run(barrier.initialize(secrets.token_bytes(32)))
    one, two = View(barrier, "logical/one/"), View(barrier, "logical/two/")
    run(one.put("secret", b"mine"))
    # An attacker with the physical storage copies mount one's value into mount two.
    physical.data["logical/two/secret"] = physical.data["logical/one/secret"]
    with pytest.raises(errors.CryptoError):
        run(two.get("secret"))
    assert run(one.get("secret")) == b"mine"
