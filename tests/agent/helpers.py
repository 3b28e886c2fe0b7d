"""Real ``strongroom agent`` processes for tests, and polling helpers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def wait_for(
    probe: Callable[[], T],
    timeout: float = 20.0,
    what: str | Callable[[], str] = "condition",
    interval: float = 0.05,
) -> T:
    """Poll ``probe`` until it returns something truthy (exceptions count as not yet)."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = probe()
        except (OSError, ValueError, KeyError, AssertionError) as exc:
            last = exc
            value = None  # type: ignore[assignment]
        if value:
            return value
        time.sleep(interval)
    described = what() if callable(what) else what
    raise AssertionError(
        f"timed out waiting for {described}" + (f" (last error: {last})" if last else "")
    )


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


@dataclass
class AgentProcess:
    config_path: Path
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.workdir / f"agent-{self.config_path.stem}.log"

    def start(self, *extra: str) -> AgentProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "STRONGROOM_"))}
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.env)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "strongroom.cli",
                    "agent",
                    f"-config={self.config_path}",
                    *extra,
                ],
                cwd=self.workdir,
                stdout=log,
                stderr=log,
                env=env,
            )
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_log(self, text: str, timeout: float = 20.0, count: int = 1) -> None:
        wait_for(
            lambda: self.log().count(text) >= count,
            timeout,
            lambda: f"{text!r} in the agent log\n--- log ---\n{self.log()}",
        )

    def wait_exit(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def write_config(directory: Path, text: str, name: str = "agent.hcl", **values: Any) -> Path:
    path = directory / name
    for key, value in values.items():
        text = text.replace("{" + key + "}", str(value))
    path.write_text(text)
    return path
