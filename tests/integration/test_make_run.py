"""``make run``: the README's promise, checked on the command the Makefile runs.

The tests never bind 127.0.0.1:8200; they run the same console script with
``-dev-listen-address`` on a free port.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import hvac
import hvac.exceptions
import pytest

from strongroom.server.run import _parse
from tests.serverproc import ROOT, free_port

STRONGROOM = Path(sys.executable).parent / "strongroom"


@dataclass
class DevRun:
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def field(self, name: str) -> str:
        match = re.search(rf"^{name}: (\S+)$", self.output(), re.MULTILINE)
        assert match, self.output()
        return match.group(1)

    def client(self) -> hvac.Client:
        return hvac.Client(
            url=f"http://127.0.0.1:{self.port}", token=self.field("Root Token"), timeout=30
        )


def _start_dev(workdir: Path, *extra: str) -> DevRun:
    port = free_port()
    log_path = workdir / f"dev-{port}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "STRONGROOM_"))}
    env["PYTHONUNBUFFERED"] = "1"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(STRONGROOM), "server", "-dev", f"-dev-listen-address=127.0.0.1:{port}", *extra],
            cwd=workdir,
            stdout=log,
            stderr=log,
            env=env,
        )
    run = DevRun(proc, port, log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, run.output()
        if "Root Token:" in run.output():
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    return run
        time.sleep(0.05)
    _stop(run)
    raise AssertionError(f"dev server did not start:\n{run.output()}")


def _stop(run: DevRun, sig: int = signal.SIGINT) -> int:
    if run.proc.poll() is None:
        run.proc.send_signal(sig)
        try:
            run.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            run.proc.kill()
            run.proc.wait()
    return run.proc.returncode


@pytest.fixture
def dev_run(tmp_path: Path) -> Iterator[DevRun]:
    run = _start_dev(tmp_path)
    try:
        yield run
    finally:
        _stop(run)


def test_make_run_is_strongroom_server_dev() -> None:
    assert shutil.which("make") is not None, "make is required (.ci/run installs it)"
    result = subprocess.run(
        ["make", "-n", "-s", "run"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "$(BIN)/strongroom server -dev".replace(
        "$(BIN)", ".venv/bin"
    )


def test_dev_defaults_match_the_readme() -> None:
    args = _parse(["-dev"])
    assert args.dev and args.dev_listen_address == "127.0.0.1:8200"
    assert args.dev_dir == ".strongroom"


def test_dev_server_prints_keys_warning_and_serves(dev_run: DevRun, tmp_path: Path) -> None:
    output = dev_run.output()
    assert "WARNING! dev mode is enabled!" in output
    assert "Never use dev mode in production" in output
    assert dev_run.field("Api Address") == f"http://127.0.0.1:{dev_run.port}"
    unseal_key = dev_run.field("Unseal Key")
    token = dev_run.field("Root Token")
    assert token.startswith("hvs.")
    assert len(base64.b64decode(unseal_key)) >= 32
    client = dev_run.client()
    assert client.is_authenticated()
    assert client.sys.is_sealed() is False
    assert client.lookup_token()["data"]["policies"] == ["root"]
    client.secrets.kv.v2.create_or_update_secret("app", secret={"password": "s3cret"})
    read = client.secrets.kv.v2.read_secret_version("app", raise_on_deleted_version=True)
    assert read["data"]["data"] == {"password": "s3cret"}
    assert "secret/" in client.sys.list_mounted_secrets_engines()["data"]
    # the printed unseal key unseals it again
    client.sys.seal()
    assert client.sys.submit_unseal_key(unseal_key)["sealed"] is False
    # the README's `./.strongroom/` directory, private
    directory = tmp_path / ".strongroom"
    assert (directory / "dev.db").is_file()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_dev_server_starts_from_scratch_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    first = _start_dev(tmp_path, "-dev-dir=dev")
    try:
        first.client().secrets.kv.v2.create_or_update_secret("gone", secret={"k": "v"})
    finally:
        assert _stop(first, signal.SIGINT) == 0
    second = _start_dev(tmp_path, "-dev-dir=dev")
    try:
        assert second.field("Root Token") != first.field("Root Token")
        with pytest.raises(hvac.exceptions.InvalidPath):
            second.client().secrets.kv.v2.read_secret_version("gone", raise_on_deleted_version=True)
    finally:
        assert _stop(second, signal.SIGTERM) == 0


def test_dev_root_token_id(tmp_path: Path) -> None:
    run = _start_dev(tmp_path, "-dev-root-token-id=devroot")
    try:
        assert run.field("Root Token") == "devroot"
        assert run.client().lookup_token()["data"]["policies"] == ["root"]
    finally:
        _stop(run)
