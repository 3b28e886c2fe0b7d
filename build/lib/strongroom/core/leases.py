"""The expiration manager: every leased secret gets a lease that expires on time.

Leases live behind the barrier in the ``sys/expire/`` view:

- ``id/<lease id>``: the lease record (what to revoke, when, and how it went so far);
- ``token/<token hash>/<sha256(lease id)>``: which leases a token created, so revoking a
  token (or its tree) revokes them too.

The schedule is an in-memory heap rebuilt from storage at unseal, so a lease that expired
while the server was down is revoked right after unseal. Revocation that fails (say the
database is down) is kept, retried with exponential backoff and shown by lookup
(``revoke_attempts``, ``last_revoke_error``); it is never silently dropped. ``force``
revocation deletes the lease without asking the backend (Vault's revoke-force).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import heapq
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import orjson

from strongroom.clock import Clock
from strongroom.errors import InvalidRequest, StorageConflict, StrongroomError
from strongroom.framework import KEEP, Swap, format_time, list_all, swap
from strongroom.logical import Secret, Storage, StorageOp

__all__ = ["LeaseCaller", "LeaseEntry", "LeaseManager"]

log = logging.getLogger("strongroom.leases")

_MIN_RETRY = 1.0
_CONCURRENCY = 32  # revocations in flight at once (expiry passes, revoke-prefix)
_MAX_RETRY = 300.0
_TICK = 0.25


@dataclass(frozen=True, slots=True)
class LeaseEntry:
    lease_id: str
    path: str  # full request path that created it, e.g. "database/creds/ro"
    mount_uuid: str
    secret_type: str
    internal_data: dict[str, Any] = field(repr=False)
    token_hash: str = field(default="", repr=False)
    issue_time: float = 0.0
    expire_time: float = 0.0
    last_renewal: float = 0.0
    max_deadline: float = 0.0  # 0: no bound
    renewable: bool = True
    revoke_attempts: int = 0
    last_revoke_error: str = ""
    next_attempt: float = 0.0

    def encode(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def decode(cls, raw: bytes) -> LeaseEntry:
        return cls(**orjson.loads(raw))

    def secret(self, increment: int = 0) -> Secret:
        return Secret(
            type=self.secret_type,
            ttl=max(0, int(self.expire_time - self.last_renewal)) if self.expire_time else 0,
            renewable=self.renewable,
            internal_data=self.internal_data,
            increment=increment,
            issue_time=self.issue_time,
        )

    def describe(self, now: float) -> dict[str, Any]:
        """The ``data`` of sys/leases/lookup."""
        out: dict[str, Any] = {
            "id": self.lease_id,
            "issue_time": format_time(self.issue_time),
            "expire_time": format_time(self.expire_time) if self.expire_time else None,
            "last_renewal": format_time(self.last_renewal) if self.last_renewal else None,
            "renewable": self.renewable,
            "ttl": max(0, round(self.expire_time - now)) if self.expire_time else 0,
        }
        if self.revoke_attempts:
            out["revoke_attempts"] = self.revoke_attempts
            out["last_revoke_error"] = self.last_revoke_error
        return out


# (operation, lease, increment) -> the backend's response secret on RENEW, None on REVOKE.
LeaseCaller = Callable[[str, LeaseEntry, int], Awaitable[Secret | None]]


def _token_key(token_hash: str, lease_id: str) -> str:
    return f"token/{token_hash}/{hashlib.sha256(lease_id.encode()).hexdigest()}"


class LeaseManager:
    """Registers, renews and revokes leases; runs the expiry loop while unsealed.

    ``call(op, lease)`` sends RENEW/REVOKE to the backend of the lease's mount (core
    provides it). ``max_ttl(mount_uuid)`` bounds leases by the mount's tuned max TTL.
    """

    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        call: LeaseCaller,
        max_ttl: Callable[[str], int],
    ) -> None:
        self._storage = storage
        self._clock = clock
        self._call = call
        self._max_ttl = max_ttl
        self._heap: list[tuple[float, str]] = []
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._busy: set[str] = set()
        self.failed_revocations = 0
        self.revoked = 0

    # ----- lifecycle -----------------------------------------------------------------
    async def restore(self) -> int:
        """Rebuild the schedule from storage. Returns the number of leases."""
        self._heap = []
        names = await list_all(self._storage, "id/")
        for name in names:
            raw = await self._storage.get("id/" + name)
            if raw is None:
                continue
            entry = LeaseEntry.decode(raw)
            when = entry.next_attempt or entry.expire_time
            if when:
                self._heap.append((when, entry.lease_id))
        heapq.heapify(self._heap)
        return len(names)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # ----- registration --------------------------------------------------------------
    async def register(
        self, *, path: str, mount_uuid: str, token_hash: str, secret: Secret
    ) -> tuple[str, int]:
        """Create the lease for a secret a backend just issued. Returns (lease_id, ttl)."""
        now = self._clock.now()
        limit = self._max_ttl(mount_uuid)
        max_ttl = (
            min(v for v in (secret.max_ttl, limit) if v > 0) if (secret.max_ttl or limit) else 0
        )
        ttl = secret.ttl or limit
        if max_ttl and ttl > max_ttl:
            ttl = max_ttl
        lease_id = f"{path.rstrip('/')}/{uuid.uuid4()}"
        entry = LeaseEntry(
            lease_id=lease_id,
            path=path,
            mount_uuid=mount_uuid,
            secret_type=secret.type,
            internal_data=dict(secret.internal_data),
            token_hash=token_hash,
            issue_time=now,
            expire_time=now + ttl,
            max_deadline=now + max_ttl if max_ttl else 0.0,
            renewable=secret.renewable,
        )
        ops = [StorageOp("id/" + lease_id, entry.encode())]
        if token_hash:
            ops.append(StorageOp(_token_key(token_hash, lease_id), lease_id.encode()))
        await self._storage.transaction(ops)
        self._schedule(entry.expire_time, lease_id)
        return lease_id, ttl

    def _schedule(self, when: float, lease_id: str) -> None:
        heapq.heappush(self._heap, (when, lease_id))
        if self._heap[0][1] == lease_id:
            self._wake.set()

    # ----- queries -------------------------------------------------------------------
    async def get(self, lease_id: str) -> LeaseEntry | None:
        if not lease_id or ".." in lease_id.split("/"):
            return None
        raw = await self._storage.get("id/" + lease_id)
        return None if raw is None else LeaseEntry.decode(raw)

    async def list_prefix(self, prefix: str) -> list[str]:
        return await self._storage.list("id/" + prefix)

    async def count(self) -> int:
        return len(await list_all(self._storage, "id/"))

    async def ids_with_prefix(self, prefix: str) -> list[str]:
        folder = prefix[: prefix.rfind("/") + 1]  # "" when the prefix has no "/"
        names = await list_all(self._storage, "id/" + folder)
        return [folder + name for name in names if (folder + name).startswith(prefix)]

    # ----- renew ---------------------------------------------------------------------
    async def renew(self, lease_id: str, increment: int) -> tuple[LeaseEntry, list[str]]:
        """Renew through the backend, then store the new expiry only if the lease record is
        still the one read (a guarded write): a renewal racing a revocation never brings
        the revoked lease back."""
        raw = None
        if lease_id and ".." not in lease_id.split("/"):
            raw = await self._storage.get("id/" + lease_id)
        entry = None if raw is None else LeaseEntry.decode(raw)
        now = self._clock.now()
        if entry is None or (entry.expire_time and entry.expire_time <= now):
            raise InvalidRequest("lease not found or lease is not renewable")
        if not entry.renewable:
            raise InvalidRequest("lease is not renewable")
        if entry.revoke_attempts:
            raise InvalidRequest("lease is being revoked")
        result = await self._call("renew", entry, increment)
        ttl = result.ttl if result is not None and result.ttl else increment
        if not ttl:
            ttl = (
                int(entry.expire_time - entry.last_renewal)
                if entry.last_renewal
                else int(entry.expire_time - entry.issue_time)
            )
        warnings: list[str] = []
        expire = now + ttl
        if entry.max_deadline and expire > entry.max_deadline:
            expire = entry.max_deadline
            warnings.append(
                f"TTL of {ttl}s exceeded the effective max_ttl of "
                f"{max(0, int(entry.max_deadline - now))}s; TTL value is capped accordingly"
            )
        updated = replace(entry, expire_time=expire, last_renewal=now)
        key = "id/" + lease_id
        try:
            await self._storage.transaction(
                [StorageOp(key, raw, check=True), StorageOp(key, updated.encode())]
            )
        except StorageConflict:
            raise InvalidRequest(
                "lease was revoked or renewed concurrently; look it up and try again"
            ) from None
        self._schedule(expire, lease_id)
        return updated, warnings

    # ----- revoke --------------------------------------------------------------------
    async def revoke(self, lease_id: str, *, force: bool = False) -> None:
        """Revoke now. Raises if the backend fails (the lease then stays, scheduled for
        retry), unless ``force``, which deletes the lease regardless."""
        entry = await self.get(lease_id)
        if entry is None:
            return
        await self._revoke_entry(entry, force=force, raise_errors=not force)

    async def revoke_quietly(self, lease_id: str) -> None:
        """Revoke now; a backend failure leaves the lease scheduled for retry, unraised."""
        entry = await self.get(lease_id)
        if entry is not None:
            await self._revoke_entry(entry, force=False, raise_errors=False)

    async def revoke_prefix(self, prefix: str, *, force: bool = False) -> int:
        ids = await self.ids_with_prefix(prefix)
        failures = 0

        async def revoke_one(lease_id: str) -> None:
            nonlocal failures
            entry = await self.get(lease_id)
            if entry is None:
                return
            if not await self._revoke_entry(entry, force=force, raise_errors=False):
                failures += 1

        await _bounded(ids, revoke_one)
        if failures and not force:
            raise InvalidRequest(f"failed to revoke {failures} of {len(ids)} leases; will retry")
        return len(ids)

    async def revoke_by_token(self, token_hash: str) -> None:
        """Revoke every lease a token created (token revocation calls this). Failures are
        left scheduled for retry; they never block revoking the token."""
        for name in await self._storage.list(f"token/{token_hash}/"):
            raw = await self._storage.get(f"token/{token_hash}/{name}")
            if raw is None:
                continue
            entry = await self.get(raw.decode())
            if entry is None:
                await self._storage.delete(f"token/{token_hash}/{name}")
                continue
            await self._revoke_entry(entry, force=False, raise_errors=False)

    async def _revoke_entry(self, entry: LeaseEntry, *, force: bool, raise_errors: bool) -> bool:
        if entry.lease_id in self._busy:
            return False
        self._busy.add(entry.lease_id)
        try:
            if not force:
                try:
                    await self._call("revoke", entry, 0)
                except Exception as exc:
                    await self._record_failure(entry, exc)
                    if raise_errors:
                        raise
                    return False
            ops = [StorageOp("id/" + entry.lease_id)]
            if entry.token_hash:
                ops.append(StorageOp(_token_key(entry.token_hash, entry.lease_id)))
            await self._storage.transaction(ops)
            self.revoked += 1
            return True
        finally:
            self._busy.discard(entry.lease_id)

    async def _record_failure(self, entry: LeaseEntry, exc: BaseException) -> None:
        attempts = entry.revoke_attempts + 1
        delay = min(_MAX_RETRY, _MIN_RETRY * 2 ** min(attempts - 1, 16))
        message = (
            exc.messages[0]
            if isinstance(exc, StrongroomError) and exc.messages
            else type(exc).__name__
        )
        self.failed_revocations += 1
        log.warning("revoking lease %s failed (attempt %d): %s", entry.lease_id, attempts, message)
        next_attempt = self._clock.now() + delay

        async def change(raw: bytes | None) -> Swap[LeaseEntry | None]:
            if raw is None:  # deleted meanwhile (forced revocation): it stays deleted
                return Swap(KEEP, None)
            updated = replace(
                LeaseEntry.decode(raw),
                revoke_attempts=attempts,
                last_revoke_error=message,
                next_attempt=next_attempt,
            )
            return Swap(updated.encode(), updated)

        if await swap(self._storage, "id/" + entry.lease_id, change) is not None:
            self._schedule(next_attempt, entry.lease_id)

    # ----- the expiry loop -----------------------------------------------------------
    async def expire_due(self) -> int:
        """Revoke every lease whose time has come. Returns how many were revoked.

        Up to ``_CONCURRENCY`` revocations run at once (a backend's own pool, such
        as the database engine's connections, bounds it further), so a burst of
        simultaneous expiries costs the slowest revocations, not the sum of them all.
        """
        now = self._clock.now()
        due: dict[str, None] = {}  # in heap order, each lease once
        while self._heap and self._heap[0][0] <= now:
            due[heapq.heappop(self._heap)[1]] = None
        if not due:
            return 0
        done = 0

        async def expire_one(lease_id: str) -> None:
            nonlocal done
            if await self._expire_one(lease_id, now):
                done += 1

        await _bounded(list(due), expire_one)
        return done

    async def _expire_one(self, lease_id: str, now: float) -> bool:
        try:
            entry = await self.get(lease_id)
            if entry is None:
                return False
            due = entry.next_attempt if entry.revoke_attempts else entry.expire_time
            if due > now:
                return False  # renewed (a newer heap item exists) or retry later
            return await self._revoke_entry(entry, force=False, raise_errors=False)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # storage failed: keep the lease scheduled rather than drop it from the heap.
            # The type only: a message could quote stored values.
            log.error("expiring lease %s failed (%s); will retry", lease_id, type(exc).__name__)
            self._schedule(now + _MIN_RETRY, lease_id)
            return False

    async def _loop(self) -> None:
        while True:
            timeout = _TICK
            if self._heap:
                timeout = max(0.0, min(_TICK * 4, self._heap[0][0] - self._clock.now()))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(timeout, 0.01))
            try:
                await self.expire_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("lease expiry pass failed: %s", type(exc).__name__)


async def _bounded(items: list[str], run: Callable[[str], Awaitable[None]]) -> None:
    """``run`` each item, up to ``_CONCURRENCY`` at a time, each item exactly once."""
    pending = iter(items)

    async def worker() -> None:
        for item in pending:  # one shared iterator: each item goes to one worker
            await run(item)

    await asyncio.gather(*(worker() for _ in range(min(_CONCURRENCY, len(items)))))
