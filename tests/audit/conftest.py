"""Audit fixtures: an event loop per test, logs built with the pure chain, an in-process core."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from strongroom.audit import Chain, ChainState, CheckpointPolicy, Signer
from strongroom.clock import FakeClock
from strongroom.core.core import Core
from strongroom.core.handling import handle
from strongroom.logical import Connection, Operation, Request, Response
from strongroom.server.wiring import Assembly, assemble

Run = Callable[[Awaitable[Any]], Any]
T0 = 1_800_000_000.0


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as runner:
        yield runner


@pytest.fixture
def run(runner: asyncio.Runner) -> Run:
    def run_one(awaitable: Awaitable[Any]) -> Any:
        async def wrap() -> Any:
            return await awaitable

        return runner.run(wrap())

    return run_one


@pytest.fixture(scope="session")
def signer() -> Signer:
    return Signer.generate()


def stamp(seconds: float) -> str:
    from strongroom.framework import format_time

    return format_time(seconds)


def build_log(
    signer: Signer,
    entries: int,
    *,
    every: int = 5,
    start: float = T0,
    state: ChainState | None = None,
    prefix: str = "",
    final_checkpoint: bool = True,
) -> tuple[list[bytes], Chain]:
    """A log as a device writes it: a link, ``entries`` request lines, a checkpoint each
    time ``every`` lines are pending, and (optionally) a final checkpoint."""
    policy = CheckpointPolicy(every, 60.0)
    chain = Chain(state or ChainState(), prefix)
    lines: list[bytes] = []

    def emit(entry: dict[str, Any]) -> None:
        line = chain.stamp(entry)
        lines.append(line.data)
        chain.commit(line, len(line.data))

    emit(chain.link_entry(stamp(start), policy, "new-file"))
    for i in range(entries):
        now = start + i + 1
        emit(
            {
                "time": stamp(now),
                "type": "request",
                "seq": 0,
                "prev_hash": "",
                "request": {"path": f"secret/data/app{i}", "operation": "read"},
            }
        )
        if chain.uncovered >= every:
            emit(chain.checkpoint_entry(signer, stamp(now), policy))
    if final_checkpoint and chain.uncovered:
        emit(chain.checkpoint_entry(signer, stamp(start + entries + 1), policy))
    return lines, chain


@dataclass
class InProcess:
    """A real core (in-memory storage) driven through the request road, no HTTP."""

    assembly: Assembly
    root: str
    keys: list[bytes]

    @property
    def core(self) -> Core:
        return self.assembly.core

    async def call(
        self,
        operation: Operation,
        path: str,
        data: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        remote: str = "10.0.0.7",
        request_id: str = "req",
    ) -> Response | None:
        request = Request(
            operation=operation,
            path=path,
            data=data or {},
            id=request_id,
            client_token=self.root if token is None else token,
            connection=Connection(remote_addr=remote, remote_port=40000),
        )
        return await handle(self.core, request)

    async def restart(self) -> None:
        """Seal and unseal again (the broker stops and starts, as across a restart)."""
        await self.core.seal()
        await self.core.seal_manager.submit_unseal_key(self.keys[0])
        await self.core.after_unseal()


async def make_core(*, audit_directory: str = "", clock: FakeClock | None = None) -> InProcess:
    assembly = await assemble("inmem", {}, audit_directory=audit_directory, clock=clock)
    core = assembly.core
    keys, root = await core.initialize(1, 1)
    await core.seal_manager.submit_unseal_key(keys[0])
    await core.after_unseal()
    await core.enable("secret/", "kv", is_auth=False, options={"version": "2"})
    return InProcess(assembly, root, keys)


@pytest.fixture
def core_factory(run: Run, tmp_path: Path) -> Iterator[Callable[..., InProcess]]:
    made: list[InProcess] = []

    def factory(**kwargs: Any) -> InProcess:
        instance: InProcess = run(make_core(**kwargs))
        made.append(instance)
        return instance

    yield factory
    for instance in made:
        run(instance.assembly.close())


def read_lines(path: Path) -> list[dict[str, Any]]:
    import orjson

    return [orjson.loads(line) for line in path.read_bytes().splitlines()]
