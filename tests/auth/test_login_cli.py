"""``strongroom login`` as Vault's ``vault login``: the real CLI (a child process) against a
real dev server. Token, userpass and approle logins; ``-path``, ``-no-store``, ``-token-only``,
``-format=json``; the token stored in Vault's helper file ``~/.vault-token``, mode 0600. And
``-method=oidc`` through the test suite's OIDC provider (tests/auth/oidc_provider.py): the
CLI prints the authorization URL, listens on a loopback port for the provider's redirect
(``client`` mode) or polls the server (``direct`` mode); the browser's part is httpx
following the provider's redirects."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.auth.oidc_provider import Provider, run_provider
from tests.serverproc import ServerProcess, free_port

USER = {"sub": "ken", "email": "ken@example.test"}


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> dict[str, object]:
        return dict(json.loads(self.out))


def _env(server: ServerProcess, home: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "VAULT_ADDR": server.addr}


def _cli(server: ServerProcess, home: Path, *argv: str, stdin: str = "") -> Run:
    proc = subprocess.run(
        [sys.executable, "-m", "strongroom.cli", *argv],
        input=stdin,
        capture_output=True,
        text=True,
        env=_env(server, home),
        timeout=60,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def _browser_login(
    server: ServerProcess, home: Path, *argv: str, expect_page: int = 200
) -> tuple[Run, httpx.Response]:
    """Run ``strongroom login -method=oidc …``, act as the browser on the URL it prints."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "strongroom.cli", "login", "-method=oidc", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(server, home),
        text=True,
    )
    found = threading.Event()
    lines: list[str] = []

    def read_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if line.strip().startswith("http"):
                found.set()

    out: list[str] = []

    def read_stdout() -> None:
        assert proc.stdout is not None
        out.append(proc.stdout.read())

    # stderr has its own reader from the start: communicate() would race it for the lines
    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    out_reader = threading.Thread(target=read_stdout, daemon=True)
    out_reader.start()
    try:
        assert found.wait(20), "".join(lines)
        auth_url = next(line.strip() for line in lines if line.strip().startswith("http"))
        page = httpx.get(auth_url, follow_redirects=True, timeout=20)
        assert page.status_code == expect_page, page.text
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(5)
    out_reader.join(5)
    return Run(proc.returncode, "".join(out), "".join(lines)), page


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def _helper(home: Path) -> str:
    helper = home / ".vault-token"
    assert stat.S_IMODE(helper.stat().st_mode) == 0o600
    assert sorted(p.name for p in home.iterdir()) == [".vault-token"]  # no temp file left
    return helper.read_text()


def _lookup(server: ServerProcess, token: str) -> dict[str, object]:
    with server.http(token) as http:
        answer = http.get("/v1/auth/token/lookup-self")
        assert answer.status_code == 200, answer.text
        return dict(answer.json()["data"])


@pytest.fixture
def oidc_mount(dev_server: ServerProcess) -> Iterator[tuple[str, Provider]]:
    mount = "cli-" + uuid.uuid4().hex[:8]
    with run_provider(user=dict(USER)) as provider, dev_server.http(dev_server.root_token) as root:
        assert root.post(f"/v1/sys/auth/{mount}", json={"type": "oidc"}).status_code == 204
        config = {
            "oidc_discovery_url": provider.url,
            "oidc_client_id": provider.client_id,
            "oidc_client_secret": provider.client_secret,
            "default_role": "web",
        }
        assert root.post(f"/v1/auth/{mount}/config", json=config).status_code == 204
        try:
            yield mount, provider
        finally:
            root.delete(f"/v1/sys/auth/{mount}")


def test_token_userpass_and_approle_logins(dev_server: ServerProcess, home: Path) -> None:
    suffix = uuid.uuid4().hex[:6]
    with dev_server.http(dev_server.root_token) as root:
        assert root.post(f"/v1/sys/auth/up-{suffix}", json={"type": "userpass"}).status_code == 204
        user = {"password": "pw-9", "token_policies": ["dev"]}
        assert root.post(f"/v1/auth/up-{suffix}/users/ann", json=user).status_code == 204
        assert root.post(f"/v1/sys/auth/ar-{suffix}", json={"type": "approle"}).status_code == 204
        role = {"token_policies": ["dev"]}
        assert root.post(f"/v1/auth/ar-{suffix}/role/svc", json=role).status_code == 204
        role_id = root.get(f"/v1/auth/ar-{suffix}/role/svc/role-id").json()["data"]["role_id"]
        secret_id = root.post(f"/v1/auth/ar-{suffix}/role/svc/secret-id").json()["data"][
            "secret_id"
        ]
    try:
        # token: looked up, stored, Vault's success text
        run = _cli(dev_server, home, "login", dev_server.root_token)
        assert run.code == 0, run.err
        assert "Success! You are now authenticated" in run.out
        assert _helper(home) == dev_server.root_token

        # userpass at a -path, JSON out, stored over the previous token
        run = _cli(
            dev_server, home, "login", "-method=userpass", f"-path=up-{suffix}", "-format=json",
            "username=ann", "password=pw-9",
        )  # fmt: skip
        assert run.code == 0, run.err
        auth = run.json()["auth"]
        assert isinstance(auth, dict) and auth["metadata"] == {"username": "ann"}
        assert _helper(home) == auth["client_token"]
        assert "dev" in _lookup(dev_server, str(auth["client_token"]))["policies"]  # type: ignore[operator]

        # approle, -token-only -no-store: the token alone on stdout, the file untouched
        before = _helper(home)
        run = _cli(
            dev_server, home, "login", "-method=approle", f"-path=ar-{suffix}", "-token-only",
            "-no-store", f"role_id={role_id}", f"secret_id={secret_id}",
        )  # fmt: skip
        assert run.code == 0, run.err
        token = run.out.strip()
        assert token.startswith("hvs.") and "\n" not in token
        assert _lookup(dev_server, token)["meta"] == {"role_name": "svc"}
        assert _helper(home) == before

        # refused: exit 2, the server's error, nothing stored
        run = _cli(
            dev_server, home, "login", "-method=userpass", f"-path=up-{suffix}",
            "username=ann", "password=wrong",
        )  # fmt: skip
        assert run.code == 2 and "invalid username or password" in run.err
        assert _helper(home) == before
    finally:
        with dev_server.http(dev_server.root_token) as root:
            root.delete(f"/v1/sys/auth/up-{suffix}")
            root.delete(f"/v1/sys/auth/ar-{suffix}")


def test_oidc_login_with_a_local_listener(
    dev_server: ServerProcess, oidc_mount: tuple[str, Provider], home: Path
) -> None:
    mount, provider = oidc_mount
    port = free_port()
    provider.redirect_uris.append(f"http://127.0.0.1:{port}/oidc/callback")
    with dev_server.http(dev_server.root_token) as root:
        role = {
            "user_claim": "sub",
            "allowed_redirect_uris": ["http://127.0.0.1:8250/oidc/callback"],  # loopback: any port
            "claim_mappings": {"email": "email"},
            "token_policies": ["dev"],
        }
        assert root.post(f"/v1/auth/{mount}/role/web", json=role).status_code == 204
    run, page = _browser_login(
        dev_server, home, f"-path={mount}", "-format=json", "skip_browser=true",
        f"port={port}", "listenaddress=127.0.0.1", "callbackhost=127.0.0.1",
    )  # fmt: skip
    assert run.code == 0, run.err
    assert "Signed in" in page.text and page.url.host == "127.0.0.1"
    assert "Waiting for OIDC authentication to complete" in run.err
    auth = run.json()["auth"]
    assert isinstance(auth, dict)
    assert auth["metadata"] == {"role": "web", "email": USER["email"]}
    assert _helper(home) == auth["client_token"]
    sent = provider.authorize_requests[-1]
    assert sent["redirect_uri"] == f"http://127.0.0.1:{port}/oidc/callback"
    assert sent["code_challenge_method"] == "S256"
    # the code reached the CLI's listener only: replaying it at the server is refused
    with dev_server.http() as anonymous:
        replay = anonymous.get(
            f"/v1/auth/{mount}/oidc/callback", params={"state": sent["state"], "code": "x"}
        )
        assert replay.status_code == 400


def test_oidc_login_refused_by_the_provider(
    dev_server: ServerProcess, oidc_mount: tuple[str, Provider], home: Path
) -> None:
    mount, provider = oidc_mount
    provider.tweaks = {"deny": True}
    port = free_port()
    provider.redirect_uris.append(f"http://127.0.0.1:{port}/oidc/callback")
    with dev_server.http(dev_server.root_token) as root:
        role = {"user_claim": "sub", "allowed_redirect_uris": ["http://127.0.0.1/oidc/callback"]}
        assert root.post(f"/v1/auth/{mount}/role/web", json=role).status_code == 204
    run, page = _browser_login(
        dev_server, home, f"-path={mount}", "skip_browser=true", f"port={port}",
        "listenaddress=127.0.0.1", "callbackhost=127.0.0.1", expect_page=400,
    )  # fmt: skip
    assert run.code == 2 and "The user said no" in run.err
    assert "Login failed" in page.text
    assert list(home.iterdir()) == []


def test_oidc_login_in_direct_mode(
    dev_server: ServerProcess, oidc_mount: tuple[str, Provider], home: Path
) -> None:
    mount, provider = oidc_mount
    callback = f"{dev_server.addr}/v1/auth/{mount}/oidc/callback"
    provider.redirect_uris.append(callback)
    with dev_server.http(dev_server.root_token) as root:
        role = {
            "user_claim": "sub",
            "allowed_redirect_uris": [callback],
            "callback_mode": "direct",
            "poll_interval": 1,
            "token_policies": ["dev"],
        }
        assert root.post(f"/v1/auth/{mount}/role/web", json=role).status_code == 204
    run, _ = _browser_login(
        dev_server, home, f"-path={mount}", "-token-only", "-no-store", "role=web",
        "callbackmode=direct",
    )  # fmt: skip
    assert run.code == 0, run.err
    # no display in the test's environment: no browser is started (never a console one)
    assert "Could not open a browser" in run.err
    token = run.out.strip()
    assert _lookup(dev_server, token)["meta"] == {"role": "web"}
    assert list(home.iterdir()) == []
    assert provider.authorize_requests[-1]["redirect_uri"] == callback


def test_oidc_login_usage_errors(dev_server: ServerProcess, home: Path) -> None:
    run = _cli(dev_server, home, "login", "-method=oidc", "port=none")
    assert run.code == 1 and "Invalid port" in run.err
    run = _cli(dev_server, home, "login", "-method=oidc", "colour=blue")
    assert run.code == 1 and "Unknown OIDC login setting" in run.err
    # a mount without OIDC config: the server's error, exit 2
    run = _cli(dev_server, home, "login", "-method=oidc", "-path=nowhere", "skip_browser=true")
    assert run.code == 2 and "Error authenticating" in run.err
