"""Prefix views: a :class:`~strongroom.logical.Storage` confined below one key prefix.

``View(barrier, "logical/<uuid>/")`` is what a mount's backend receives as its storage: every
key it uses is silently prefixed, ``list`` answers are relative to the view, and keys that could
climb out of it (a leading ``/``, ``.`` or ``..`` segments) are refused. Views nest:
``View(View(s, "a/"), "b/")`` addresses ``a/b/…`` in ``s``.

Trusts: the underlying storage to honour the Storage contract.
Promises: no key outside the prefix is ever read, written, listed or deleted through a view.
"""

from __future__ import annotations

from collections.abc import Sequence

from strongroom import errors
from strongroom.logical import Storage, StorageOp

__all__ = ["View"]


def _check_prefix(prefix: str, what: str) -> None:
    """A prefix is empty, or a relative key followed by ``/``."""
    if prefix:
        if not prefix.endswith("/"):
            raise errors.InvalidPath(f"{what} must be empty or end with '/'")
        _check_relative(prefix[:-1], what)


def _check_relative(key: str, what: str) -> None:
    if key.startswith("/"):
        raise errors.InvalidPath(f"{what} cannot start with '/'")
    # a "." or ".." segment starts at the beginning or right after a "/"; most keys have
    # no such dot at all, so test that first (this runs on every storage access)
    if (key.startswith(".") or "/." in key) and any(
        segment in {".", ".."} for segment in key.split("/")
    ):
        raise errors.InvalidPath(f"{what} cannot contain '.' or '..' segments")


class View:
    """The ``prefix`` subtree of ``storage``, itself a Storage."""

    __slots__ = ("_prefix", "_storage")

    def __init__(self, storage: Storage, prefix: str) -> None:
        """
        Args:
            storage: any Storage (a barrier, a physical backend, another view).
            prefix: empty, or relative and ending in ``/`` (e.g. ``"logical/abc/"``).

        Raises:
            errors.InvalidPath: the prefix is absolute, has dot segments or lacks the ``/``.
        """
        _check_prefix(prefix, "view prefix")
        self._storage = storage
        self._prefix = prefix

    def __repr__(self) -> str:
        return f"View(prefix={self._prefix!r})"

    @property
    def prefix(self) -> str:
        return self._prefix

    def sub_view(self, prefix: str) -> View:
        """A view of ``prefix`` below this one, addressing the base storage directly."""
        _check_prefix(prefix, "view prefix")
        return View(self._storage, self._prefix + prefix)

    def _expand(self, key: str) -> str:
        if not key:
            raise errors.InvalidPath("empty storage key")
        _check_relative(key, "storage key")
        return self._prefix + key

    async def get(self, key: str) -> bytes | None:
        return await self._storage.get(self._expand(key))

    async def put(self, key: str, value: bytes) -> None:
        await self._storage.put(self._expand(key), value)

    async def delete(self, key: str) -> None:
        await self._storage.delete(self._expand(key))

    async def list(self, prefix: str) -> list[str]:
        """Children of ``prefix`` (empty or ending in ``/``), relative to ``prefix``."""
        _check_prefix(prefix, "list prefix")
        return await self._storage.list(self._prefix + prefix)

    async def transaction(self, ops: Sequence[StorageOp]) -> None:
        await self._storage.transaction(
            [StorageOp(self._expand(op.key), op.value, op.check) for op in ops]
        )
