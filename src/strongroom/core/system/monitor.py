"""sys/monitor: stream the server's log records, as they happen, at a level and format.

A handler is attached to the ``strongroom`` logger for the life of the stream and removed
when the client goes away. Records are formatted like the server's own log
(``log_format`` standard or json) and hold what the code logged, never request values.
Records below the server's own level are not produced at all, so the stream shows
``log_level`` or the server's level, whichever is higher.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from strongroom.core.system._context import SysContext
from strongroom.core.system.loggers import LOG_LEVELS
from strongroom.errors import InvalidRequest
from strongroom.framework import Endpoint
from strongroom.logical import Operation, Request, Response

__all__ = ["TABLE"]

_NAMES = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn"}
_BACKLOG = 1000  # records queued for a slow reader before the oldest are dropped


@dataclass(frozen=True, slots=True)
class MonitorArgs:
    log_level: str = "info"
    log_format: str = "standard"


class _StreamHandler(logging.Handler):
    """Hands formatted records to the stream's queue, from whichever thread logs."""

    def __init__(self, level: int, fmt: str, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(level)
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(_BACKLOG)
        self._loop = loop
        self._json = fmt == "json"
        self.setFormatter(logging.Formatter("%(asctime)s [%(levelname)s] %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self._json:
                line = json.dumps(
                    {
                        "@timestamp": self.formatter.formatTime(record) if self.formatter else "",
                        "@level": _NAMES.get(record.levelno, "error"),
                        "@module": record.name,
                        "@message": record.getMessage(),
                    }
                )
            else:
                line = self.format(record)
        except Exception:  # a bad record must not break logging for everyone else
            return
        self._loop.call_soon_threadsafe(self._put, (line + "\n").encode())

    def _put(self, line: bytes) -> None:
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(line)


async def _monitor(ctx: SysContext, request: Request, args: MonitorArgs) -> Response:
    level = LOG_LEVELS.get(args.log_level.strip().lower())
    if level is None:
        raise InvalidRequest(f"unknown log level: {args.log_level[:20]}")
    fmt = args.log_format.strip().lower() or "standard"
    if fmt not in ("standard", "json"):
        raise InvalidRequest(f'unknown log format "{fmt[:20]}": use "standard" or "json"')
    handler = _StreamHandler(level, fmt, asyncio.get_running_loop())
    target = logging.getLogger("strongroom")
    target.addHandler(handler)

    async def lines() -> AsyncIterator[bytes]:
        try:
            while True:
                yield await handler.queue.get()
        finally:
            target.removeHandler(handler)

    return Response(stream=lines(), content_type="text/plain; charset=utf-8")


TABLE: list[Endpoint[SysContext]] = [
    Endpoint(
        r"monitor",
        {Operation.READ: _monitor},
        MonitorArgs,
        synopsis="Stream the server's log",
        description="log_level (trace, debug, info, warn, error), log_format (standard "
        "or json). The stream lasts until the client disconnects.",
    )
]
