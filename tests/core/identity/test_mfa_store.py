"""The login MFA records on an in-memory storage: enforcement matching, secrets created
once, single-use steps, pending logins consumed once and pruned when abandoned."""

from __future__ import annotations

import asyncio

import pytest

from strongroom.core.identity._mfa import Enforcement, Method, MFAStore, PendingLogin
from tests.engines.conftest import MemoryStorage

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def pending(expires: float) -> PendingLogin:
    return PendingLogin(
        path="auth/userpass/login/alice",
        mount_accessor="auth_userpass_1",
        alias_name="alice",
        entity_id="ent-1",
        constraints={"e": ["m"]},
        auth={"policies": ["default"]},
        expires=expires,
    )


def test_enforcement_criteria_are_ored() -> None:
    enforcement = Enforcement(
        id="1",
        name="e",
        mfa_method_ids=("m",),
        auth_method_accessors=("acc",),
        identity_group_ids=("g",),
    )
    assert enforcement.applies("acc", "approle", "", set())
    assert enforcement.applies("other", "userpass", "ent", {"g", "h"})
    assert not enforcement.applies("other", "userpass", "ent", {"h"})
    assert not enforcement.applies("other", "userpass", "", set())


async def test_secret_is_created_once_even_in_a_burst() -> None:
    storage = MemoryStorage()
    await storage.put("entity/ent", b"{}")
    store = MFAStore(storage)
    method = Method(id="m", issuer="Acme")
    created = await asyncio.gather(*(store.create_secret("ent", method) for _ in range(10)))
    assert sum(key is not None for key in created) == 1
    stored = await store.secret("ent", method)
    assert stored is not None and stored.key == next(k for k in created if k).key


async def test_pending_login_is_consumed_once() -> None:
    store = MFAStore(MemoryStorage())
    request_id = await store.create_pending(pending(2_000_000_000.0))
    found = await store.pending(request_id)
    assert found is not None
    record, raw = found
    assert record.alias_name == "alice"
    results = await asyncio.gather(*(store.consume_pending(request_id, raw) for _ in range(10)))
    assert results.count(True) == 1
    assert await store.pending(request_id) is None


async def test_abandoned_pending_logins_are_pruned() -> None:
    storage = MemoryStorage()
    store = MFAStore(storage)
    old = await store.create_pending(pending(1000.0))
    fresh = await store.create_pending(pending(5000.0))
    assert await store.prune_pending(2000.0) == 1
    assert await store.pending(old) is None and await store.pending(fresh) is not None
    await store.create_pending(pending(1500.0))
    assert await store.prune_pending(2030.0) == 0  # at most once a minute per node
    assert await store.prune_pending(2061.0) == 1
