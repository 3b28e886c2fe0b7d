"""An in-memory physical backend, and the key rules every backend shares.

Physical storage is untrusted by design: values arrive already encrypted by the barrier (or are
the sealed keyring), so a backend only stores and returns opaque bytes. It never logs or echoes
a value, and its error messages never contain one.

Key rules (shared with :mod:`strongroom.storage.sqlite` through the helpers below): a key is
a non-empty string of valid Unicode (encodable as UTF-8) without NUL; segments are separated
by ``/``. ``list(prefix)`` takes ``""`` or a prefix ending in ``/`` and returns the immediate
children, sorted by code point (the same order as SQLite's BINARY collation over UTF-8): leaf
names as-is, folders with a trailing ``/``. A key may be a leaf and a folder at once (``a``
and ``a/b``), which lists both ``a`` and ``a/``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from strongroom.errors import InvalidPath, StorageConflict
from strongroom.logical import Storage, StorageOp

__all__ = [
    "MemoryStorage",
    "PhysicalStorage",
    "check_key",
    "check_prefix",
    "parent_folders",
    "split_key",
    "to_bytes",
]


class PhysicalStorage(Storage, Protocol):
    """A :class:`~strongroom.logical.Storage` that owns resources and must be closed."""

    async def close(self) -> None: ...


def check_key(key: str) -> None:
    """Raise :class:`~strongroom.errors.InvalidPath` unless ``key`` is a storable key.

    Raises:
        InvalidPath: empty, not a string, contains NUL, or not encodable as UTF-8.
    """
    if not isinstance(key, str) or not key or "\x00" in key:
        raise InvalidPath("invalid storage key")
    if not key.isascii():
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidPath("invalid storage key") from None


def check_prefix(prefix: str) -> None:
    """Raise :class:`~strongroom.errors.InvalidPath` unless ``prefix`` is "" or ends in "/"."""
    if prefix == "":
        return
    if not isinstance(prefix, str) or not prefix.endswith("/"):
        raise InvalidPath("storage list prefix must be empty or end in '/'")
    check_key(prefix)


def split_key(key: str) -> tuple[str, str]:
    """``"a/b/c"`` → ``("a/b/", "c")``: the parent folder (with its slash) and the leaf name."""
    cut = key.rfind("/") + 1
    return key[:cut], key[cut:]


def parent_folders(parent: str) -> list[tuple[str, str]]:
    """A folder and its ancestors as (parent, name) pairs, innermost first.

    ``"a/b/"`` → ``[("a/", "b/"), ("", "a/")]``; ``""`` (the root) → ``[]``.
    """
    chain: list[tuple[str, str]] = []
    while parent:
        cut = parent.rfind("/", 0, len(parent) - 1) + 1
        chain.append((parent[:cut], parent[cut:]))
        parent = parent[:cut]
    return chain


class MemoryStorage:
    """A dict with a children index, so ``list`` costs O(children) rather than O(keys).

    Every operation runs without awaiting, so each one (and each transaction) is atomic with
    respect to other tasks on the event loop. Not thread-safe: use it from one event loop.
    """

    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}
        # folder ("" or ending in "/") -> names of its direct children; a folder is present
        # exactly while it has at least one child, so empty folders never list
        self._children: dict[str, set[str]] = {}

    def __repr__(self) -> str:
        return f"MemoryStorage(keys={len(self._data)})"

    def __len__(self) -> int:
        return len(self._data)

    async def get(self, key: str) -> bytes | None:
        check_key(key)
        return self._data.get(key)

    async def put(self, key: str, value: bytes) -> None:
        check_key(key)
        self._put(key, to_bytes(value))

    async def delete(self, key: str) -> None:
        check_key(key)
        self._delete(key)

    async def list(self, prefix: str) -> list[str]:
        check_prefix(prefix)
        return sorted(self._children.get(prefix, ()))

    async def transaction(self, ops: Sequence[StorageOp]) -> None:
        # validate everything first: a bad op must leave storage untouched
        checked: list[tuple[str, bytes | None]] = []
        guards: list[tuple[str, bytes | None]] = []
        for op in ops:
            check_key(op.key)
            value = None if op.value is None else to_bytes(op.value)
            (guards if op.check else checked).append((op.key, value))
        # no await between the guards and the writes: the whole transaction is atomic
        for key, expected in guards:
            if self._data.get(key) != expected:
                raise StorageConflict("storage guard failed: the value changed")
        for key, value in checked:
            if value is None:
                self._delete(key)
            else:
                self._put(key, value)

    async def items(self) -> AsyncIterator[tuple[str, bytes]]:
        """Every (key, value), sorted, as of the call (a copy: later writes do not show)."""
        for pair in sorted(self._data.items()):
            yield pair

    async def close(self) -> None:
        """Nothing to release; the data stays readable (tests reuse it)."""

    def _put(self, key: str, value: bytes) -> None:
        if key not in self._data:
            parent, leaf = split_key(key)
            self._link(parent, leaf)
        self._data[key] = value

    def _delete(self, key: str) -> None:
        if self._data.pop(key, None) is None:
            return
        parent, leaf = split_key(key)
        self._unlink(parent, leaf)

    def _link(self, parent: str, name: str) -> None:
        children = self._children.get(parent)
        if children is not None:
            children.add(name)
            return
        self._children[parent] = {name}
        # a new folder: add it to its parent folder, up to the first one that already existed
        for grand, folder in parent_folders(parent):
            siblings = self._children.get(grand)
            if siblings is not None:
                siblings.add(folder)
                return
            self._children[grand] = {folder}

    def _unlink(self, parent: str, name: str) -> None:
        children = self._children[parent]
        children.remove(name)
        if children:
            return
        del self._children[parent]
        for grand, folder in parent_folders(parent):
            siblings = self._children[grand]
            siblings.remove(folder)
            if siblings:
                return
            del self._children[grand]


def to_bytes(value: bytes) -> bytes:
    """``value`` as immutable bytes.

    Raises:
        TypeError: not bytes-like.
    """
    # a caller's bytearray or memoryview must not alias what we store
    if type(value) is bytes:
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise TypeError("storage values must be bytes")
