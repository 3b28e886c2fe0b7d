"""A restarted worker rejoins unsealed: it asks a live, unsealed sibling for the root key.

With ``workers = N`` the supervisor (server/workers.py) holds no key. When a worker dies
and is restarted, the new process would start sealed and need the next unseal key share;
instead it asks its siblings over a private channel only they can use:

- **Where**: each worker listens on ``k<index>.sock`` in the supervisor's 0700 directory
  (next to its cluster socket ``w<index>.sock``): only the same user can connect at all.
- **Who**: both ends read the other's credentials from the kernel (``SO_PEERCRED``) and
  accept only a process of the same user whose parent is their own parent, i.e. a sibling
  started by the same supervisor.
- **Proof**: the supervisor draws a random 32-byte secret at start and hands it to every
  worker it starts through an inherited pipe (read once, then closed: never in an
  environment variable, on a command line, on disk or in a log). Both ends prove they hold
  it (HMAC-SHA256 over both sides' fresh nonces, server first), and the root key travels
  sealed with AES-256-GCM under a key derived from the secret and both nonces.
- **What**: an unsealed sibling answers with its root key; the new worker opens the stored
  keyring with it (as an unseal does) and joins the cluster as a standby. A sealed sibling
  answers "sealed"; when no sibling is unsealed the new worker stays sealed, as before.

The secret unlocks nothing by itself: it only lets a sibling ask a sibling; the root key is
never written anywhere and never leaves the worker processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import socket
import struct
from collections.abc import Callable

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.core.core import Core

__all__ = ["SiblingKeys", "read_secret"]

log = logging.getLogger("strongroom.server")

_MAGIC = b"SRK1"
_NONCE = 32
_MAC = 32
_TIMEOUT = 5.0  # a whole exchange; a sibling that takes longer is skipped
_JOIN_WINDOW = 3.0  # how long a starting worker keeps asking siblings that are not up yet
_UNSEALED, _SEALED = b"\x01", b"\x00"


def read_secret(fd: int) -> bytes:
    """Read the supervisor's secret from the inherited pipe ``fd``, then close it."""
    try:
        data = b""
        while len(data) < 32:
            chunk = os.read(fd, 32 - len(data))
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    if len(data) != 32:
        raise ValueError("the worker secret pipe did not carry a 32-byte secret")
    return data


def _mac(secret: bytes, label: bytes, nonce_c: bytes, nonce_s: bytes) -> bytes:
    return hmac.new(secret, label + nonce_c + nonce_s, hashlib.sha256).digest()


def _parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


def is_sibling(sock: socket.socket) -> bool:
    """The peer of a connected Unix socket is a process of our user started by our parent."""
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, _gid = struct.unpack("3i", raw)
        return uid == os.getuid() and pid != os.getpid() and _parent_of(pid) == os.getppid()
    except (OSError, ValueError, IndexError):
        return False


class SiblingKeys:
    """This worker's end of the root-key exchange: a server for its siblings, and
    :meth:`join` to ask them at start."""

    def __init__(
        self,
        core: Core,
        secret: bytes,
        directory: str,
        index: int,
        count: int,
        *,
        peer_check: Callable[[socket.socket], bool] = is_sibling,
    ) -> None:
        self._core = core
        self._secret = secret
        self._directory = directory
        self._index = index
        self._count = count
        self._peer_check = peer_check
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[bool]] = set()

    def __repr__(self) -> str:
        return f"SiblingKeys(index={self._index}, count={self._count})"

    def path_of(self, index: int) -> str:
        return os.path.join(self._directory, f"k{index}.sock")

    # ----- server side ---------------------------------------------------------------
    async def start(self) -> None:
        path = self.path_of(self._index)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        self._server = await asyncio.start_unix_server(self._serve, path=path)
        os.chmod(path, 0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None
        for task in list(self._tasks):
            task.cancel()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            sock = writer.get_extra_info("socket")
            if sock is None or not self._peer_check(sock):
                log.warning("refused a key request on the worker socket: not a sibling process")
                return
            async with asyncio.timeout(_TIMEOUT):
                hello = await reader.readexactly(len(_MAGIC) + _NONCE)
                if hello[: len(_MAGIC)] != _MAGIC:
                    return
                nonce_c = hello[len(_MAGIC) :]
                nonce_s = secrets.token_bytes(_NONCE)
                writer.write(nonce_s + _mac(self._secret, b"server", nonce_c, nonce_s))
                await writer.drain()
                proof = await reader.readexactly(_MAC)
                if not hmac.compare_digest(proof, _mac(self._secret, b"client", nonce_c, nonce_s)):
                    log.warning("refused a key request on the worker socket: bad proof")
                    return
                core = self._core
                if core.sealed or core.barrier.sealed:
                    writer.write(_SEALED)
                else:
                    key = _mac(self._secret, b"key", nonce_c, nonce_s)
                    nonce = secrets.token_bytes(12)
                    sealed_key = AESGCM(key).encrypt(nonce, core.barrier.root_key, _MAGIC)
                    writer.write(_UNSEALED + nonce + struct.pack(">H", len(sealed_key)))
                    writer.write(sealed_key)
                    log.info("gave the root key to a restarted sibling worker")
                await writer.drain()
        except (OSError, EOFError, TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    # ----- client side ---------------------------------------------------------------
    async def ask(self, index: int) -> bytes | None:
        """The root key from sibling ``index``; ``None`` if it is sealed.

        Raises:
            OSError: the sibling cannot be reached or failed the exchange.
        """
        reader, writer = await asyncio.open_unix_connection(self.path_of(index))
        try:
            sock = writer.get_extra_info("socket")
            if sock is None or not self._peer_check(sock):
                raise OSError("the process behind the sibling socket is not a sibling")
            async with asyncio.timeout(_TIMEOUT):
                nonce_c = secrets.token_bytes(_NONCE)
                writer.write(_MAGIC + nonce_c)
                await writer.drain()
                answer = await reader.readexactly(_NONCE + _MAC)
                nonce_s, proof = answer[:_NONCE], answer[_NONCE:]
                if not hmac.compare_digest(proof, _mac(self._secret, b"server", nonce_c, nonce_s)):
                    raise OSError("the sibling failed to prove it holds the worker secret")
                writer.write(_mac(self._secret, b"client", nonce_c, nonce_s))
                await writer.drain()
                status = await reader.readexactly(1)
                if status != _UNSEALED:
                    return None
                nonce = await reader.readexactly(12)
                (size,) = struct.unpack(">H", await reader.readexactly(2))
                sealed_key = await reader.readexactly(size)
            key = _mac(self._secret, b"key", nonce_c, nonce_s)
            try:
                return AESGCM(key).decrypt(nonce, sealed_key, _MAGIC)
            except Exception as exc:  # cryptography's InvalidTag
                raise OSError("the sibling's answer did not authenticate") from exc
        except (asyncio.IncompleteReadError, TimeoutError) as exc:
            raise OSError("the sibling closed the exchange") from exc
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def join(self) -> bool:
        """At start: if the store is initialised and this worker sealed, unseal with the
        root key of the first unsealed sibling. Siblings not up yet are asked again for a
        short while. Returns whether this worker is unsealed afterwards."""
        core = self._core
        try:
            if not await core.seal_manager.initialized():
                return False
        except Exception:  # storage down at start: stay sealed, as before
            return False
        pending = {i for i in range(self._count) if i != self._index}
        deadline = asyncio.get_running_loop().time() + _JOIN_WINDOW
        while pending and core.barrier.sealed:
            for index in sorted(pending):
                try:
                    root_key = await self.ask(index)
                except OSError:
                    continue  # not up (yet), or not answering: ask again
                pending.discard(index)
                if root_key is None or not core.barrier.sealed:
                    continue
                try:
                    await core.barrier.unseal(root_key)
                except Exception as exc:
                    log.warning(
                        "a sibling's root key did not open the keyring: %s", type(exc).__name__
                    )
                    continue
                if core.sealed:
                    await core.after_unseal()
                log.info("unsealed with the root key of sibling worker %d", index)
                return True
            if asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.1)
        return not core.barrier.sealed

    def start_join(self) -> None:
        task = asyncio.get_running_loop().create_task(self.join())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
