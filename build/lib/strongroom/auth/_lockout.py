"""Vault's user lockout: after ``lockout_threshold`` failed logins within
``lockout_counter_reset`` of each other, an alias is refused for ``lockout_duration`` even with
the right credentials, without the credentials being checked at all.

Defaults are Vault's: threshold 5, duration 15m, counter reset 15m, enabled. A mount configures
them at ``config/lockout`` (a path Vault's methods do not use; Vault sets them by
``sys/auth/<path>/tune`` ``user_lockout_config``, which core does not pass to backends yet).

Records live in the mount's storage view, one per alias name (already normalised by the
method)::

    lockout/<alias name>  →  {"count": 5, "last_failed": 1700000000.0, "locked_until": 1700000900.0}

``locked_until`` is 0 until the threshold is reached, so a reader (core's future
``sys/locked-users``) knows an alias is locked iff ``locked_until > now`` without knowing the
mount's settings; unlocking is deleting the record. Failures are counted for names that do not
exist too, so the lockout itself does not reveal which users exist (Vault does the same: its
alias lookahead names the alias whether or not the user exists).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from strongroom.auth._common import storage_of
from strongroom.errors import InvalidRequest, PermissionDenied
from strongroom.framework import Duration, KeyLocks, Path, get_json, put_json
from strongroom.logical import Operation, Request, Response, Storage

__all__ = [
    "LOCKOUT_CONFIG_KEY",
    "LOCKOUT_PREFIX",
    "Lockout",
    "LockoutConfig",
    "LockoutConfigArgs",
]

LOCKOUT_PREFIX = "lockout/"
LOCKOUT_CONFIG_KEY = "config/lockout"


@dataclass(frozen=True, slots=True)
class LockoutConfig:
    threshold: int = 5
    duration: int = 15 * 60
    counter_reset: int = 15 * 60
    disabled: bool = False

    def describe(self) -> dict[str, Any]:
        return {
            "lockout_threshold": self.threshold,
            "lockout_duration": self.duration,
            "lockout_counter_reset": self.counter_reset,
            "disable_lockout": self.disabled,
        }


@dataclass(frozen=True, slots=True)
class LockoutConfigArgs:
    lockout_threshold: int | None = None
    lockout_duration: Duration | None = None
    lockout_counter_reset: Duration | None = None
    disable_lockout: bool | None = None


class Lockout:
    """Failed-login bookkeeping for one mount. ``hold(name)`` serialises the attempts on one
    alias, so that parallel guesses cannot all slip in before the counter reaches the
    threshold."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._locks = KeyLocks()

    @contextlib.asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[None]:
        async with self._locks.hold(name):
            yield

    async def config(self, storage: Storage) -> LockoutConfig:
        record = await get_json(storage, LOCKOUT_CONFIG_KEY)
        if not record:
            return LockoutConfig()
        return LockoutConfig(
            threshold=int(record["threshold"]),
            duration=int(record["duration"]),
            counter_reset=int(record["counter_reset"]),
            disabled=bool(record["disabled"]),
        )

    async def check(self, storage: Storage, name: str, config: LockoutConfig) -> None:
        """Raises PermissionDenied while ``name`` is locked out."""
        if config.disabled:
            return
        record = await get_json(storage, LOCKOUT_PREFIX + name)
        if record and float(record.get("locked_until", 0)) > self._now():
            raise PermissionDenied()

    async def failed(self, storage: Storage, name: str, config: LockoutConfig) -> None:
        if config.disabled:
            return
        now = self._now()
        record = await get_json(storage, LOCKOUT_PREFIX + name) or {}
        count = int(record.get("count", 0))
        last = float(record.get("last_failed", 0))
        locked_until = float(record.get("locked_until", 0))
        stale = now - last >= config.counter_reset
        lock_over = 0 < locked_until <= now
        count = 1 if not record or stale or lock_over else count + 1
        locked_until = now + config.duration if count >= config.threshold else 0.0
        await put_json(
            storage,
            LOCKOUT_PREFIX + name,
            {"count": count, "last_failed": now, "locked_until": locked_until},
        )

    async def succeeded(self, storage: Storage, name: str) -> None:
        """A successful login resets the counter (Vault: "or upon a successful login")."""
        if await storage.get(LOCKOUT_PREFIX + name) is not None:
            await storage.delete(LOCKOUT_PREFIX + name)

    # -- config/lockout --------------------------------------------------------------------

    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=r"config/lockout",
                args=LockoutConfigArgs,
                operations={
                    Operation.READ: self._read_config,
                    Operation.UPDATE: self._write_config,
                    Operation.DELETE: self._delete_config,
                },
                synopsis="User lockout settings of this mount.",
                description=_CONFIG_HELP,
            )
        ]

    async def _read_config(self, request: Request, args: LockoutConfigArgs) -> Response:
        return Response(data=(await self.config(storage_of(request))).describe())

    async def _write_config(self, request: Request, args: LockoutConfigArgs) -> None:
        storage = storage_of(request)
        current = await self.config(storage)
        threshold = current.threshold
        if args.lockout_threshold is not None:
            if args.lockout_threshold < 1:
                raise InvalidRequest("lockout_threshold: must be at least 1")
            threshold = args.lockout_threshold
        duration = current.duration if args.lockout_duration is None else args.lockout_duration
        reset = (
            current.counter_reset
            if args.lockout_counter_reset is None
            else args.lockout_counter_reset
        )
        if duration < 1 or reset < 1:
            raise InvalidRequest("lockout_duration and lockout_counter_reset must be positive")
        disabled = current.disabled if args.disable_lockout is None else args.disable_lockout
        await put_json(
            storage,
            LOCKOUT_CONFIG_KEY,
            {
                "threshold": threshold,
                "duration": duration,
                "counter_reset": reset,
                "disabled": disabled,
            },
        )

    async def _delete_config(self, request: Request, args: LockoutConfigArgs) -> None:
        await storage_of(request).delete(LOCKOUT_CONFIG_KEY)


_CONFIG_HELP = """\
lockout_threshold (default 5) failed logins, each within lockout_counter_reset (default 15m) of
the previous one, lock the user out for lockout_duration (default 15m): logins are refused
without checking the password. disable_lockout turns the feature off for this mount. DELETE
restores the defaults. A successful login resets the counter."""
