"""Client counts include what performance standbys serve: a standby's first sighting of a
client rides on its echo to the active, which stores it once (core/activity.py).

A real ``workers = 2`` server over real HTTP: fresh connections land on either worker; the
audit log (each worker audits what it serves, in its own chain) shows which one served.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.ha.cluster import wait_until
from tests.ha.test_audit_standby import enable_file_device, entries, writer_pid
from tests.ha.test_audit_standby import workers as workers
from tests.ha.test_workers import call, worker_pids
from tests.serverproc import ServerProcess

TOKENS = 24


def monthly(server: ServerProcess) -> dict[str, Any]:
    answer = call(server, "GET", "/v1/sys/internal/counters/activity/monthly", server.root_token)
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()["data"]
    return data


@pytest.fixture
def tokens(workers: ServerProcess) -> Iterator[list[str]]:
    made = []
    for i in range(TOKENS):
        created = call(
            workers,
            "POST",
            "/v1/auth/token/create",
            workers.root_token,
            json={"policies": [f"p{i}-{uuid.uuid4().hex[:8]}"], "no_parent": True},
        )
        assert created.status_code == 200, created.text
        made.append(created.json()["auth"]["client_token"])
    yield made


def test_clients_served_by_the_standby_worker_are_counted_once(
    workers: ServerProcess,
    tokens: list[str],
    tmp_path: Path,
) -> None:
    server = workers
    log = tmp_path / "audit.log"
    with httpx.Client(
        base_url=server.addr, headers={"X-Vault-Token": server.root_token}, timeout=30
    ) as http:
        enable_file_device(http, log)
    before = monthly(server)
    for token in tokens:
        for _ in range(3):  # each client several times, on fresh connections (either worker)
            answer = call(server, "GET", "/v1/auth/token/lookup-self", token)
            assert answer.status_code == 200, answer.text
    lookups = [
        e
        for e in entries(log)
        if e["type"] == "request" and e["request"]["path"] == "auth/token/lookup-self"
    ]
    assert len(lookups) == TOKENS * 3
    assert {writer_pid(e) for e in lookups} == worker_pids(server)  # both workers served
    # the standby's sightings reach the active with its next echo (every 2 s)
    wait_until(
        lambda: monthly(server)["non_entity_clients"] >= before["non_entity_clients"] + TOKENS,
        what="every client counted",
    )
    after = monthly(server)
    assert after["non_entity_clients"] == before["non_entity_clients"] + TOKENS  # once each
    assert after["clients"] == before["clients"] + TOKENS
    with httpx.Client(
        base_url=server.addr, headers={"X-Vault-Token": server.root_token}, timeout=30
    ) as http:
        exported = http.get("/v1/sys/internal/counters/activity/export")
    assert exported.status_code == 200, exported.text
    assert exported.text.count('"non-entity-token"') >= TOKENS


def test_the_outbox_relays_once_requeues_and_refuses_malformed_records() -> None:
    """The relay's own rules (the transport is the echo, tested above)."""
    import asyncio

    from strongroom.clock import FakeClock
    from strongroom.core.activity import ActivityLog
    from strongroom.storage.memory import MemoryStorage

    async def scenario() -> None:
        clock = FakeClock()
        standby = ActivityLog(MemoryStorage(), clock)
        active = ActivityLog(MemoryStorage(), clock)

        def mount_of(path: str) -> tuple[str, str]:
            return "auth/token/", "auth_token_1"

        for policies in (("a",), ("b",), ("a",)):
            assert standby.note("", policies, "auth/token/create", mount_of, relay=True) is None
        assert standby.note("ent-1", (), "auth/userpass/login/x", mount_of, relay=True) is None
        batch = standby.outgoing()
        assert len(batch) == 3 and standby.outgoing() == []  # the repeat was not relayed
        standby.requeue(batch)  # an echo the active did not take
        batch = standby.outgoing()
        assert len(batch) == 3
        await active.receive(batch)
        await active.receive(batch)  # delivered twice (a retried echo): stored once
        assert (await active.monthly())["clients"] == 3
        for bad in (
            "x",
            [{"client_id": "c"}],
            [{**batch[0], "timestamp": "soon"}],
            [{**batch[0], "client_type": "robot"}],
            [batch[0]] * 401,
        ):
            with pytest.raises(ValueError):
                await active.receive(bad)
        assert (await active.monthly())["clients"] == 3

    asyncio.run(scenario())
