"""The pending logins of the OIDC flow: one stored record per ``state``, single use.

``oidc/auth_url`` stores a :class:`FlowState` under ``oidc/state/<sha256(state)>`` (the state
itself never appears in a storage key; the record is behind the barrier like every value).
It holds what the callback needs: the role, the redirect URI sent to the provider, the OIDC
``nonce``, the PKCE ``code_verifier`` and the optional ``client_nonce``. It lives 10 minutes
(Vault's request timeout).

Every change is a guarded read-modify-write (:func:`strongroom.framework.swap`), so the state
is spent exactly once whatever the concurrency, across tasks, worker processes and nodes
sharing the storage: of two callbacks carrying the same state one takes it and the other
finds it gone. In ``direct`` callback mode the callback moves the record from ``pending`` to
``exchanging`` and then to ``done`` with the login's result, which ``oidc/poll`` takes (and
deletes) once.

Records of abandoned logins are swept by ``auth_url`` at most once a minute per mount. As
``auth_url`` needs no token, a mount holds at most 10,000 pending logins (counted per process,
from the last sweep on): past that ``auth_url`` answers 429 until logins finish or expire
(a full mount sweeps again at most every 10 seconds to see whether room was made).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from strongroom.errors import InvalidRequest, RateLimited
from strongroom.framework import KEEP, Swap, swap
from strongroom.logical import Storage

__all__ = [
    "EXPIRED_STATE",
    "STATE_PREFIX",
    "STATE_TTL_SECONDS",
    "FlowState",
    "StateStore",
]

STATE_PREFIX = "oidc/state/"
STATE_TTL_SECONDS = 600.0
SWEEP_EVERY_SECONDS = 60.0
FULL_SWEEP_EVERY_SECONDS = 10.0
MAX_PENDING = 10_000
EXPIRED_STATE = "Vault login failed. Expired or missing OAuth state."

PENDING = "pending"
EXCHANGING = "exchanging"
DONE = "done"


@dataclass(frozen=True, slots=True)
class FlowState:
    role: str
    redirect_uri: str
    expires: float
    callback_mode: str = "client"
    nonce: str = field(default="", repr=False)
    code_verifier: str = field(default="", repr=False)
    client_nonce: str = field(default="", repr=False)
    phase: str = PENDING
    # form_post: the code the provider posted, kept for the UI's follow-up callback
    code: str = field(default="", repr=False)
    # direct mode: what the login produced (alias, metadata, groups), for oidc/poll
    result: Mapping[str, Any] | None = field(default=None, repr=False)

    def encode(self) -> bytes:
        return orjson.dumps(dataclasses.asdict(self))

    @classmethod
    def decode(cls, raw: bytes) -> FlowState:
        record = orjson.loads(raw)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in record.items() if k in known})


def _key(state: str) -> str:
    return STATE_PREFIX + hashlib.sha256(state.encode()).hexdigest()


class StateStore:
    """The mount's pending logins (see the module docstring)."""

    def __init__(self, now: Callable[[], float], max_pending: int | None = None) -> None:
        self._now = now
        self._swept_at = 0.0
        self.max_pending = MAX_PENDING if max_pending is None else max_pending
        self._pending = 0  # records this process knows of (the last sweep's count + created)

    async def create(self, storage: Storage, state: str, record: FlowState) -> None:
        """Store a new pending login.

        Raises:
            RateLimited: the mount already holds ``max_pending`` of them.
        """
        if self._pending >= self.max_pending:
            if self._now() - self._swept_at >= FULL_SWEEP_EVERY_SECONDS:
                self._swept_at = 0.0
                await self.sweep(storage)
            if self._pending >= self.max_pending:
                raise RateLimited(
                    "too many OIDC logins are pending on this mount; try again later",
                    headers={"Retry-After": str(int(FULL_SWEEP_EVERY_SECONDS))},
                )
        await storage.put(_key(state), record.encode())
        self._pending += 1

    def _live(self, raw: bytes | None) -> FlowState | None:
        if raw is None:
            return None
        record = FlowState.decode(raw)
        return record if record.expires > self._now() else None

    async def take(self, storage: Storage, state: str) -> FlowState:
        """Spend a pending state: ``client`` mode deletes it, ``direct`` mode marks it
        ``exchanging`` (its result is stored by :meth:`finish`). Exactly one caller wins.

        Raises:
            InvalidRequest: no such state, expired, or already taken.
        """
        if not state:
            raise InvalidRequest(EXPIRED_STATE)

        async def change(raw: bytes | None) -> Swap[FlowState]:
            record = self._live(raw)
            if record is None or record.phase != PENDING:
                raise InvalidRequest(EXPIRED_STATE)
            if record.callback_mode == "direct":
                marked = dataclasses.replace(record, phase=EXCHANGING)
                return Swap(marked.encode(), record)
            return Swap(None, record)

        taken = await swap(storage, _key(state), change)
        if taken.callback_mode != "direct":
            self._pending = max(0, self._pending - 1)
        return taken

    async def amend(self, storage: Storage, state: str, code: str) -> FlowState:
        """``form_post``: keep the code the provider posted for the follow-up callback.

        Raises:
            InvalidRequest: no such pending state.
        """

        async def change(raw: bytes | None) -> Swap[FlowState]:
            record = self._live(raw)
            if record is None or record.phase != PENDING or record.code:
                raise InvalidRequest(EXPIRED_STATE)
            amended = dataclasses.replace(record, code=code)
            return Swap(amended.encode(), amended)

        return await swap(storage, _key(state), change)

    async def finish(self, storage: Storage, state: str, result: Mapping[str, Any] | None) -> None:
        """``direct`` mode: store the login's result for ``oidc/poll``, or (``None``: the
        login failed) forget the state."""

        async def change(raw: bytes | None) -> Swap[None]:
            record = self._live(raw)
            if record is None or record.phase != EXCHANGING:
                return Swap(KEEP, None)
            if result is None:
                return Swap(None, None)
            return Swap(dataclasses.replace(record, phase=DONE, result=dict(result)).encode(), None)

        await swap(storage, _key(state), change)

    async def collect(self, storage: Storage, state: str, client_nonce: str) -> FlowState:
        """``oidc/poll``: the finished login's record, taken exactly once.

        Raises:
            InvalidRequest: no such state, a wrong ``client_nonce``, or not finished yet
                (``authorization_pending``, as Vault and RFC 8628 answer).
        """
        if not state:
            raise InvalidRequest(EXPIRED_STATE)

        async def change(raw: bytes | None) -> Swap[FlowState]:
            record = self._live(raw)
            if record is None:
                raise InvalidRequest(EXPIRED_STATE)
            if record.client_nonce and client_nonce != record.client_nonce:
                raise InvalidRequest("invalid client_nonce")
            if record.phase != DONE or record.result is None:
                raise InvalidRequest("authorization_pending")
            return Swap(None, record)

        collected = await swap(storage, _key(state), change)
        self._pending = max(0, self._pending - 1)
        return collected

    async def sweep(self, storage: Storage) -> None:
        """Delete expired records (at most once a minute; each delete guarded)."""
        now = self._now()
        if now - self._swept_at < SWEEP_EVERY_SECONDS:
            return
        self._swept_at = now
        kept = 0
        for name in await storage.list(STATE_PREFIX):
            if name.endswith("/"):
                continue

            async def change(raw: bytes | None) -> Swap[bool]:
                if raw is None:
                    return Swap(KEEP, False)
                if FlowState.decode(raw).expires > now:
                    return Swap(KEEP, True)
                return Swap(None, False)

            kept += await swap(storage, STATE_PREFIX + name, change)
        self._pending = kept
