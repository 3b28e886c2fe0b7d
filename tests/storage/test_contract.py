"""The Storage contract, run against every backend (memory, sqlite, cached memory)."""

from __future__ import annotations

import asyncio
import itertools
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import strongroom.storage
from strongroom.errors import InternalError, InvalidPath
from strongroom.logical import StorageOp
from strongroom.storage import CachedStorage, PhysicalStorage, PostgreSQLStorage, SQLiteStorage

from .conftest import KINDS, open_backend

Run = Callable[[Awaitable[Any]], Any]


def model_list(model: dict[str, bytes], prefix: str) -> list[str]:
    """The reference semantics of ``list``: immediate children, folders with a slash."""
    children = set()
    for key in model:
        if key.startswith(prefix):
            rest = key[len(prefix) :]
            cut = rest.find("/")
            children.add(rest if cut < 0 else rest[: cut + 1])
    return sorted(children)


def test_exports_are_complete() -> None:
    for name in strongroom.storage.__all__:
        assert getattr(strongroom.storage, name) is not None
    public = {name for name in vars(strongroom.storage) if not name.startswith("_")}
    modules = {"bulk", "cache", "ha", "memory", "sqlite", "postgresql", "annotations"}
    assert public - modules == set(strongroom.storage.__all__)


def test_get_missing_is_none(storage: PhysicalStorage, run: Run) -> None:
    assert run(storage.get("nothing/here")) is None


def test_put_get_overwrite_delete(storage: PhysicalStorage, run: Run) -> None:
    run(storage.put("a/b", b"one"))
    assert run(storage.get("a/b")) == b"one"
    run(storage.put("a/b", b"two"))
    assert run(storage.get("a/b")) == b"two"
    run(storage.delete("a/b"))
    assert run(storage.get("a/b")) is None
    run(storage.delete("a/b"))  # deleting a missing key is not an error


def test_values_are_opaque_bytes(storage: PhysicalStorage, run: Run) -> None:
    every_byte = bytes(range(256)) * 4
    run(storage.put("bin", every_byte))
    run(storage.put("empty", b""))
    assert run(storage.get("bin")) == every_byte
    assert run(storage.get("empty")) == b""


def test_stored_value_does_not_alias_a_mutable_buffer(storage: PhysicalStorage, run: Run) -> None:
    buffer = bytearray(b"secret")
    run(storage.put("k", buffer))  # type: ignore[arg-type]
    buffer[:] = b"XXXXXX"
    assert run(storage.get("k")) == b"secret"


def test_list_children_folders_and_order(storage: PhysicalStorage, run: Run) -> None:
    for key in ["b", "a/x", "a/y/z", "a/y/w", "c/", "é", "Z", "a/y2", "a"]:
        run(storage.put(key, b"v"))
    assert run(storage.list("")) == ["Z", "a", "a/", "b", "c/", "é"]
    assert run(storage.list("a/")) == ["x", "y/", "y2"]
    assert run(storage.list("a/y/")) == ["w", "z"]
    assert run(storage.list("c/")) == [""]
    assert run(storage.list("missing/")) == []


def test_folders_disappear_when_emptied(storage: PhysicalStorage, run: Run) -> None:
    run(storage.put("a/b/c/d", b"v"))
    run(storage.put("a/e", b"v"))
    run(storage.delete("a/b/c/d"))
    assert run(storage.list("")) == ["a/"]
    assert run(storage.list("a/")) == ["e"]
    assert run(storage.list("a/b/")) == []
    run(storage.delete("a/e"))
    assert run(storage.list("")) == []


def test_list_is_immediate_children_only(storage: PhysicalStorage, run: Run) -> None:
    run(
        storage.transaction(
            [StorageOp(f"deep/{i}/{j}/leaf", b"v") for i in range(10) for j in range(10)]
        )
    )
    assert run(storage.list("deep/")) == sorted(f"{i}/" for i in range(10))
    assert run(storage.list("deep/3/")) == sorted(f"{j}/" for j in range(10))


def test_transaction_applies_puts_and_deletes_in_order(storage: PhysicalStorage, run: Run) -> None:
    run(storage.put("t/gone", b"old"))
    run(
        storage.transaction(
            [
                StorageOp("t/a", b"1"),
                StorageOp("t/gone"),
                StorageOp("t/a", b"2"),
                StorageOp("t/b", b"3"),
                StorageOp("t/b"),
            ]
        )
    )
    assert run(storage.get("t/a")) == b"2"
    assert run(storage.get("t/gone")) is None
    assert run(storage.get("t/b")) is None
    assert run(storage.list("t/")) == ["a"]
    run(storage.transaction([]))


def test_transaction_with_a_bad_key_changes_nothing(storage: PhysicalStorage, run: Run) -> None:
    run(storage.put("k", b"before"))
    with pytest.raises(InvalidPath):
        run(storage.transaction([StorageOp("k", b"after"), StorageOp("", b"x")]))
    assert run(storage.get("k")) == b"before"


@pytest.mark.parametrize("key", ["", "a\x00b", "bad\ud800surrogate"])
def test_invalid_keys_are_refused(storage: PhysicalStorage, run: Run, key: str) -> None:
    with pytest.raises(InvalidPath):
        run(storage.put(key, b"v"))
    with pytest.raises(InvalidPath):
        run(storage.get(key))
    with pytest.raises(InvalidPath):
        run(storage.delete(key))


@pytest.mark.parametrize("prefix", ["a", "a/b", "\x00/"])
def test_list_prefix_must_be_a_folder(storage: PhysicalStorage, run: Run, prefix: str) -> None:
    with pytest.raises(InvalidPath):
        run(storage.list(prefix))


def test_many_keys_list_stays_correct(storage: PhysicalStorage, run: Run) -> None:
    ops = [StorageOp(f"bulk/{i % 50:02d}/{i:05d}", b"v") for i in range(5000)]
    run(storage.transaction(ops))
    assert len(run(storage.list("bulk/"))) == 50
    assert run(storage.list("bulk/07/"))[:2] == ["00007", "00057"]


def test_list_cost_follows_children_not_descendants(storage: PhysicalStorage, run: Run) -> None:
    count = 30_000 if isinstance(storage, SQLiteStorage | PostgreSQLStorage) else 100_000
    ops = [StorageOp(f"big/{i % 100:03d}/{i:06d}", b"v") for i in range(count)]
    run(storage.transaction([*ops, StorageOp("small/a", b"v"), StorageOp("small/b", b"v")]))
    started = time.perf_counter()
    for _ in range(100):
        assert run(storage.list("")) == ["big/", "small/"]
        assert run(storage.list("small/")) == ["a", "b"]
        assert len(run(storage.list("big/"))) == 100
    # generous: a scan of every descendant per call would take seconds, not milliseconds
    assert time.perf_counter() - started < 3.0


def test_close_is_idempotent(run: Run, tmp_path: Path) -> None:
    for kind in KINDS:
        backend = run(open_backend(kind, tmp_path / kind))
        run(backend.close())
        run(backend.close())


def test_sqlite_refuses_use_after_close(run: Run, tmp_path: Path) -> None:
    backend = run(SQLiteStorage.open(str(tmp_path / "db")))
    run(backend.close())
    with pytest.raises(InternalError):
        run(backend.get("k"))
    with pytest.raises(InternalError):
        run(backend.put("k", b"v"))


# -- model-based testing ---------------------------------------------------------------------

_SEGMENTS = st.sampled_from(["a", "b", "ab", "", "é", "日本", " ", "x.y", "a-b"])
KEYS = st.lists(_SEGMENTS, min_size=1, max_size=4).map("/".join).filter(bool)
VALUES = st.binary(max_size=12)


def _folders_of(model: dict[str, bytes]) -> list[str]:
    return sorted({key[: i + 1] for key in model for i, c in enumerate(key) if c == "/"})


def storage_machine(kind: str, directory: Path) -> type[RuleBasedStateMachine]:
    counter = itertools.count()

    class StorageMachine(RuleBasedStateMachine):
        """Drives one backend and a dict side by side; every answer must agree."""

        def __init__(self) -> None:
            super().__init__()
            self.runner = asyncio.Runner()
            self.dir = directory / f"run{next(counter)}"
            self.model: dict[str, bytes] = {}
            self.storage: PhysicalStorage | None = None

        def run(self, awaitable: Awaitable[Any]) -> Any:
            async def wrap() -> Any:
                return await awaitable

            return self.runner.run(wrap())

        @initialize()
        def open(self) -> None:
            self.storage = self.run(open_backend(kind, self.dir))

        def teardown(self) -> None:
            if self.storage is not None:
                self.run(self.storage.close())
            self.runner.close()
            shutil.rmtree(self.dir, ignore_errors=True)

        @property
        def s(self) -> PhysicalStorage:
            assert self.storage is not None
            return self.storage

        def known_key(self, data: st.DataObject) -> str:
            pool = sorted(self.model)
            return data.draw(st.sampled_from(pool) | KEYS if pool else KEYS)

        @rule(key=KEYS, value=VALUES)
        def put(self, key: str, value: bytes) -> None:
            self.run(self.s.put(key, value))
            self.model[key] = value

        @rule(data=st.data())
        def delete(self, data: st.DataObject) -> None:
            key = self.known_key(data)
            self.run(self.s.delete(key))
            self.model.pop(key, None)

        @rule(data=st.data())
        def get(self, data: st.DataObject) -> None:
            key = self.known_key(data)
            assert self.run(self.s.get(key)) == self.model.get(key)

        @rule(data=st.data())
        def list_(self, data: st.DataObject) -> None:
            prefix = data.draw(st.sampled_from(["", *_folders_of(self.model), "zz/", "a/"]))
            assert self.run(self.s.list(prefix)) == model_list(self.model, prefix)

        @rule(
            data=st.data(),
            ops=st.lists(st.tuples(KEYS, st.none() | VALUES), max_size=6),
        )
        def transaction(self, data: st.DataObject, ops: list[tuple[str, bytes | None]]) -> None:
            if len(self.model) > 0 and data.draw(st.booleans()):
                ops = [*ops, (self.known_key(data), None)]
            self.run(self.s.transaction([StorageOp(k, v) for k, v in ops]))
            for key, value in ops:
                if value is None:
                    self.model.pop(key, None)
                else:
                    self.model[key] = value

        @precondition(lambda self: kind in ("sqlite", "postgresql"))
        @rule()
        def reopen(self) -> None:
            self.run(self.s.close())
            self.storage = None
            self.storage = self.run(open_backend(kind, self.dir))

        @precondition(lambda self: kind == "cached")
        @rule(data=st.data())
        def invalidate(self, data: st.DataObject) -> None:
            assert isinstance(self.s, CachedStorage)
            if data.draw(st.booleans()):
                self.s.invalidate(self.known_key(data))
            else:
                self.s.invalidate_all()

        @invariant()
        def root_lists_like_the_model(self) -> None:
            if self.storage is not None:
                assert self.run(self.s.list("")) == model_list(self.model, "")

    return StorageMachine


@pytest.mark.parametrize("kind", KINDS)
def test_backend_behaves_like_a_dict(kind: str, tmp_path: Path) -> None:
    examples, steps = (30, 25) if kind in ("sqlite", "postgresql") else (50, 25)
    run_state_machine_as_test(
        storage_machine(kind, tmp_path),
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


def test_model_list_semantics() -> None:
    model = {"a": b"", "a/": b"", "a/b": b"", "a//c": b"", "b/c/d": b""}
    assert model_list(model, "") == ["a", "a/", "b/"]
    assert model_list(model, "a/") == ["", "/", "b"]
