"""Exec mode (Vault Agent's process supervisor): run the application as a child with the
``env_template`` values in its environment, and restart it when they change.

The child starts once every env template has rendered. On a change, with
``restart_on_secret_changes = "always"``, it gets ``restart_stop_signal`` (SIGTERM), up to
30 s to exit (then SIGKILL), and starts again with the new environment. When the child exits
by itself, the agent exits with its code, as Vault Agent does.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Mapping

from .config import ExecConfig

__all__ = ["ChildExited", "Supervisor"]

log = logging.getLogger("strongroom.agent.exec")


class ChildExited(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(f"the child process exited with code {code}")
        self.code = code


class Supervisor:
    def __init__(self, config: ExecConfig, base_env: Mapping[str, str]) -> None:
        self.config = config
        self.base_env = dict(base_env)
        self.process: asyncio.subprocess.Process | None = None
        self.env: dict[str, str] | None = None
        self.starts = 0
        self._restarting = False
        self._exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def __repr__(self) -> str:
        return f"Supervisor({self.config.command[0]!r}, starts={self.starts})"

    async def update(self, env: dict[str, str]) -> None:
        """New env template values: start the child, or restart it."""
        first = self.env is None
        self.env = env
        if first:
            await self._start()
        elif self.config.restart_on_secret_changes == "always":  # noqa: S105 - a setting
            log.info("secrets changed: restarting the child process")
            await self._stop()
            await self._start()

    async def _start(self) -> None:
        assert self.env is not None
        env = {**self.base_env, **self.env}
        self.process = await asyncio.create_subprocess_exec(
            *self.config.command, env=env, stdin=asyncio.subprocess.DEVNULL
        )
        self.starts += 1
        asyncio.get_running_loop().create_task(self._reap(self.process))

    async def _reap(self, process: asyncio.subprocess.Process) -> None:
        code = await process.wait()
        if process is self.process and not self._restarting and not self._exited.done():
            self._exited.set_result(code)

    async def _stop(self) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        self._restarting = True
        try:
            process.send_signal(getattr(signal, self.config.restart_stop_signal))
            try:
                await asyncio.wait_for(process.wait(), timeout=30)
            except TimeoutError:
                process.kill()
                await process.wait()
        finally:
            self._restarting = False

    async def wait(self) -> int:
        """The child's exit code, once it exits on its own."""
        return await self._exited

    async def close(self) -> None:
        self._restarting = True
        await self._stop()
