"""Adopting a dead writer's chain: its unsigned tail is closed by exactly one live writer on
the same host, with a ``recovered`` checkpoint, and nothing else is touched."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from strongroom.audit import Signer
from strongroom.audit.adopt import Adopted, adopt_dead_chains, writer_is_dead
from strongroom.audit.chain import Chain, ChainState, CheckpointPolicy, Verifier
from strongroom.audit.devices._base import host_of, writer_id
from strongroom.audit.devices.file import _settled_size
from strongroom.framework import format_time

POLICY = CheckpointPolicy(entries=7, interval=60)


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def host() -> str:
    return host_of(f"{writer_id()}/0")


def write_chain(path: Path, signer: Signer, chain_id: str, lines: int) -> None:
    """A writer's chain: a link, ``lines`` requests, a checkpoint every 7 lines (no final
    one: the writer 'died')."""
    chain = Chain(ChainState(chain_id=chain_id))
    now = format_time(time.time())
    with path.open("ab") as out:

        def emit(entry: dict[str, Any]) -> None:
            line = chain.stamp(entry)
            out.write(line.data)
            chain.commit(line, len(line.data))

        emit(chain.link_entry(now, POLICY, "new-file"))
        for i in range(lines):
            emit({"time": now, "type": "request", "request": {"path": f"p/{i}"}})
            if chain.uncovered >= POLICY.entries:
                emit(chain.checkpoint_entry(signer, now, POLICY))


def checkpointer(signer: Signer) -> Any:
    def build(chain: Chain, lines: int) -> dict[str, Any]:
        return chain.checkpoint_entry(signer, format_time(time.time()), POLICY, recovered=lines)

    return build


def adopt(path: Path, signer: Signer, owned: frozenset[str] = frozenset()) -> list[Adopted]:
    fd = os.open(path, os.O_RDWR | os.O_APPEND)
    try:
        return adopt_dead_chains(
            fd,
            prefix="",
            host=host(),
            me=writer_id(),
            owned=owned,
            checkpoint=checkpointer(signer),
            settle=_settled_size,
        )
    finally:
        os.close(fd)


def chains(path: Path) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for line in path.read_bytes().splitlines():
        entry = orjson.loads(line)
        found.setdefault(entry["chain"], []).append(entry)
    return found


def verify_later(path: Path, signer: Signer) -> Verifier:
    """Verify as if an hour had passed: an uncovered tail would be a finding by then."""
    verifier = Verifier({signer.key_id: signer.public_key}, now=time.time() + 3600)
    with path.open("rb") as handle:
        verifier.feed(str(path), handle)
    verifier.finish()
    return verifier


def test_liveness_rule() -> None:
    me = writer_id()
    pid = dead_pid()
    assert writer_is_dead(f"{host()}-{pid}-0badc0de/1", host(), me)
    assert not writer_is_dead(f"{me}/3", host(), me)  # our own chain
    assert writer_is_dead(f"{host()}-{os.getpid()}-0badc0de/1", host(), me)  # pid reused by us
    assert not writer_is_dead(f"{host()}-1-0badc0de/1", host(), me)  # alive (init)
    assert not writer_is_dead(f"other-host-{pid}-0badc0de/1", host(), me)  # another host's
    assert not writer_is_dead("", host(), me)  # legacy


@pytest.mark.parametrize("round_", range(10))
def test_concurrent_adopters_sign_a_dead_tail_exactly_once(
    tmp_path: Path, signer: Signer, round_: int
) -> None:
    log = tmp_path / "audit.log"
    dead = f"{host()}-{dead_pid()}-0badc0de/1"
    closed = f"{host()}-{dead_pid()}-0badc0df/1"
    live = f"{host()}-{os.getpid()}-{writer_id().rsplit('-', 1)[1]}/9"  # this process: alive
    saved = f"{host()}-{dead_pid()}-0badc0e0/1"  # dead, but the active's saved head
    write_chain(log, signer, dead, 10)  # link + 10: a checkpoint after 7, 4 unsigned
    write_chain(log, signer, closed, 6)  # link + 6 + checkpoint: nothing unsigned
    write_chain(log, signer, live, 3)
    write_chain(log, signer, saved, 3)
    before = chains(log)
    adopters = 4
    start = threading.Barrier(adopters)
    results: list[list[Adopted]] = []

    def run() -> None:
        start.wait()
        results.append(adopt(log, signer, frozenset({saved})))

    threads = [threading.Thread(target=run) for _ in range(adopters)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == adopters
    assert sorted(map(len, results)) == [0] * (adopters - 1) + [1]
    assert [a for r in results for a in r] == [Adopted(dead, 4)]
    after = chains(log)
    last = after[dead][-1]
    assert last["type"] == "checkpoint" and last["recovered"] == 4
    assert len(after[dead]) == len(before[dead]) + 1
    for other in (closed, live, saved):
        assert after[other] == before[other]
    # the dead chain verifies even an hour later; the live and saved ones keep their
    # (by then stale) tails, as before
    verifier = verify_later(log, signer)
    verdicts = {c.chain: c.report for c in verifier.chains}
    assert verdicts[dead].ok and verdicts[closed].ok
    assert any("recovered" in w for w in verdicts[dead].warnings)
    assert not verdicts[live].ok and not verdicts[saved].ok
    assert adopt(log, signer, frozenset({saved})) == []  # nothing left to adopt


def test_a_broken_or_unanchored_dead_chain_is_not_signed(tmp_path: Path, signer: Signer) -> None:
    log = tmp_path / "audit.log"
    broken = f"{host()}-{dead_pid()}-0badc0de/1"
    write_chain(log, signer, broken, 10)
    lines = log.read_bytes().splitlines(keepends=True)
    del lines[-2]  # a deleted line: the chain no longer continues
    log.write_bytes(b"".join(lines))
    assert adopt(log, signer) == []
    assert log.read_bytes() == b"".join(lines)


def test_a_live_device_notices_a_writer_that_died_and_adopts_its_chain(
    tmp_path: Path, signer: Signer
) -> None:
    """The periodic look (broker tick): only appended bytes are read; a writer that died
    since triggers one adoption pass, and nothing more afterwards."""
    import asyncio

    from strongroom.audit.devices import DeviceConfig, DeviceEnv, FileDevice
    from strongroom.clock import SystemClock

    log = tmp_path / "audit.log"
    env = DeviceEnv(clock=SystemClock(), signer=lambda: signer, on_checkpoint=lambda d: None)
    config = DeviceConfig(
        path="file/", type="file", uuid="u-1", salt=b"x" * 32, options={"file_path": str(log)}
    )

    async def scenario() -> None:
        device = FileDevice(config, env)
        await device.open(None)
        assert await device.adopt_dead(()) == []
        assert not await device.dead_writer_seen()
        # another writer appends its chain and dies uncleanly
        dead = f"{host()}-{dead_pid()}-0badc0de/1"
        write_chain(log, signer, dead, 3)
        assert await device.dead_writer_seen()
        assert await device.adopt_dead(()) == [Adopted(dead, 4)]  # link + 3 entries
        assert not await device.dead_writer_seen()  # settled: no second pass
        await device.record(
            {"time": format_time(time.time()), "type": "request", "seq": 0, "prev_hash": ""}
        )
        assert not await device.dead_writer_seen()
        await device.close()

    asyncio.run(scenario())
    verifier = verify_later(log, signer)
    assert all(c.report.ok for c in verifier.chains), [c.report.finding for c in verifier.chains]
