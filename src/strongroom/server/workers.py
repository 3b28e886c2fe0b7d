"""``workers = N``: several server processes of one node sharing its listeners.

The process started by the operator becomes a **supervisor**: it binds every listener
socket itself, then starts N worker processes (``python -m strongroom.server`` with the
same arguments plus the inherited socket descriptors) that all accept on those sockets. It
holds no key and no storage; it restarts a worker that dies (after a short back-off when it
died young) and passes SIGTERM/SIGINT/SIGHUP on.

Each worker is a full server on the shared store in HA mode (SQLite in shared mode, or
PostgreSQL with ``ha_enabled``): one is the active, the others performance standbys,
through the same mechanism as separate nodes (core/cluster.py). Each worker also listens on
a private Unix socket, ``w<index>.sock`` in a 0700 directory the supervisor creates; that
is its cluster address, over which standbys forward to the active what they must not
serve. A worker that is unsealed, or sealed, passes the same unseal key share (or seal) on
to its siblings over those sockets, so unsealing through the shared listener unseals every
worker; a worker restarted after a crash asks an unsealed sibling for the root key over a
channel only siblings can use (server/siblings.py) and rejoins unsealed; if no sibling is
unsealed it stays sealed until the next key shares are submitted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from strongroom.core.forwarding import FORWARDED
from strongroom.server.config import ListenerConfig

__all__ = ["WorkerInfo", "bind_listener", "relay_to_siblings", "supervise"]

log = logging.getLogger("strongroom.server")

_YOUNG = 5.0  # a worker that dies sooner than this after its start is restarted after a pause
_PAUSE = 1.0
_RELAY_WAIT = 15.0  # how long an unseal share waits for a sibling that is still starting


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """What a worker process is told by its supervisor (hidden command-line flags)."""

    index: int
    count: int  # how many workers the supervisor runs
    fds: tuple[int, ...]  # one inherited listening socket per listener, in config order
    directory: str  # the 0700 directory of the workers' private sockets
    # the supervisor's sibling secret (server/siblings.py), read from an inherited pipe
    secret: bytes = field(default=b"", repr=False, compare=False)

    @property
    def socket_path(self) -> str:
        return self.socket_of(self.index)

    def socket_of(self, index: int) -> str:
        return os.path.join(self.directory, f"w{index}.sock")

    @property
    def cluster_addr(self) -> str:
        return "unix://" + self.socket_path


def bind_listener(listener: ListenerConfig) -> socket.socket:
    """A listening TCP socket for ``listener``, inheritable by worker processes."""
    host, _, port = listener.address.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, int(port)))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def supervise(argv: Sequence[str], listeners: Sequence[ListenerConfig], workers: int) -> int:
    """Run ``workers`` worker processes on shared listener sockets until a stop signal."""
    sockets = [bind_listener(listener) for listener in listeners]
    fds = tuple(sock.fileno() for sock in sockets)
    directory = tempfile.mkdtemp(prefix="strongroom-workers-")  # 0700
    base: list[str] = []
    skip = False
    for arg in argv:  # the workers flag is the supervisor's alone ("-workers=2", "-workers 2")
        name = arg.lstrip("-")
        if skip:
            skip = False
        elif name == "workers":
            skip = True
        elif not name.startswith("workers="):
            base.append(arg)
    procs: dict[int, tuple[subprocess.Popen[bytes], float]] = {}
    stopping: list[int] = []
    # lets the workers prove to each other that they are siblings (server/siblings.py): a
    # restarted worker gets the root key from an unsealed one. Handed over through a pipe
    # only (never the environment, the command line, a file or a log); it unlocks nothing.
    secret = secrets.token_bytes(32)

    def spawn(index: int) -> None:
        read_end, write_end = os.pipe()
        try:
            os.write(write_end, secret)  # 32 bytes: far below a pipe's buffer
        finally:
            os.close(write_end)
        flags = [
            f"-worker-index={index}",
            f"-worker-count={workers}",
            f"-worker-fds={','.join(str(fd) for fd in fds)}",
            f"-worker-dir={directory}",
            f"-worker-secret-fd={read_end}",
        ]
        try:
            proc = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
                [sys.executable, "-m", "strongroom.server", *base, *flags],
                pass_fds=(*fds, read_end),
            )
        finally:
            os.close(read_end)
        procs[index] = (proc, time.monotonic())
        log.info("worker %d started (pid %d)", index, proc.pid)

    def on_stop(signum: int, _frame: Any) -> None:
        stopping.append(signum)
        for proc, _ in procs.values():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signum)

    def on_hup(signum: int, _frame: Any) -> None:
        for proc, _ in procs.values():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signum)

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_hup)
    try:
        for index in range(workers):
            spawn(index)
        while not stopping:
            time.sleep(0.1)
            for index, (proc, started) in list(procs.items()):
                if proc.poll() is None or stopping:
                    continue
                log.warning("worker %d (pid %d) exited with %s", index, proc.pid, proc.returncode)
                if time.monotonic() - started < _YOUNG:
                    time.sleep(_PAUSE)
                if not stopping:
                    spawn(index)
        deadline = time.monotonic() + 15
        for proc, _ in procs.values():
            try:
                proc.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    finally:
        for sock in sockets:
            sock.close()
        for name in os.listdir(directory):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(directory, name))
        with contextlib.suppress(OSError):
            os.rmdir(directory)
    return 0


async def relay_to_siblings(
    info: WorkerInfo, method: str, path: str, body: dict[str, Any], token: str = ""
) -> None:
    """Send an operator action (an unseal key share, a seal) to every other worker over
    its private socket, waiting up to ``_RELAY_WAIT`` for a sibling that is still starting.
    Not relayed again by them (they see it as forwarded)."""
    if FORWARDED.get():
        return
    headers = {"x-vault-token": token} if token else {}
    siblings = [i for i in range(info.count) if i != info.index]
    await asyncio.gather(
        *(_relay_one(info.socket_of(i), method, path, body, headers) for i in siblings)
    )


async def _relay_one(
    path_: str, method: str, path: str, body: dict[str, Any], headers: dict[str, str]
) -> None:
    deadline = time.monotonic() + _RELAY_WAIT
    while True:
        transport = httpx.AsyncHTTPTransport(uds=path_)
        try:
            async with httpx.AsyncClient(
                transport=transport, base_url="http://worker", timeout=30
            ) as client:
                await client.request(method, "/v1/" + path, json=body, headers=headers)
            return
        except httpx.HTTPError as exc:
            if time.monotonic() > deadline:
                log.warning(
                    "could not pass %s on to worker %s: %s",
                    path,
                    os.path.basename(path_),
                    type(exc).__name__,
                )
                return
        await asyncio.sleep(0.1)
