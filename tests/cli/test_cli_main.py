"""The entry point, the server delegation, exports, and the CLI's pure-client boundary."""

from __future__ import annotations

import ast
import subprocess
import sys
import types
from pathlib import Path

import pytest

import strongroom.cli
from strongroom.cli import main
from strongroom.cli.main import COMMANDS
from tests.cli.fakevault import Runner

CLI_SOURCE = Path(strongroom.cli.__file__).parent
FORBIDDEN = ("core", "http", "engines", "auth", "storage", "barrier", "seal", "builtin", "server")


def test_exports() -> None:
    assert sorted(strongroom.cli.__all__) == ["main", "run"]
    for name in strongroom.cli.__all__:
        assert getattr(strongroom.cli, name)


def test_every_command_has_usage_and_a_handler() -> None:
    expected = {
        ("status",),
        ("login",),
        ("read",),
        ("write",),
        ("list",),
        ("delete",),
        ("kv", "metadata", "get"),
        ("operator", "generate-root"),
        ("token", "capabilities"),
        ("secrets", "move"),
        ("audit", "list"),
        ("policy", "fmt"),
    }
    assert expected <= set(COMMANDS)
    for key, command in COMMANDS.items():
        assert command.usage.startswith("Usage: strongroom " + " ".join(key))
        assert command.synopsis
        assert callable(command.handler)


def test_server_delegates_to_server_run(cli: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    received: list[list[str]] = []

    def fake_main(argv: list[str]) -> int:
        received.append(argv)
        return 7

    fake = types.ModuleType("strongroom.server.run")
    fake.main = fake_main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "strongroom.server.run", fake)
    assert cli("server", "-dev", "-config=x.hcl").code == 7
    assert received == [["-dev", "-config=x.hcl"]]


def test_main_uses_the_process_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["version"]) == 0
    assert capsys.readouterr().out.startswith("Strongroom v")
    assert main(["read"]) == 1
    assert "Not enough arguments" in capsys.readouterr().err


def _imports(path: Path) -> list[tuple[str, str]]:
    """(module imported, name of the enclosing function or "") for every import."""
    tree = ast.parse(path.read_text())
    found: list[tuple[str, str]] = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, ast.FunctionDef) else function
            if isinstance(child, ast.Import):
                found.extend((alias.name, function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                found.append((child.module, function))
            visit(child, inner)

    visit(tree, "")
    return found


def test_cli_imports_no_server_side_package() -> None:
    offenders = []
    for path in sorted(CLI_SOURCE.glob("*.py")):
        for module, function in _imports(path):
            parts = module.split(".")
            if parts[0] != "strongroom" or len(parts) < 2 or parts[1] not in FORBIDDEN:
                continue
            if (path.name, module, function) in (
                ("main.py", "strongroom.server.run", "_server"),
                ("main.py", "strongroom.server.migrate", "_migrate"),
            ):
                continue  # the sanctioned, lazy delegations of `server` and `operator migrate`
            offenders.append(f"{path.name}: {module}")
    assert offenders == []


def test_importing_the_cli_loads_no_server_module() -> None:
    code = (
        "import sys, strongroom.cli.main\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] == 'strongroom'"
        f" and len(m.split('.')) > 1 and m.split('.')[1] in {FORBIDDEN!r}]\n"
        "print(bad)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
