"""The ``syslog`` audit device: entries to the local syslog daemon.

Options (Vault's): ``facility`` (default ``AUTH``) and ``tag`` (default ``vault``), plus the
common ones. Like Vault, it always writes to the local agent; we talk to it directly over
its Unix datagram socket (``/dev/log``, or ``/var/run/syslog`` / ``/var/run/log`` where
those exist) instead of through the stdlib :mod:`syslog` module, because that module keeps
one process-wide identity: two devices with different tags or facilities would overwrite
each other's settings.

Each entry is one datagram ``<PRI>Mmm dd hh:mm:ss TAG[PID]: LINE`` at severity ``info``.
The chain hashes only the JSON object, so a line stored by the daemon (with its own date
and host in front) still verifies. The send is non-blocking: a full socket buffer or an
entry larger than the daemon accepts fails that entry instead of stalling the event loop
(Vault warns about the same size limit; pair syslog with a file device).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import socket
import time
from typing import ClassVar

from strongroom.audit.chain import ChainState
from strongroom.audit.devices._base import Device, DeviceConfig, DeviceEnv
from strongroom.errors import InvalidRequest

__all__ = ["FACILITIES", "SyslogDevice"]

FACILITIES = {
    "KERN": 0,
    "USER": 1,
    "MAIL": 2,
    "DAEMON": 3,
    "AUTH": 4,
    "SYSLOG": 5,
    "LPR": 6,
    "NEWS": 7,
    "UUCP": 8,
    "CRON": 9,
    "AUTHPRIV": 10,
    "FTP": 11,
    **{f"LOCAL{i}": 16 + i for i in range(8)},
}
_SEVERITY_INFO = 6
_SOCKETS = ("/dev/log", "/var/run/syslog", "/var/run/log")
_TAG = re.compile(r"[A-Za-z0-9_.\-/]{1,48}")


class SyslogDevice(Device):
    kind = "syslog"
    OPTIONS: ClassVar[frozenset[str]] = frozenset({"facility", "tag"})
    SYNC_WRITES: ClassVar[bool] = True

    def __init__(
        self, config: DeviceConfig, env: DeviceEnv, *, socket_path: str | None = None
    ) -> None:
        super().__init__(config, env)
        options = config.options
        facility = (options.get("facility") or "AUTH").upper()
        if facility not in FACILITIES:
            raise InvalidRequest("facility: not a syslog facility name")
        tag = options.get("tag") or "vault"
        if not _TAG.fullmatch(tag):
            raise InvalidRequest("tag: letters, digits and _.-/ only (48 at most)")
        self._priority = FACILITIES[facility] * 8 + _SEVERITY_INFO
        self._tag = tag
        self._socket_path = socket_path
        self._sock: socket.socket | None = None

    def _target(self) -> str:
        if self._socket_path:
            return self._socket_path
        for candidate in _SOCKETS:
            if os.path.exists(candidate):
                return candidate
        raise OSError(errno.ENOENT, "no local syslog socket")

    async def _open_sink(
        self, state: ChainState | None, *, recover: bool
    ) -> tuple[ChainState, str, int]:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.connect(self._target())
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        return (state or ChainState()), ("restart" if state else "new-stream"), 0

    async def _write(self, data: bytes) -> int:
        return self._write_now(data)

    def _write_now(self, data: bytes) -> int:
        sock = self._sock
        if sock is None:
            raise OSError(errno.ENOTCONN, "syslog socket is not open")
        stamp = time.strftime("%b %d %H:%M:%S", time.localtime())
        header = f"<{self._priority}>{stamp} {self._tag}[{os.getpid()}]: ".encode()
        payload = header + data.rstrip(b"\n")
        sent = sock.send(payload)
        if sent != len(payload):
            raise OSError(errno.EMSGSIZE, "syslog datagram truncated")
        return len(data)

    async def _close_sink(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()
