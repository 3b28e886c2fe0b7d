"""Fixtures: a fake server and a runner for ``strongroom.cli.run`` wired to it."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from strongroom.cli import run
from tests.cli.fakevault import ADDR, TOKEN, FakeServer, Result, Runner


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def cli(server: FakeServer, home: Path) -> Runner:
    """``cli("kv", "get", "secret/foo", env={...}, stdin="…")`` -> Result."""

    def invoke(*argv: str, env: dict[str, str] | None = None, stdin: str = "") -> Result:
        base = {"STRONGROOM_ADDR": ADDR, "STRONGROOM_TOKEN": TOKEN, "HOME": str(home)}
        if env is not None:
            base = {**base, **env}
            base = {k: v for k, v in base.items() if v is not None and v != "<unset>"}
        out, err = io.StringIO(), io.StringIO()
        code = run(list(argv), base, out, err, transport=server.transport, stdin=io.StringIO(stdin))
        return Result(code, out.getvalue(), err.getvalue())

    return invoke
