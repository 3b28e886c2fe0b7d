"""Vault's background operations (the tidy endpoints): started by a request that answers
202 at once with a warning, run on the event loop, one at a time per job, their outcome
logged. A second start while one runs starts nothing and says so."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from strongroom.logical import Response

__all__ = ["BackgroundJob"]

log = logging.getLogger("strongroom.background")

_STARTED = (
    "Tidy operation successfully started. Any information from the operation will be"
    " printed to the server's logs."
)
_RUNNING = "Tidy operation already in progress."


class BackgroundJob:
    """One named background operation. ``start(work)`` returns the 202 answer; ``work``
    returns a line for the log (never secrets: counts, not values)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self, work: Callable[[], Awaitable[str]]) -> Response:
        if self.running:
            return Response(status=202, warnings=[_RUNNING])
        self._task = asyncio.get_running_loop().create_task(self._run(work))
        return Response(status=202, warnings=[_STARTED])

    async def wait(self) -> None:
        """Until the running operation (if any) is over."""
        task = self._task
        if task is not None:
            await asyncio.shield(task)

    async def _run(self, work: Callable[[], Awaitable[str]]) -> None:
        try:
            outcome = await work()
        except asyncio.CancelledError:
            log.warning("%s: cancelled", self.name)
            raise
        except Exception as exc:
            # the type only: a library's message can quote a stored value
            log.error("%s failed: %s", self.name, type(exc).__name__)
        else:
            log.info("%s: %s", self.name, outcome)
