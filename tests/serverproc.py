"""Real Strongroom server processes on free ports, for tests driving them over HTTP."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import hvac

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    """A ``strongroom server`` subprocess; stderr goes to a file the test can read."""

    args: list[str]
    port: int
    workdir: Path
    scheme: str = "http"
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)
    root_token: str = ""
    unseal_key: str = ""

    def __post_init__(self) -> None:
        self.log_path = self.workdir / f"server-{self.port}.log"

    @property
    def addr(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0, *, wait_for: str = "") -> ServerProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "STRONGROOM_"))}
        env["PYTHONUNBUFFERED"] = "1"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "strongroom.server", *self.args],
                cwd=self.workdir,
                stdout=log,
                stderr=log,
                env=env,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            if self._listening() and (not wait_for or wait_for in self.log()):
                break
            time.sleep(0.05)
        else:
            self.stop()
            raise RuntimeError(f"server did not start:\n{self.log()}")
        text = self.log()
        token = re.search(r"Root Token: (\S+)", text)
        key = re.search(r"Unseal Key: (\S+)", text)
        self.root_token = token.group(1) if token else ""
        self.unseal_key = key.group(1) if key else ""
        return self

    def _listening(self) -> bool:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def client(self, token: str | None = None, **kwargs: object) -> hvac.Client:
        return hvac.Client(url=self.addr, token=token, timeout=30, **kwargs)  # type: ignore[arg-type]

    def http(self, token: str | None = None) -> httpx.Client:
        headers = {"X-Vault-Token": token} if token else {}
        return httpx.Client(base_url=self.addr, headers=headers, timeout=30)


def start_dev_server(workdir: Path) -> ServerProcess:
    port = free_port()
    server = ServerProcess(
        ["-dev", f"-dev-listen-address=127.0.0.1:{port}", f"-dev-dir={workdir / 'dev'}"],
        port,
        workdir,
    )
    return server.start(wait_for="Root Token:")


def start_config_server(workdir: Path, config_text: str, name: str = "server.hcl") -> ServerProcess:
    """Start a production-mode server from a config whose listener address is ``{port}``."""
    port = free_port()
    config = workdir / name
    config.write_text(config_text.replace("{port}", str(port)))
    return ServerProcess([f"-config={config}"], port, workdir).start()


INMEM_CONFIG = """
storage "inmem" {}
listener "tcp" {
  address = "127.0.0.1:{port}"
  tls_disable = true
}
disable_mlock = true
"""
