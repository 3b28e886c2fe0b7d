"""The ``socket`` audit device: entries shipped off the box over TCP, UDP or a Unix socket.

Options (Vault's): ``address`` (``host:port``, ``[v6]:port``, or a socket path for
``unix``), ``socket_type`` (``tcp`` default, ``udp``, ``unix``) and ``write_timeout``
(default ``2s``), plus the common ones.

Each entry is one newline-terminated line (one datagram for UDP), chained and checkpointed
exactly as in a file, so the receiving side can run ``strongroom audit verify`` on what it
stored: a line lost in transit shows up there as a seq gap. That is the point of shipping
off-box: a copy the server's own operators cannot quietly rewrite.

Delivery semantics, stated plainly: an entry counts as recorded once the kernel accepted it
(TCP: the write buffer drained within ``write_timeout``; UDP: ``sendto`` returned). A TCP
peer that has closed is noticed before the next write and the device reconnects; a write
that times out drops the connection and fails that entry, so a stalled collector delays
requests by at most ``write_timeout`` and then counts as a failed device (fail closed if it
is the only one). UDP can lose entries silently (Vault says the same): pair it with a file.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
from typing import ClassVar

from strongroom.audit.chain import ChainState
from strongroom.audit.devices._base import Device, DeviceConfig, DeviceEnv
from strongroom.errors import InvalidRequest
from strongroom.framework import parse_duration

__all__ = ["SocketDevice", "parse_address"]

_TYPES = ("tcp", "udp", "unix")


def parse_address(address: str, socket_type: str) -> tuple[str, int]:
    """(host, port) for tcp/udp, (path, 0) for unix."""
    if not address:
        raise InvalidRequest("address is required")
    if socket_type == "unix":
        if not os.path.isabs(address) or "\x00" in address:
            raise InvalidRequest("address: a unix socket needs an absolute path")
        return address, 0
    host, sep, port_text = address.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise InvalidRequest("address: expected host:port")
    return host, int(port_text)


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.error: OSError | None = None

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, OSError):
            self.error = exc


class SocketDevice(Device):
    kind = "socket"
    OPTIONS: ClassVar[frozenset[str]] = frozenset({"address", "socket_type", "write_timeout"})

    def __init__(self, config: DeviceConfig, env: DeviceEnv) -> None:
        super().__init__(config, env)
        options = config.options
        self.socket_type = (options.get("socket_type") or "tcp").lower()
        if self.socket_type not in _TYPES:
            raise InvalidRequest("socket_type must be tcp, udp or unix")
        self.host, self.port = parse_address(options.get("address", ""), self.socket_type)
        timeout = parse_duration(options.get("write_timeout", "2s"), "write_timeout")
        self.timeout = float(min(max(timeout, 1), 60))
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._udp_protocol: _Datagrams | None = None

    async def _open_sink(
        self, state: ChainState | None, *, recover: bool
    ) -> tuple[ChainState, str, int]:
        await self._connect()
        return (state or ChainState()), ("restart" if state else "new-stream"), 0

    async def _connect(self) -> None:
        self._drop()
        if self.socket_type == "udp":
            loop = asyncio.get_running_loop()
            transport, protocol = await asyncio.wait_for(
                loop.create_datagram_endpoint(_Datagrams, remote_addr=(self.host, self.port)),
                self.timeout,
            )
            self._udp, self._udp_protocol = transport, protocol
            return
        if self.socket_type == "unix":
            opening = asyncio.open_unix_connection(self.host)
        else:
            opening = asyncio.open_connection(self.host, self.port)
        self._reader, self._writer = await asyncio.wait_for(opening, self.timeout)

    def _drop(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close()
        udp, self._udp = self._udp, None
        if udp is not None:
            udp.close()

    async def _write(self, data: bytes) -> int:
        if self.socket_type == "udp":
            if self._udp is None or self._udp.is_closing():
                await self._connect()
            if self._udp is None or self._udp_protocol is None:
                raise OSError(errno.ENOTCONN, "audit socket is not connected")
            if self._udp_protocol.error is not None:
                error, self._udp_protocol.error = self._udp_protocol.error, None
                raise error
            self._udp.sendto(data)
            return len(data)
        writer, reader = self._writer, self._reader
        if writer is None or reader is None or writer.is_closing() or reader.at_eof():
            await self._connect()  # the collector went away: a fresh connection
            writer = self._writer
        if writer is None:
            raise OSError(errno.ENOTCONN, "audit socket is not connected")
        try:
            writer.write(data)
            await asyncio.wait_for(writer.drain(), self.timeout)
        except BaseException:
            self._drop()
            raise
        return len(data)

    async def _close_sink(self) -> None:
        writer = self._writer
        self._drop()
        if writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), self.timeout)
