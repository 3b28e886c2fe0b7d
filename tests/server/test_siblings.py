"""The root-key exchange between sibling workers (server/siblings.py), over a real Unix
socket, with the kernel's sibling check set aside so that the secret proof itself is tested
(the sibling check is tested with real worker processes in tests/ha/test_workers.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from strongroom.server.siblings import SiblingKeys, read_secret
from strongroom.testing import unsealed_core


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _anyone(_sock: object) -> bool:
    return True


@pytest.mark.anyio
async def test_only_a_holder_of_the_secret_gets_the_root_key(tmp_path: Path) -> None:
    secret = os.urandom(32)
    async with unsealed_core() as tc:
        server = SiblingKeys(tc.core, secret, str(tmp_path), 0, 2, peer_check=_anyone)
        await server.start()
        try:
            good = SiblingKeys(tc.core, secret, str(tmp_path), 1, 2, peer_check=_anyone)
            assert await good.ask(0) == tc.core.barrier.root_key
            bad = SiblingKeys(tc.core, os.urandom(32), str(tmp_path), 1, 2, peer_check=_anyone)
            with pytest.raises(OSError, match="prove"):
                await bad.ask(0)  # the server's proof does not verify under a wrong secret
            # a sealed sibling says so and gives nothing
            await tc.core.seal()
            assert await good.ask(0) is None
        finally:
            await server.close()


@pytest.mark.anyio
async def test_a_key_that_does_not_open_the_keyring_leaves_the_worker_sealed(
    tmp_path: Path,
) -> None:
    secret = os.urandom(32)
    db = str(tmp_path / "shared.db")
    async with unsealed_core("sqlite", {"path": db}) as live:
        server = SiblingKeys(live.core, secret, str(tmp_path), 0, 2, peer_check=_anyone)
        await server.start()
        try:
            async with unsealed_core("sqlite", {"path": str(tmp_path / "other.db")}) as other:
                await other.core.seal()
                # a worker of another store: the sibling's key does not open its keyring
                joiner = SiblingKeys(other.core, secret, str(tmp_path), 1, 2, peer_check=_anyone)
                assert await joiner.join() is False
                assert other.core.sealed
        finally:
            await server.close()


def test_the_secret_pipe_is_read_once_and_closed() -> None:
    read_end, write_end = os.pipe()
    os.write(write_end, b"s" * 32)
    os.close(write_end)
    assert read_secret(read_end) == b"s" * 32
    with pytest.raises(OSError):
        os.fstat(read_end)
    read_end, write_end = os.pipe()
    os.write(write_end, b"short")
    os.close(write_end)
    with pytest.raises(ValueError, match="32-byte"):
        read_secret(read_end)
