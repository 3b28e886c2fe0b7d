"""The expiration manager with a movable clock, in-memory storage and a fake backend."""

from __future__ import annotations

import asyncio

import pytest

from strongroom.clock import FakeClock
from strongroom.core.leases import LeaseEntry, LeaseManager
from strongroom.errors import InternalError, InvalidRequest
from strongroom.logical import Secret
from strongroom.storage import MemoryStorage


class FakeBackend:
    def __init__(self) -> None:
        self.revoked: list[str] = []
        self.renewed: list[tuple[str, int]] = []
        self.down = False

    async def __call__(self, op: str, lease: LeaseEntry, increment: int) -> Secret | None:
        if self.down:
            raise InternalError("database is down")
        if op == "revoke":
            self.revoked.append(lease.internal_data["user"])
            return None
        self.renewed.append((lease.internal_data["user"], increment))
        return Secret(type="creds", ttl=increment or 60, renewable=True)


def _manager(
    storage: MemoryStorage | None = None, clock: FakeClock | None = None
) -> tuple[LeaseManager, FakeBackend, FakeClock, MemoryStorage]:
    backend = FakeBackend()
    clock = FakeClock() if clock is None else clock
    storage = MemoryStorage() if storage is None else storage  # an empty one is falsy
    return LeaseManager(storage, clock, backend, lambda _uuid: 3600), backend, clock, storage


def _secret(user: str, ttl: int = 60, max_ttl: int = 0) -> Secret:
    return Secret(
        type="creds", ttl=ttl, max_ttl=max_ttl, renewable=True, internal_data={"user": user}
    )


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_register_expire_and_revoke() -> None:
    async def scenario() -> None:
        leases, backend, clock, _ = _manager()
        lease_id, ttl = await leases.register(
            path="db/creds/ro", mount_uuid="m", token_hash="t1", secret=_secret("u1")
        )
        assert lease_id.startswith("db/creds/ro/") and ttl == 60
        looked = await leases.get(lease_id)
        assert looked is not None and looked.describe(clock.now())["ttl"] == 60
        clock.advance(59)
        assert await leases.expire_due() == 0
        clock.advance(2)
        assert await leases.expire_due() == 1
        assert backend.revoked == ["u1"]
        assert await leases.get(lease_id) is None

    run(scenario())


def test_ttl_bounded_by_mount_max() -> None:
    async def scenario() -> None:
        leases, _, _, _ = _manager()
        _, ttl = await leases.register(
            path="db/creds/ro", mount_uuid="m", token_hash="", secret=_secret("u", ttl=99999)
        )
        assert ttl == 3600

    run(scenario())


def test_renew_capped_by_max_ttl() -> None:
    async def scenario() -> None:
        leases, backend, clock, _ = _manager()
        lease_id, _ = await leases.register(
            path="db/creds/ro", mount_uuid="m", token_hash="", secret=_secret("u", 60, 100)
        )
        clock.advance(30)
        entry, warnings = await leases.renew(lease_id, 50)
        assert entry.expire_time == clock.now() + 50 and not warnings
        clock.advance(40)
        entry, warnings = await leases.renew(lease_id, 500)
        assert entry.expire_time == entry.issue_time + 100 and warnings
        assert backend.renewed == [("u", 50), ("u", 500)]

    run(scenario())


def test_failed_revocation_is_retried_and_visible() -> None:
    async def scenario() -> None:
        leases, backend, clock, _ = _manager()
        lease_id, _ = await leases.register(
            path="db/creds/ro", mount_uuid="m", token_hash="", secret=_secret("u")
        )
        backend.down = True
        clock.advance(61)
        assert await leases.expire_due() == 0
        entry = await leases.get(lease_id)
        assert entry is not None and entry.revoke_attempts == 1
        assert "down" in entry.describe(clock.now())["last_revoke_error"]
        assert leases.failed_revocations == 1
        backend.down = False
        clock.advance(0.5)
        assert await leases.expire_due() == 0  # backoff not over yet
        clock.advance(1)
        assert await leases.expire_due() == 1
        assert backend.revoked == ["u"]

    run(scenario())


def test_schedule_survives_restart() -> None:
    async def scenario() -> None:
        leases, _, clock, storage = _manager()
        await leases.register(
            path="db/creds/ro", mount_uuid="m", token_hash="", secret=_secret("a")
        )
        clock.advance(120)  # expired while "down"
        fresh, backend, _, _ = _manager(storage, clock)
        assert await fresh.restore() == 1
        assert await fresh.expire_due() == 1
        assert backend.revoked == ["a"]

    run(scenario())


def test_revoke_by_token_and_prefix() -> None:
    async def scenario() -> None:
        leases, backend, _, _ = _manager()
        for user, token in (("a", "t1"), ("b", "t1"), ("c", "t2")):
            await leases.register(
                path="db/creds/ro", mount_uuid="m", token_hash=token, secret=_secret(user)
            )
        other, _ = await leases.register(
            path="db/creds/rw", mount_uuid="m", token_hash="t2", secret=_secret("d")
        )
        await leases.revoke_by_token("t1")
        assert sorted(backend.revoked) == ["a", "b"]
        assert await leases.revoke_prefix("db/creds/ro") == 1
        assert sorted(backend.revoked) == ["a", "b", "c"]
        assert await leases.count() == 1
        assert (await leases.list_prefix("db/creds/")) == ["rw/"]
        backend.down = True
        with pytest.raises(InternalError):
            await leases.revoke(other)
        await leases.revoke(other, force=True)
        assert await leases.count() == 0

    run(scenario())


def test_renew_unknown_or_expired() -> None:
    async def scenario() -> None:
        leases, _, clock, _ = _manager()
        with pytest.raises(InvalidRequest):
            await leases.renew("db/creds/ro/nope", 10)
        lease_id, _ = await leases.register(
            path="db/creds/ro", mount_uuid="m", token_hash="", secret=_secret("u")
        )
        clock.advance(61)
        with pytest.raises(InvalidRequest):
            await leases.renew(lease_id, 10)

    run(scenario())


class SlowBackend(FakeBackend):
    """Each revocation takes a while; records how many were in flight at once."""

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = 0
        self.max_in_flight = 0

    async def __call__(self, op: str, lease: LeaseEntry, increment: int) -> Secret | None:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.01)
            return await super().__call__(op, lease, increment)
        finally:
            self.in_flight -= 1


def test_a_burst_of_expiries_is_revoked_concurrently_and_bounded() -> None:
    async def scenario() -> None:
        backend = SlowBackend()
        clock = FakeClock()
        leases = LeaseManager(MemoryStorage(), clock, backend, lambda _uuid: 3600)
        ids = [
            (await leases.register(path="db/creds/ro", mount_uuid="m", token_hash="", secret=s))[0]
            for s in (_secret(f"u{i}") for i in range(100))
        ]
        clock.advance(61)
        assert await leases.expire_due() == 100
        assert sorted(backend.revoked) == sorted(f"u{i}" for i in range(100))
        assert 1 < backend.max_in_flight <= 32
        assert all([await leases.get(lease_id) is None for lease_id in ids])

    run(scenario())


class FlakyStorage(MemoryStorage):
    """Fails the first read of one key."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_key = ""

    async def get(self, key: str) -> bytes | None:
        if key == self.fail_key:
            self.fail_key = ""
            raise InternalError("storage read failed")
        return await super().get(key)


def test_a_storage_fault_while_expiring_keeps_the_lease_scheduled() -> None:
    async def scenario() -> None:
        storage = FlakyStorage()
        backend, clock = FakeBackend(), FakeClock()
        leases = LeaseManager(storage, clock, backend, lambda _uuid: 3600)
        first, _ = await leases.register(
            path="db/creds/ro", mount_uuid="m", token_hash="", secret=_secret("u1")
        )
        await leases.register(
            path="db/creds/ro", mount_uuid="m", token_hash="", secret=_secret("u2")
        )
        clock.advance(61)
        storage.fail_key = "id/" + first
        assert await leases.expire_due() == 1  # the other lease is not held up
        assert backend.revoked == ["u2"]
        assert await leases.get(first) is not None
        clock.advance(2)  # past the retry delay
        assert await leases.expire_due() == 1
        assert backend.revoked == ["u2", "u1"]
        assert await leases.get(first) is None

    run(scenario())


def test_revoke_prefix_runs_revocations_concurrently() -> None:
    async def scenario() -> None:
        backend = SlowBackend()
        leases = LeaseManager(MemoryStorage(), FakeClock(), backend, lambda _uuid: 3600)
        for i in range(50):
            await leases.register(
                path="db/creds/ro", mount_uuid="m", token_hash="", secret=_secret(f"u{i}")
            )
        await leases.register(path="other/x", mount_uuid="m", token_hash="", secret=_secret("o"))
        assert await leases.revoke_prefix("db/") == 50
        assert sorted(backend.revoked) == sorted(f"u{i}" for i in range(50))
        assert 1 < backend.max_in_flight <= 32
        assert await leases.ids_with_prefix("other/")  # outside the prefix: untouched

    run(scenario())
