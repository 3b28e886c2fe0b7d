"""service-registration against a real server and a small HTTPS stand-in for the Kubernetes
API that records the label patches it receives."""

from __future__ import annotations

import http.server
import json
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strongroom.agent.registration import labels_for
from tests.agent.helpers import wait_for
from tests.auth.helpers import issue, make_ca
from tests.serverproc import start_dev_server


class KubeApi:
    def __init__(self) -> None:
        self.patches: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        self.url = ""


@pytest.fixture
def kube_api(tmp_path: Path) -> Iterator[KubeApi]:
    ca = make_ca("kube-ca")
    cert, key = issue(ca, "kubernetes", server=True).write(tmp_path, "kube")
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "ca.crt").write_text(ca.pem)
    (sa / "token").write_text("sa-token-1")
    state = KubeApi()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_PATCH(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            state.patches.append((self.path, headers, json.loads(body)))
            data = b"{}"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    state.url = f"https://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def test_labels_table() -> None:
    assert labels_for(200) == {
        "strongroom-active": "true",
        "strongroom-sealed": "false",
        "strongroom-initialized": "true",
        "strongroom-perf-standby": "false",
    }
    assert labels_for(429)["strongroom-active"] == "false"  # type: ignore[index]
    assert labels_for(473)["strongroom-perf-standby"] == "true"  # type: ignore[index]
    assert labels_for(503)["strongroom-sealed"] == "true"  # type: ignore[index]
    assert labels_for(501)["strongroom-initialized"] == "false"  # type: ignore[index]
    assert labels_for(500) is None


def test_labels_follow_the_server(kube_api: KubeApi, tmp_path: Path) -> None:
    (tmp_path / "own").mkdir()
    server = start_dev_server(tmp_path / "own")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "strongroom.cli",
            "service-registration",
            f"-address={server.addr}",
            f"-kubernetes-api={kube_api.url}",
            f"-service-account-dir={tmp_path / 'sa'}",
            "-namespace=strongroom",
            "-pod=strongroom-0",
            "-interval=0.2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: kube_api.patches)
        path, headers, body = kube_api.patches[0]
        assert path == "/api/v1/namespaces/strongroom/pods/strongroom-0"
        assert headers["authorization"] == "Bearer sa-token-1"
        assert headers["content-type"] == "application/merge-patch+json"
        assert body == {"metadata": {"labels": labels_for(200)}}
        (tmp_path / "sa" / "token").write_text("sa-token-2")  # a rotated token is re-read
        server.client(server.root_token).sys.seal()
        wait_for(lambda: len(kube_api.patches) == 2)
        _, headers, body = kube_api.patches[1]
        assert body["metadata"]["labels"]["strongroom-sealed"] == "true"
        assert body["metadata"]["labels"]["strongroom-active"] == "false"
        assert headers["authorization"] == "Bearer sa-token-2"
        server.client().sys.submit_unseal_key(server.unseal_key)
        wait_for(lambda: len(kube_api.patches) == 3)
        assert kube_api.patches[2][2] == {"metadata": {"labels": labels_for(200)}}
        # nothing changes: nothing is sent
        import time

        time.sleep(1)
        assert len(kube_api.patches) == 3
    finally:
        proc.terminate()
        code = proc.wait(timeout=10)
        server.stop()
    assert code == 0, proc.stdout.read().decode() if proc.stdout else ""
