"""Agent tests: a real dev server (the session's), real agent processes, real files."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import hvac
import pytest

from tests.agent.helpers import AgentProcess, write_config
from tests.pg import PgCluster, pg_cluster_fixture
from tests.serverproc import ServerProcess

StartAgent = Callable[..., AgentProcess]


@pytest.fixture
def root(dev_server: ServerProcess) -> hvac.Client:
    return dev_server.client(dev_server.root_token)


@pytest.fixture
def start_agent(tmp_path: Path, dev_server: ServerProcess) -> Iterator[StartAgent]:
    """Write a config (``{addr}`` and ``{dir}`` filled in) and start an agent on it."""
    agents: list[AgentProcess] = []

    def start(
        text: str,
        *extra: str,
        name: str = "agent.hcl",
        env: dict[str, str] | None = None,
        addr: str = "",
        **values: object,
    ) -> AgentProcess:
        path = write_config(
            tmp_path, text, name, addr=addr or dev_server.addr, dir=tmp_path, **values
        )
        agent = AgentProcess(path, tmp_path, env=env or {}).start(*extra)
        agents.append(agent)
        return agent

    yield start
    for agent in agents:
        agent.stop()


@pytest.fixture(scope="session")
def pg() -> Iterator[PgCluster]:
    yield from pg_cluster_fixture()
