"""``strongroom server -config``: real processes started from HCL and JSON files, the listener's
slow-client timeouts, request size limits, storage files and shutdown."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.serverproc import ServerProcess, free_port

HCL = """
storage "inmem" {}
listener "tcp" {
  address     = "127.0.0.1:{port}"
  tls_disable = true
}
"""


def _start(workdir: Path, text: str, name: str = "server.hcl") -> ServerProcess:
    port = free_port()
    config = workdir / name
    config.write_text(text.replace("{port}", str(port)))
    return ServerProcess([f"-config={config.name}"], port, workdir).start()


def _run_failing(
    workdir: Path, text: str, name: str = "server.hcl"
) -> subprocess.CompletedProcess[str]:
    """Run a server whose configuration must be refused; it has to exit on its own."""
    config = workdir / name
    config.write_text(text.replace("{port}", str(free_port())))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "STRONGROOM_"))}
    return subprocess.run(
        [sys.executable, "-m", "strongroom.server", f"-config={config}"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=False,
    )


def _assert_fresh(server: ServerProcess) -> None:
    status = server.http().get("/v1/sys/seal-status").json()
    assert status["initialized"] is False and status["sealed"] is True
    assert server.http().get("/v1/sys/health").status_code == 501


# -- files ---------------------------------------------------------------------------------------


def test_hcl_config_starts_sealed_and_uninitialised(tmp_path: Path) -> None:
    server = _start(tmp_path, HCL)
    try:
        _assert_fresh(server)
    finally:
        server.stop()


def test_json_config_starts_sealed_and_uninitialised(tmp_path: Path) -> None:
    document = {
        "storage": {"inmem": {}},
        "listener": [{"tcp": {"address": "127.0.0.1:{port}", "tls_disable": True}}],
        "default_lease_ttl": "1h",
    }
    server = _start(tmp_path, json.dumps(document), name="server.json")
    try:
        _assert_fresh(server)
    finally:
        server.stop()


def test_unknown_key_exits_nonzero_naming_it(tmp_path: Path) -> None:
    result = _run_failing(tmp_path, HCL + 'frobnicate_the_vault = "yes"\n')
    assert result.returncode != 0
    assert "frobnicate_the_vault" in result.stderr
    assert "unknown key" in result.stderr
    assert "server.hcl" in result.stderr


def test_unknown_listener_key_exits_nonzero_naming_it(tmp_path: Path) -> None:
    text = HCL.replace("tls_disable = true", "tls_disable = true\n  tls_dsiable = true")
    result = _run_failing(tmp_path, text)
    assert result.returncode != 0
    assert 'unknown key "tls_dsiable"' in result.stderr
    assert 'listener "tcp"' in result.stderr


def test_tls_without_certificates_exits_nonzero(tmp_path: Path) -> None:
    result = _run_failing(tmp_path, HCL.replace("tls_disable = true", ""))
    assert result.returncode != 0
    assert "tls_cert_file" in result.stderr


def test_missing_certificate_file_exits_nonzero(tmp_path: Path) -> None:
    text = HCL.replace(
        "tls_disable = true", 'tls_cert_file = "nope.crt"\n  tls_key_file = "nope.key"'
    )
    result = _run_failing(tmp_path, text)
    assert result.returncode != 0
    assert "server failed" in result.stderr


def test_vault_ignored_key_warns_and_starts(tmp_path: Path) -> None:
    server = _start(tmp_path, HCL + 'disable_mlock = true\ncluster_name = "x"\n')
    try:
        _assert_fresh(server)
        warnings = [line for line in server.log().splitlines() if "[WARNING]" in line]
        assert any('"disable_mlock" is not supported and is ignored' in w for w in warnings)
        assert any('"cluster_name"' in w for w in warnings)
    finally:
        server.stop()


def test_legacy_backend_stanza(tmp_path: Path) -> None:
    server = _start(tmp_path, HCL.replace('storage "inmem"', 'backend "inmem"'))
    try:
        _assert_fresh(server)
    finally:
        server.stop()


SQLITE = """
storage "sqlite" {
  path = "data/nested/strongroom.db"
}
listener "tcp" {
  address     = "127.0.0.1:{port}"
  tls_disable = true
}
"""


def test_relative_sqlite_path_and_file_modes(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    old_umask = os.umask(0o022)  # a permissive umask: the modes below must not depend on it
    try:
        server = _start(workdir, SQLITE)
    finally:
        os.umask(old_umask)
    try:
        client = server.client()
        result = client.sys.initialize(secret_shares=1, secret_threshold=1)
        client.sys.submit_unseal_key(result["keys"][0])
        client.token = result["root_token"]
        client.sys.enable_secrets_engine("kv", path="kv")
        client.secrets.kv.v1.create_or_update_secret("a", {"b": "c"}, mount_point="kv")
    finally:
        server.stop()
    assert server.proc is not None and server.proc.returncode == 0
    database = workdir / "data" / "nested" / "strongroom.db"
    assert database.is_file()  # resolved against the server's working directory
    assert not (tmp_path / "data").exists()
    assert stat.S_IMODE(database.parent.stat().st_mode) == 0o700
    for path in database.parent.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    # and the data survives a restart
    server = _start(workdir, SQLITE)
    try:
        client = server.client()
        client.sys.submit_unseal_key(result["keys"][0])
        client.token = result["root_token"]
        secret = client.secrets.kv.v1.read_secret("a", mount_point="kv")
        assert secret["data"] == {"b": "c"}
    finally:
        server.stop()


def test_sqlite_parent_directories_are_private(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        server = _start(tmp_path, SQLITE)
    finally:
        os.umask(old_umask)
    server.stop()
    assert stat.S_IMODE((tmp_path / "data" / "nested").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700


def test_log_level_from_config(tmp_path: Path) -> None:
    server = _start(tmp_path, HCL + 'log_level = "warn"\ndisable_mlock = true\n')
    try:
        _assert_fresh(server)
    finally:
        server.stop()
    log = server.log()
    assert "[WARNING]" in log
    assert "[INFO]" not in log


def test_sigterm_stops_cleanly(tmp_path: Path) -> None:
    server = _start(tmp_path, HCL)
    assert server.proc is not None
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=15) == 0
    assert "Shutting down" in server.log()


def test_two_listeners_and_sigint(tmp_path: Path) -> None:
    second = free_port()
    text = HCL + f'listener "tcp" {{\n  address = "127.0.0.1:{second}"\n  tls_disable = true\n}}\n'
    server = _start(tmp_path, text)
    assert server.proc is not None
    try:
        for port in (server.port, second):
            answer = httpx.get(f"http://127.0.0.1:{port}/v1/sys/seal-status", timeout=10)
            assert answer.json()["sealed"] is True
    finally:
        server.proc.send_signal(signal.SIGINT)
    assert server.proc.wait(timeout=15) == 0


# -- request size -------------------------------------------------------------------------------


def test_per_listener_request_size(tmp_path: Path) -> None:
    unlimited = free_port()
    text = HCL.replace("tls_disable = true", "tls_disable = true\n  max_request_size = 1024")
    text += (
        f'listener "tcp" {{\n  address = "127.0.0.1:{unlimited}"\n  tls_disable = true\n'
        "  max_request_size = -1\n}\n"
    )
    server = _start(tmp_path, text)
    try:
        big = {"secret_shares": 1, "secret_threshold": 1, "pad": "x" * 4096}
        small = server.http().put("/v1/sys/init", json=big)
        assert small.status_code == 413
        # -1 is "unlimited": requests with and without bodies work there
        with httpx.Client(base_url=f"http://127.0.0.1:{unlimited}", timeout=30) as other:
            assert other.get("/v1/sys/seal-status").status_code == 200
            assert other.put("/v1/sys/init", json=big).status_code == 200
    finally:
        server.stop()


# -- slow clients --------------------------------------------------------------------------------

SLOW = """
storage "inmem" {}
listener "tcp" {
  address                  = "127.0.0.1:{port}"
  tls_disable              = true
  http_read_header_timeout = "1s"
  http_read_timeout        = "1s"
  http_idle_timeout        = "1s"
}
"""
BOUND = 8.0  # generous: the server's deadline is 1 s


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = _start(tmp_path_factory.mktemp("slow"), SLOW)
    try:
        yield server
    finally:
        server.stop()


def _connect(server: ServerProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=BOUND)
    sock.settimeout(BOUND)
    return sock


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes; socket.timeout if it never does."""
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize(
    "partial",
    [
        b"",  # connected, silent
        b"GET /v1/sys/seal-st",  # a partial request line
        b"LIST /v1/secret/metad",  # a partial LIST line (held back for the rewrite)
        b"GET /v1/sys/seal-status HTTP/1.1\r\nHost: x\r\n",  # headers never finished
    ],
)
def test_header_timeout_disconnects(slow_server: ServerProcess, partial: bytes) -> None:
    with _connect(slow_server) as sock:
        sock.sendall(partial)
        started = time.monotonic()
        assert _read_until_closed(sock) == b""
        assert time.monotonic() - started < BOUND


def test_header_timeout_on_kept_alive_connection(slow_server: ServerProcess) -> None:
    with _connect(slow_server) as sock:
        sock.sendall(b"GET /v1/sys/seal-status HTTP/1.1\r\nHost: x\r\n\r\n")
        head = _read_response(sock)
        assert head.startswith(b"HTTP/1.1 200")
        sock.sendall(b"LIST /v1/sys/pol")  # the next request stalls
        assert _read_until_closed(sock) == b""


def _read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_body_timeout_answers_400(slow_server: ServerProcess) -> None:
    with _connect(slow_server) as sock:
        sock.sendall(
            b"PUT /v1/sys/init HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"secret_'
        )
        response = _read_response(sock)
    assert response.startswith(b"HTTP/1.1 400")
    assert b"timed out reading the request body" in response


def test_body_arriving_after_the_headers_is_read_whole(slow_server: ServerProcess) -> None:
    body = b'{"secret_shares": "many", "secret_threshold": 1}'
    with _connect(slow_server) as sock:
        sock.sendall(
            b"PUT /v1/sys/init HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        time.sleep(0.2)  # the app is already waiting for the body, under its deadline
        sock.sendall(body[:10])
        time.sleep(0.2)
        sock.sendall(body[10:])
        response = _read_response(sock)
    assert response.startswith(b"HTTP/1.1 400")
    assert b"secret_shares" in response  # the field was parsed, the JSON read whole
    assert b"timed out" not in response and b"malformed" not in response


def test_idle_keep_alive_timeout(slow_server: ServerProcess) -> None:
    with _connect(slow_server) as sock:
        for _ in range(2):  # the connection is reused while it is busy
            sock.sendall(b"GET /v1/sys/seal-status HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _read_response(sock).startswith(b"HTTP/1.1 200")
        assert _read_until_closed(sock) == b""


def test_patient_clients_are_unaffected(slow_server: ServerProcess) -> None:
    with slow_server.http() as http:
        for _ in range(3):
            assert http.get("/v1/sys/seal-status").status_code == 200
