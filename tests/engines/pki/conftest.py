"""PKI tests drive a real ``strongroom server -dev`` over HTTP with hvac, httpx and openssl."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import hvac
import pytest

from tests.serverproc import ServerProcess


@pytest.fixture(scope="module")
def client(dev_server: ServerProcess) -> hvac.Client:
    return dev_server.client(dev_server.root_token)


@pytest.fixture
def mount(client: hvac.Client) -> Iterator[str]:
    """A fresh PKI mount (one per test)."""
    path = f"pki-{uuid.uuid4().hex[:8]}"
    client.sys.enable_secrets_engine("pki", path=path)
    try:
        yield path
    finally:
        client.sys.disable_secrets_engine(path)
