"""Shared fixtures: real Strongroom server processes on free ports, driven over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import hvac
import pytest

from tests.serverproc import INMEM_CONFIG, ServerProcess, start_config_server, start_dev_server


@pytest.fixture(scope="session")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_dev_server(tmp_path_factory.mktemp("dev"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def root_client(dev_server: ServerProcess) -> hvac.Client:
    return dev_server.client(dev_server.root_token)


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """An uninitialised, sealed server on in-memory storage."""
    server = start_config_server(tmp_path, INMEM_CONFIG)
    try:
        yield server
    finally:
        server.stop()
