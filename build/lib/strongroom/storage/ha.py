"""What a physical backend offers for high availability: a fenced leader lock and a change feed.

These are the seams between the HA machinery in core (leader election, standbys, cache
invalidation) and the physical backends that can support several processes or nodes on
one store (SQLite for the worker processes of one node, PostgreSQL across nodes). A backend
that implements them says so by being an instance of both protocols (``isinstance`` works:
they are runtime-checkable). Nothing here is trusted with plaintext: keys are storage keys
(already barrier paths) and no value ever travels through the feed.

Fencing: a lock alone does not give mutual exclusion (a process paused past the lock's TTL
wakes up believing it still leads). So the lock carries a **term** that grows by at least
one at every acquisition, and once :meth:`HABackend.fence` is given a term, every write the
backend performs (put, delete, transaction) checks *inside its own database transaction*
that this term is still the lock's current one, and raises :class:`~strongroom.errors.Fenced`
otherwise, having written nothing.

Change feed: every committed write of the fenced writer also appends one row (a strictly
increasing index and the keys it changed) in the same transaction, so a reader that has
applied index *i* knows exactly which keys may be stale in its caches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["ChangeBatch", "ChangeFeed", "FeedGap", "HABackend", "LockHolder"]


@dataclass(frozen=True, slots=True)
class LockHolder:
    """Who holds the leader lock, as stored in the lock record."""

    node_id: str
    api_addr: str
    cluster_addr: str
    term: int
    expires_at: float  # wall-clock seconds (time.time()) when the hold lapses unless renewed


@runtime_checkable
class HABackend(Protocol):
    """A physical backend that can elect one writer and fence the writes of former ones."""

    async def try_acquire(
        self, node_id: str, api_addr: str, cluster_addr: str, ttl: float
    ) -> int | None:
        """Take the lock if it is free or its hold has lapsed.

        Returns the new term (greater than every earlier term) or ``None`` when another
        node holds the lock.
        """
        ...

    async def renew(self, node_id: str, term: int, ttl: float) -> bool:
        """Extend our hold by ``ttl``; ``False`` if our term is no longer current."""
        ...

    async def release(self, node_id: str, term: int) -> None:
        """Give the lock up (only if ``term`` is still ours), so another node takes over now."""
        ...

    async def holder(self) -> LockHolder | None:
        """The current holder, or ``None`` if nobody holds an unexpired lock."""
        ...

    def fence(self, term: int | None) -> None:
        """From now on every write checks, in its own transaction, that ``term`` is current.

        ``None`` makes every write fail with :class:`~strongroom.errors.Fenced` (a standby
        never writes; it forwards).
        """
        ...


@dataclass(frozen=True, slots=True)
class ChangeBatch:
    """The keys changed by writes with index in (``since``, ``index``]."""

    index: int
    keys: Sequence[str]


class FeedGap(Exception):
    """The feed no longer holds every change after the reader's index (it was trimmed, or
    the store was restored): the reader must drop all its caches and start from ``index``."""

    def __init__(self, index: int) -> None:
        super().__init__(f"change feed gap; resume from {index}")
        self.index = index


@runtime_checkable
class ChangeFeed(Protocol):
    """The ordered log of changed keys that every fenced write appends to."""

    async def current_index(self) -> int:
        """The index of the last committed change (0 when none)."""
        ...

    async def changes_since(self, index: int, limit: int = 10_000) -> ChangeBatch:
        """The keys changed after ``index`` (at most ``limit`` writes' worth; call again
        from the returned index for more). Raises :class:`FeedGap` if they are no longer
        all known."""
        ...

    async def wait(self, index: int, timeout: float) -> None:
        """Return once the feed has moved past ``index``, or after ``timeout`` seconds
        (LISTEN/NOTIFY on PostgreSQL, a cheap poll on SQLite)."""
        ...
