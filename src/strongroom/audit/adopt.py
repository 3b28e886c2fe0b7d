"""Adopting dead writers' chains: a chain whose writer process died uncleanly (kill -9, an
OOM kill, power loss) is closed by a live writer on the same host with a ``recovered``
checkpoint, so its unsigned tail does not read as a truncated log.

Only file devices have something to adopt: a shared file on one host, where every writer
appends its own chain. A standby's chain head is never saved behind the barrier (a standby
cannot write storage), so the chain is rebuilt from the file itself: every line of the dead
chain since its last checkpoint (or link) is read back, its continuity checked (``seq`` and
``prev_hash``), and a checkpoint covering those lines is signed and appended in that chain's
name, marked ``"recovered": N`` (verify warns: those lines were not signed when written).

One rule decides who adopts what, so no chain is ever continued twice:

- a chain whose head is saved behind the barrier (``core/audit-chain/<device>``) is the
  active's: the active (or the next one on this host) continues it and recovers its tail
  itself (docs/audit.md "Several writers"); adopters never touch it;
- any other chain is adoptable when its id names this host and a process id that is not
  alive (or this very process id under another writer nonce: a reused pid);
- when: at every file device's open (a restarted worker or server, a role change), and
  whenever :class:`DeadWatch` (every 30 s, over the bytes appended since its last look)
  sees a writer of the file that died since;
- adoption runs under an exclusive ``flock`` on the audit file itself (a new open file
  description, so it excludes other processes' adopters), and the file is read again
  under the lock: a chain another adopter has closed meanwhile ends in a checkpoint and
  is left alone. So exactly one adopter signs a dead tail.

Limits: the scan reads at most the last :data:`SCAN_LIMIT` bytes of the file, and a chain
whose last link or checkpoint lies before that window is not adopted (verify reports its
tail). A pid reused by an unrelated process makes the chain look alive until that process
ends. Writers in separate pid namespaces sharing one file and one host name are not
supported (a pid could not be checked).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import orjson

from strongroom.audit.chain import ENTRY_TYPES, Chain, ChainState, json_start

__all__ = ["SCAN_LIMIT", "Adopted", "DeadWatch", "adopt_dead_chains", "writer_is_dead"]

log = logging.getLogger("strongroom.audit")

SCAN_LIMIT = 256 << 20


def writer_is_dead(chain_id: str, host: str, me: str) -> bool:
    """Whether ``chain_id`` (``host-pid-nonce/N``) was written by a process of ``host`` that
    is no longer alive. ``me`` is this process's writer id (``host-pid-nonce``)."""
    writer = chain_id.split("/", 1)[0]
    parts = writer.rsplit("-", 2)
    if len(parts) != 3 or parts[0] != host or not parts[1].isdigit():
        return False
    if writer == me:
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return True  # this pid, another nonce: a former process whose pid was reused by us
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive (another user's process)
    return False


class DeadWatch:
    """Which writers of a file may need adopting, followed cheaply between full scans: the
    chain ids in the bytes appended since the last look (a substring search, no JSON), and
    which of their writers died since. :meth:`due` says when a full adoption pass is worth
    running; each dead writer triggers at most one."""

    __slots__ = ("_live", "_settled", "offset")

    def __init__(self) -> None:
        self.offset = 0
        self._live: set[str] = set()  # chains seen whose writer was alive when last checked
        self._settled: set[str] = set()  # dead writers' chains an adoption pass has seen

    def look(self, fd: int, host: str, me: str) -> bool:
        """Read what was appended since the last look (blocking: a worker thread); True
        when a writer seen in the file has died since the last adoption pass."""
        size = os.fstat(fd).st_size
        if size < self.offset:
            self.offset = 0  # truncated or replaced: start over
        if size - self.offset > SCAN_LIMIT:
            self.offset = size - SCAN_LIMIT  # older lines are past adopting anyway
        position = self.offset
        rest = b""
        while position < size:
            chunk = os.pread(fd, min(1 << 20, size - position), position)
            if not chunk:
                break
            position += len(chunk)
            rest += chunk
            *whole, rest = rest.split(b"\n")
            for line in whole:
                marker = line.find(b'"chain":"')
                if marker >= 0:
                    end = line.find(b'"', marker + 9)
                    chain = line[marker + 9 : end].decode("utf-8", "replace")
                    if chain not in self._settled:
                        self._live.add(chain)
        self.offset = position - len(rest)
        return any(writer_is_dead(chain, host, me) for chain in self._live)

    def passed(self, host: str, me: str) -> None:
        """A full adoption pass ran: the writers dead now need no further pass."""
        dead = {chain for chain in self._live if writer_is_dead(chain, host, me)}
        self._settled |= dead
        self._live -= dead


@dataclass(slots=True)
class _Walk:
    state: ChainState
    broken: bool = False
    digests: list[bytes] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Adopted:
    """One chain closed by this process: its id and how many lines the checkpoint covers."""

    chain: str
    lines: int


def _scan(fd: int, size: int, is_candidate: Callable[[str], bool]) -> tuple[dict[str, _Walk], bool]:
    """Each candidate chain's head rebuilt from the file (and whether it ends mid-line)."""
    start = max(0, size - SCAN_LIMIT)
    walks: dict[str, _Walk] = {}
    decided: dict[str, bool] = {}
    rest = b""
    position = start
    skip_first = start > 0
    while position < size:
        chunk = os.pread(fd, min(1 << 20, size - position), position)
        if not chunk:
            break
        position += len(chunk)
        rest += chunk
        *whole, rest = rest.split(b"\n")
        for line in whole:
            if skip_first:
                skip_first = False
                continue
            _walk_line(line, walks, decided, is_candidate)
    return walks, bool(rest)


def _walk_line(
    line: bytes,
    walks: dict[str, _Walk],
    decided: dict[str, bool],
    is_candidate: Callable[[str], bool],
) -> None:
    marker = line.find(b'"chain":"')
    if marker < 0:
        return
    end = line.find(b'"', marker + 9)
    chain_id = line[marker + 9 : end].decode("utf-8", "replace")
    wanted = decided.get(chain_id)
    if wanted is None:
        wanted = decided[chain_id] = is_candidate(chain_id)
    if not wanted:
        return
    walk = walks.get(chain_id)
    if walk is not None and walk.broken:
        return
    start = json_start(line, None)
    try:
        entry = orjson.loads(line[start:]) if start >= 0 else None
    except orjson.JSONDecodeError:
        entry = None
    if (
        not isinstance(entry, dict)
        or entry.get("chain") != chain_id
        or entry.get("type") not in ENTRY_TYPES
        or not isinstance(entry.get("seq"), int)
        or not isinstance(entry.get("prev_hash"), str)
    ):
        if walk is not None:
            walk.broken = True  # an unreadable line: verify reports it, nobody signs over it
        return
    digest = hashlib.sha256(line[start:]).digest()
    seq: int = entry["seq"]
    kind: str = entry["type"]
    if walk is None:
        if kind not in ("link", "checkpoint"):
            return  # its last link or checkpoint is before the window: not adoptable
        walk = walks[chain_id] = _Walk(ChainState(chain_id=chain_id))
    else:
        state = walk.state
        if seq != state.seq + 1 or entry["prev_hash"] != state.last_hash:
            walk.broken = True  # not a continuous chain: left for verify to report
            return
    state = walk.state
    state.seq = seq
    state.last_hash = digest.hex()
    if kind == "checkpoint":
        state.pending = []
        state.range_start = seq + 1
    elif kind == "link":
        state.pending = [digest]
        state.range_start = seq
    else:
        state.pending.append(digest)


def adopt_dead_chains(
    fd: int,
    *,
    prefix: str,
    host: str,
    me: str,
    owned: Collection[str],
    checkpoint: Callable[[Chain, int], dict[str, Any]],
    settle: Callable[[int, int], int],
) -> list[Adopted]:
    """Close every dead writer's unsigned tail in the audit file open at ``fd`` (blocking:
    run it in a worker thread).

    ``owned``: chain ids with a saved head (the active's: never adopted). ``checkpoint``
    builds the signed recovered checkpoint entry for a chain (the device's signer, clock
    and policy); ``settle(fd, size)`` waits for another writer's line in progress to end.
    """
    adopter = os.open(f"/proc/self/fd/{fd}", os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
    try:
        fcntl.flock(adopter, fcntl.LOCK_EX)
        size = settle(adopter, os.fstat(adopter).st_size)
        walks, torn = _scan(
            adopter,
            size,
            lambda chain: chain not in owned and writer_is_dead(chain, host, me),
        )
        adopted: list[Adopted] = []
        for chain_id, walk in walks.items():
            if walk.broken or not walk.state.pending:
                continue
            chain = Chain(walk.state, prefix)
            lines = len(walk.state.pending)
            line = chain.stamp(checkpoint(chain, lines))
            data = (b"\n" if torn else b"") + line.data
            if os.write(adopter, data) != len(data):
                log.error("audit: short write while closing a dead writer's chain")
                break
            torn = False
            adopted.append(Adopted(chain_id, lines))
        return adopted
    finally:
        os.close(adopter)  # releases the lock
