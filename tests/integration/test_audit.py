"""Audit on real server processes, through hvac and httpx: pairs of entries for every
operation, nothing secret in the file, denials, audit-hash, a socket device shipping to a
real TCP listener, failing closed on a full disk, SIGHUP rotation, restarts, and the CLI."""

from __future__ import annotations

import base64
import contextlib
import io
import os
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import orjson
import pytest
import requests

from strongroom.cli.main import run as cli_run
from tests.serverproc import ServerProcess, start_config_server, start_dev_server

# Pre-router status endpoints Vault does not audit either.
UNAUDITED = {"sys/seal-status", "sys/health", "sys/init", "sys/unseal", "sys/leader"}


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[ServerProcess]:
    server = start_dev_server(tmp_path)
    try:
        yield server
    finally:
        server.stop()


def entries(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def cli(*argv: str, env: dict[str, str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli_run(list(argv), env, out, err, stdin=io.StringIO(""))
    return code, out.getvalue(), err.getvalue()


class Counted:
    """An hvac client whose every HTTP request path is recorded."""

    def __init__(self, server: ServerProcess, token: str) -> None:
        self.paths: list[str] = []
        session = requests.Session()
        session.hooks["response"].append(self._seen)
        self.client = hvac.Client(url=server.addr, token=token, session=session, timeout=30)

    def _seen(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        path = response.request.path_url.split("?")[0].removeprefix("/v1/")
        self.paths.append(path)


def test_every_operation_leaves_one_request_and_one_response_entry(
    dev: ServerProcess, tmp_path: Path
) -> None:
    log = tmp_path / "audit.log"
    root = dev.client(dev.root_token)
    root.sys.enable_audit_device("file", options={"file_path": str(log)})
    counted = Counted(dev, dev.root_token)
    client = counted.client
    secrets_written = ["kv2-s3cret-value", "kv1-s3cret-value", "cubby-s3cret", "patch-s3cret"]
    kv = client.secrets.kv.v2
    kv.create_or_update_secret("app/db", {"password": secrets_written[0]})
    kv.read_secret_version("app/db", raise_on_deleted_version=True)
    kv.patch("app/db", {"extra": secrets_written[3]})
    kv.list_secrets("app")
    kv.read_secret_metadata("app/db")
    kv.update_metadata("app/db", max_versions=3)
    kv.delete_latest_version_of_secret("app/db")
    kv.undelete_secret_versions("app/db", versions=[1])
    client.sys.enable_secrets_engine("kv", path="kv1", options={"version": "1"})
    client.secrets.kv.v1.create_or_update_secret(
        "team", {"pw": secrets_written[1]}, mount_point="kv1"
    )
    client.secrets.kv.v1.read_secret("team", mount_point="kv1")
    client.sys.tune_mount_configuration("kv1", default_lease_ttl="1h")
    client.sys.list_mounted_secrets_engines()
    client.sys.create_or_update_policy("dev", 'path "secret/*" { capabilities = ["read"] }')
    client.sys.read_policy("dev")
    client.sys.list_policies()
    created = client.auth.token.create(policies=["dev"], ttl="1h")
    child = created["auth"]["client_token"]
    child_accessor = created["auth"]["accessor"]
    client.auth.token.lookup(child)
    client.auth.token.lookup_self()
    client.auth.token.renew(child, increment="2h")
    client.write("cubbyhole/note", value=secrets_written[2])
    client.read("cubbyhole/note")
    client.sys.list_enabled_audit_devices()
    client.sys.read_seal_status()  # pre-router: not audited (as Vault)
    client.auth.token.revoke(child)
    client.sys.disable_secrets_engine("kv1")
    kv.delete_metadata_and_all_versions("app/db")
    audited = [p for p in counted.paths if p not in UNAUDITED]
    wait_for(lambda: sum(1 for e in entries(log) if e["type"] == "response") >= len(audited))
    found = entries(log)
    pairs = Counter(
        (e["request"]["id"], e["type"]) for e in found if e["type"] in ("request", "response")
    )
    ids = {request_id for request_id, _ in pairs}
    assert len(ids) == len(audited)
    assert all(pairs[(i, "request")] == 1 and pairs[(i, "response")] == 1 for i in ids)
    logged = sorted(e["request"]["path"].rstrip("/") for e in found if e["type"] == "request")
    assert logged == sorted(path.rstrip("/") for path in audited)
    text = log.read_text()
    for value in [*secrets_written, dev.root_token, child, child_accessor, dev.unseal_key]:
        assert value not in text, value
    assert base64.b64decode(dev.unseal_key).hex() not in text


def test_denied_and_bad_tokens_are_audited_with_identity(
    dev: ServerProcess, tmp_path: Path
) -> None:
    log = tmp_path / "audit.log"
    root = dev.client(dev.root_token)
    root.sys.enable_audit_device("file", options={"file_path": str(log)})
    root.sys.create_or_update_policy("narrow", 'path "other/*" { capabilities = ["read"] }')
    token = root.auth.token.create(policies=["narrow"], display_name="carol")["auth"][
        "client_token"
    ]
    with pytest.raises(hvac.exceptions.Forbidden):
        dev.client(token).secrets.kv.v2.read_secret_version("app", raise_on_deleted_version=True)
    bad = dev.http("hvs.not-a-real-token").get("/v1/secret/data/app")
    assert bad.status_code == 403
    missing = dev.http().get("/v1/secret/data/app")
    assert missing.status_code == 403
    denied = [e for e in entries(log) if e.get("error") == "permission denied"]
    assert len(denied) == 6  # three requests, a request and a response entry each
    identities = {e["auth"]["display_name"] for e in denied}
    assert identities == {"token-carol", ""}
    assert all(e["request"]["remote_address"] == "127.0.0.1" for e in denied)
    assert token not in log.read_text() and "hvs.not-a-real-token" not in log.read_text()


def test_audit_hash_finds_a_value(dev: ServerProcess, tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    root = dev.client(dev.root_token)
    root.sys.enable_audit_device("file", path="main", options={"file_path": str(log)})
    root.secrets.kv.v2.create_or_update_secret("x", {"password": "look-for-me"})
    answer = dev.http(dev.root_token).put("/v1/sys/audit-hash/main", json={"input": "look-for-me"})
    hashed = answer.json()["data"]["hash"]
    assert hashed.startswith("hmac-sha256:") and hashed in log.read_text()
    assert "look-for-me" not in log.read_text()
    listed = root.sys.list_enabled_audit_devices()["data"]
    assert listed["main/"]["type"] == "file" and listed["main/"]["options"]["file_path"] == str(log)


def test_socket_device_ships_to_a_tcp_listener(dev: ServerProcess, tmp_path: Path) -> None:
    received: list[bytes] = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]

    def collect() -> None:
        connection, _ = listener.accept()
        with connection, connection.makefile("rb") as stream:
            for line in stream:
                received.append(line)

    thread = threading.Thread(target=collect, daemon=True)
    thread.start()
    root = dev.client(dev.root_token)
    root.sys.enable_audit_device(
        "socket", options={"address": f"127.0.0.1:{port}", "socket_type": "tcp"}
    )
    root.secrets.kv.v2.create_or_update_secret("shipped", {"password": "over-the-wire"})
    root.secrets.kv.v2.read_secret_version("shipped", raise_on_deleted_version=True)
    pem = dev.http().get("/v1/sys/audit-public-key").json()["data"]["public_key"]
    wait_for(lambda: sum(1 for x in received if b'"type":"response"' in x) >= 2)
    root.sys.disable_audit_device("socket")  # a final checkpoint, then the connection closes
    thread.join(timeout=10)
    listener.close()
    kinds = [orjson.loads(x)["type"] for x in received]
    assert kinds[0] == "link" and kinds[-1] == "checkpoint"
    assert b"over-the-wire" not in b"".join(received)
    (tmp_path / "shipped.log").write_bytes(b"".join(received))
    (tmp_path / "key.pem").write_text(pem)
    code, out, _ = cli(
        "audit", "verify", f"-pubkey={tmp_path / 'key.pem'}", str(tmp_path / "shipped.log"), env={}
    )
    assert code == 0, out


@contextlib.contextmanager
def tiny_tmpfs(directory: Path) -> Iterator[Path]:
    directory.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(directory)],
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:  # CI runs as root: this must work, never skip
        pytest.fail(f"cannot mount a tmpfs (needs root): {result.stderr!r}")
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)


def test_fail_closed_when_the_only_device_cannot_write(dev: ServerProcess, tmp_path: Path) -> None:
    with tiny_tmpfs(tmp_path / "small") as small:
        log = small / "audit.log"
        root = dev.client(dev.root_token)
        root.sys.enable_audit_device("file", options={"file_path": str(log)})
        root.secrets.kv.v2.create_or_update_secret("before", {"v": "1"})
        filler = small / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, b"\0" * 4096):  # until ENOSPC
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
        big = {f"key{i}": "v" for i in range(200)}  # an entry spanning several pages
        http = dev.http(dev.root_token)
        refused = http.post("/v1/secret/data/refused", json={"data": big})
        assert refused.status_code == 500
        assert refused.json()["errors"] == ["internal error"]
        wait_for(lambda: "failed to audit request, cannot continue" in dev.log())
        filler.unlink()
        assert http.get("/v1/secret/data/refused").status_code == 404  # it never happened
        assert http.post("/v1/secret/data/after", json={"data": {"v": "2"}}).status_code == 200
        paths = [e["request"]["path"] for e in entries(log) if e["type"] == "request"]
        assert "secret/data/refused" in paths  # the read after the disk was freed
        assert paths.count("secret/data/refused") == 1
        root.sys.disable_audit_device("file")


def test_sighup_rotates_and_verify_checks_both_files(dev: ServerProcess, tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    root = dev.client(dev.root_token)
    root.sys.enable_audit_device("file", options={"file_path": str(log)})
    root.secrets.kv.v2.create_or_update_secret("one", {"v": "1"})
    pem = tmp_path / "key.pem"
    pem.write_text(dev.http().get("/v1/sys/audit-public-key").json()["data"]["public_key"])
    log.rename(tmp_path / "audit.log.1")
    assert dev.proc is not None
    dev.proc.send_signal(signal.SIGHUP)
    wait_for(log.exists)
    root.secrets.kv.v2.create_or_update_secret("two", {"v": "2"})
    dev.stop()  # SIGTERM: a final checkpoint
    first, second = str(tmp_path / "audit.log.1"), str(log)
    assert entries(Path(first))[-1]["type"] == "checkpoint"
    assert entries(log)[0]["type"] == "link" and entries(log)[-1]["type"] == "checkpoint"
    assert cli("audit", "verify", f"-pubkey={pem}", first, second, env={})[0] == 0
    assert cli("audit", "verify", f"-pubkey={pem}", second, env={})[0] == 0
    code, out, _ = cli("audit", "verify", f"-pubkey={pem}", second, first, env={})
    assert code == 2 and "FAILED" in out
    code, out, _ = cli(
        "audit", "search", "-path=secret/data/two", "-type=request", "-count", first, second, env={}
    )
    assert out.strip() == "1"


SQLITE_CONFIG = """
storage "sqlite" {{ path = "{data}" }}
listener "tcp" {{
  address = "127.0.0.1:{{port}}"
  tls_disable = true
}}
audit_directory = "{audit}"
"""


def test_audit_directory_restart_and_the_cli(tmp_path: Path) -> None:
    audit_dir = tmp_path / "audit"
    audit_dir.mkdir()
    config = SQLITE_CONFIG.format(data=tmp_path / "data.db", audit=audit_dir)
    server = start_config_server(tmp_path, config)
    try:
        client = server.client()
        init = client.sys.initialize(secret_shares=1, secret_threshold=1)
        root_token, key = init["root_token"], init["keys"][0]
        client.sys.submit_unseal_key(key)
        env = {"STRONGROOM_ADDR": server.addr, "STRONGROOM_TOKEN": root_token}
        code, out, err = cli("audit", "enable", "file", "file_path=audit.log", env=env)
        assert code == 0, err
        assert "Success! Enabled the file audit device at: file/" in out
        code, out, _ = cli(
            "audit", "enable", "-path=escape", "file", "file_path=/tmp/escape.log", env=env
        )
        assert code == 2 and "audit_directory" in (out + _)
        code, out, _ = cli("audit", "list", "-detailed", env=env)
        assert code == 0 and "file/" in out and "audit.log" in out
        root = server.client(root_token)
        root.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
        root.secrets.kv.v2.create_or_update_secret("a", {"v": "before restart"})
    finally:
        server.stop()
    server = ServerProcess(server.args, server.port, tmp_path).start()
    try:
        server.client().sys.submit_unseal_key(key)
        root = server.client(root_token)
        root.secrets.kv.v2.read_secret_version("a", raise_on_deleted_version=True)
        env = {"STRONGROOM_ADDR": server.addr, "STRONGROOM_TOKEN": root_token}
        code, out, err = cli("audit", "verify", str(audit_dir / "audit.log"), env=env)
        assert code == 0, out + err
        code, out, _ = cli(
            "audit",
            "search",
            "-status=ok",
            "-op=read",
            "-path=secret/*",
            str(audit_dir / "audit.log"),
            env=env,
        )
        assert code == 0 and len(out.splitlines()) == 2
        assert cli("audit", "disable", "file", env=env)[0] == 0
        code, out, _ = cli("audit", "list", env=env)
        assert code == 2 and "No audit devices are enabled." in out
    finally:
        server.stop()
    assert oct(os.stat(audit_dir / "audit.log").st_mode & 0o777) == "0o600"


def test_audited_request_headers_are_copied_and_hmacd(dev: ServerProcess, tmp_path: Path) -> None:
    """sys/config/auditing/request-headers: configured headers land in the request block;
    an hmac=true header only as its HMAC (the one sys/audit-hash gives); others never."""
    log = tmp_path / "audit.log"
    http = dev.http(dev.root_token)
    root = dev.client(dev.root_token)
    root.sys.enable_audit_device("file", path="hdr", options={"file_path": str(log)})
    assert (
        http.put(
            "/v1/sys/config/auditing/request-headers/X-Correlation-Id", json={"hmac": False}
        ).status_code
        == 204
    )
    assert (
        http.put(
            "/v1/sys/config/auditing/request-headers/X-Tenant-Secret", json={"hmac": True}
        ).status_code
        == 204
    )
    listed = http.get("/v1/sys/config/auditing/request-headers").json()["data"]["headers"]
    assert listed == {"x-correlation-id": {"hmac": False}, "x-tenant-secret": {"hmac": True}}
    one = http.get("/v1/sys/config/auditing/request-headers/x-tenant-secret").json()["data"]
    assert one == {"x-tenant-secret": {"hmac": True}}
    resp = http.get("/v1/sys/config/auditing/request-headers/nope")
    assert resp.status_code == 400 and "Could not find header" in resp.json()["errors"][0]
    bad = http.put("/v1/sys/config/auditing/request-headers/X-Vault-Token", json={"hmac": False})
    assert bad.status_code == 400
    http.get(
        "/v1/sys/mounts",
        headers={
            "X-Correlation-Id": "corr-42",
            "X-Tenant-Secret": "tenant-secret-value",
            "X-Not-Configured": "never-in-the-log",
        },
    )
    wait_for(lambda: "corr-42" in log.read_text())
    text = log.read_text()
    assert "tenant-secret-value" not in text and "never-in-the-log" not in text
    requests_ = [e for e in entries(log) if e["type"] == "request" and "headers" in e["request"]]
    headers = requests_[-1]["request"]["headers"]
    hashed = http.put("/v1/sys/audit-hash/hdr", json={"input": "tenant-secret-value"})
    assert headers == {
        "x-correlation-id": ["corr-42"],
        "x-tenant-secret": [hashed.json()["data"]["hash"]],
    }
    # deleting the setting stops the copying
    assert (
        http.delete("/v1/sys/config/auditing/request-headers/X-Correlation-Id").status_code == 204
    )
    http.get("/v1/sys/mounts", headers={"X-Correlation-Id": "corr-43"})
    http.get("/v1/sys/mounts", headers={"X-Tenant-Secret": "marker-value"})
    marker = http.put("/v1/sys/audit-hash/hdr", json={"input": "marker-value"})
    marker_hash = marker.json()["data"]["hash"]
    wait_for(lambda: marker_hash in log.read_text())
    assert "corr-43" not in log.read_text()


def test_ui_headers_config(dev: ServerProcess) -> None:
    http = dev.http(dev.root_token)
    url = "/v1/sys/config/ui/headers/X-Custom-Header"
    assert http.put(url, json={"values": ["a", "b"]}).status_code == 204
    assert http.get(url).json()["data"] == {"value": "a"}
    assert http.get(url, params={"multivalue": "true"}).json()["data"] == {"values": ["a", "b"]}
    keys = http.request("LIST", "/v1/sys/config/ui/headers").json()["data"]["keys"]
    assert keys == ["X-Custom-Header"]
    resp = http.put("/v1/sys/config/ui/headers/X-Vault-Foo", json={"values": ["a"]})
    assert resp.status_code == 400 and "X-Vault headers cannot be set" in resp.text
    assert http.delete(url).status_code == 204
    assert http.get(url).status_code == 404
