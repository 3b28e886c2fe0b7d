"""The server's log never holds a secret: token IDs, unseal keys, OTPs, secret values.

A production server at its most verbose level is put through everything that handles secrets
(init, unseal with right and wrong keys, secrets, tokens, root generation, rekey) and through
the error paths (malformed JSON holding a secret, bad tokens, garbage on the wire); then its
whole log is searched for every secret it saw.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import socket
import uuid
from pathlib import Path
from typing import Any

import httpx
import hvac
import hvac.exceptions
import pytest

from strongroom.http import StrongroomApp
from strongroom.logical import Request, Response
from tests.serverproc import ServerProcess, free_port

CONFIG = """
storage "sqlite" {
  path = "data/strongroom.db"
}
listener "tcp" {
  address     = "127.0.0.1:{port}"
  tls_disable = true
}
log_level = "trace"
"""


def _forms(key_hex: str) -> list[str]:
    """Every way an unseal key is written: hex, base64 with and without padding."""
    raw = bytes.fromhex(key_hex)
    b64 = base64.b64encode(raw).decode()
    return [key_hex, key_hex.upper(), b64, b64.rstrip("="), base64.urlsafe_b64encode(raw).decode()]


def _marker(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex}"


def _start(workdir: Path, extra: str = "") -> ServerProcess:
    port = free_port()
    config = workdir / "server.hcl"
    config.write_text(CONFIG.replace("{port}", str(port)) + extra)
    return ServerProcess([f"-config={config}"], port, workdir).start()


def _exercise(server: ServerProcess, secrets: list[str]) -> None:
    client = server.client()
    init = client.sys.initialize(secret_shares=3, secret_threshold=2)
    root = init["root_token"]
    secrets.append(root)
    for key in init["keys"]:
        secrets.extend(_forms(key))
    # wrong and malformed unseal keys, then the right ones
    wrong = os.urandom(33).hex()
    secrets.extend(_forms(wrong))
    client.sys.submit_unseal_key(wrong)  # a share like any other until the threshold
    with pytest.raises(hvac.exceptions.VaultError):
        client.sys.submit_unseal_key(init["keys"][0])  # the combination fails
    client.sys.submit_unseal_key(reset=True)
    malformed = _marker("not-a-key")
    secrets.append(malformed)
    with pytest.raises(hvac.exceptions.VaultError):
        client.sys.submit_unseal_key(malformed)
    client.sys.submit_unseal_keys(init["keys"][:2])
    assert client.sys.is_sealed() is False
    client.token = root

    # secrets in KV v2, KV v1 and the cubbyhole
    client.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
    client.sys.enable_secrets_engine("kv", path="kv1")
    for name in ("password", "api-key", "private"):
        value = _marker(name)
        secrets.append(value)
        client.secrets.kv.v2.create_or_update_secret(f"app/{name}", secret={name: value})
        client.secrets.kv.v2.patch(f"app/{name}", secret={"extra": value + "-patched"})
        read = client.secrets.kv.v2.read_secret_version(
            f"app/{name}", raise_on_deleted_version=True
        )
        assert read["data"]["data"][name] == value
    v1 = _marker("v1value")
    secrets.append(v1)
    client.secrets.kv.v1.create_or_update_secret("db", {"password": v1}, mount_point="kv1")
    cubby = _marker("cubby")
    secrets.append(cubby)
    client.adapter.post("/v1/cubbyhole/mine", json={"value": cubby})

    # tokens: children, orphans, a chosen ID, lookups, renewals, revocations
    child = client.auth.token.create(policies=["default"], ttl="1h")["auth"]
    orphan = client.auth.token.create_orphan(policies=["default"])["auth"]
    chosen = _marker("chosen")  # Vault refuses custom IDs with the hvs. prefix
    client.auth.token.create(id=chosen, policies=["default"])
    secrets.extend([child["client_token"], orphan["client_token"], chosen])
    client.auth.token.lookup(child["client_token"])
    client.auth.token.renew(child["client_token"], increment="2h")
    client.auth.token.revoke(orphan["client_token"])
    as_child = server.client(child["client_token"])
    as_child.auth.token.lookup_self()
    with pytest.raises(hvac.exceptions.Forbidden):
        as_child.secrets.kv.v2.read_secret_version("app/password", raise_on_deleted_version=True)
    with pytest.raises(hvac.exceptions.Forbidden):
        server.client(orphan["client_token"]).auth.token.lookup_self()

    # error paths that carry secrets in the request
    leaked_json = _marker("bad-json-password")
    bogus_token = _marker("hvs.bogus")
    bearer = _marker("bearer")
    secrets.extend([leaked_json, bogus_token, bearer])
    with server.http(root) as http:
        broken = b'{"data": {"password": "' + leaked_json.encode() + b'"'
        assert http.put("/v1/secret/data/broken", content=broken).status_code == 400
        typed = {"data": leaked_json}
        assert http.put("/v1/secret/data/typed", json=typed).status_code == 400
        nested = {"data": {"password": leaked_json}, "options": {"cas": leaked_json}}
        assert http.put("/v1/secret/data/nested", json=nested).status_code == 400
        utf8 = b'{"data": {"password": "\xff' + leaked_json.encode() + b'"}}'
        assert http.put("/v1/secret/data/utf8", content=utf8).status_code == 400
        policy = {"policy": f'path "{leaked_json}" {{ capabilities = [{leaked_json}] }}'}
        assert http.put("/v1/sys/policies/acl/broken", json=policy).status_code == 400
        lookup = http.post("/v1/auth/token/lookup", json={"token": bogus_token})
        assert lookup.status_code in (400, 403)
        assert http.post("/v1/sys/capabilities", json={"token": bogus_token}).status_code >= 400
    with httpx.Client(base_url=server.addr, timeout=30) as anonymous:
        denied = anonymous.get(
            "/v1/secret/data/app/password", headers={"X-Vault-Token": bogus_token}
        )
        assert denied.status_code == 403
        headers = {"Authorization": f"Bearer {bearer}"}
        assert anonymous.get("/v1/secret/data/app/password", headers=headers).status_code == 403
        # unsealed: the key is ignored and the status returned, as in Vault
        assert anonymous.put("/v1/sys/unseal", json={"key": leaked_json}).status_code == 200
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        raw.sendall(
            f"BOGUS\x01 /v1/{bogus_token} HTTP/1.1\r\nX-Vault-Token: {bearer}\r\n\r\n".encode()
        )
        raw.recv(65536)

    # root generation with a server-chosen OTP
    attempt = client.sys.start_root_token_generation()
    otp, nonce = attempt["otp"], attempt["nonce"]
    secrets.append(otp)
    for key in init["keys"][:2]:
        status = client.sys.generate_root(key, nonce)
    encoded = status["encoded_token"]
    secrets.append(encoded)
    raw_token = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
    new_root = bytes(a ^ b for a, b in zip(raw_token, otp.encode(), strict=True)).decode()
    secrets.append(new_root)
    assert server.client(new_root).lookup_token()["data"]["policies"] == ["root"]

    # rekey; the new shares unseal
    rekey = client.sys.start_rekey(secret_shares=3, secret_threshold=2)
    for key in init["keys"][:2]:
        result = client.sys.rekey(key, nonce=rekey["nonce"])
    for key in result["keys"]:
        secrets.extend(_forms(key))
    client.sys.seal()
    client.sys.submit_unseal_keys(result["keys"][:2])
    assert client.sys.is_sealed() is False
    client.sys.rotate_encryption_key()


def test_server_log_holds_no_secrets(tmp_path: Path) -> None:
    server = _start(tmp_path)
    secrets: list[str] = []
    try:
        _exercise(server, secrets)
    finally:
        server.stop()
    assert server.proc is not None and server.proc.returncode == 0  # so the log is flushed
    log = server.log()
    assert "[DEBUG]" in log or "[INFO]" in log  # the log is there and verbose
    assert "unsealed" in log
    leaked = [secret for secret in secrets if secret in log]
    assert not leaked, f"secrets in the server log: {leaked}\n{log}"
    # the SQLite file holds ciphertext only
    database = (tmp_path / "data" / "strongroom.db").read_bytes()
    for suffix in ("", "-wal"):
        path = tmp_path / "data" / f"strongroom.db{suffix}"
        if path.exists():
            database += path.read_bytes()
    stored = [secret for secret in secrets if secret.encode() in database]
    assert not stored, f"secrets stored in clear: {stored}"


def test_json_log_records_are_structured_and_hold_no_secrets(tmp_path: Path) -> None:
    server = _start(tmp_path, 'log_format = "json"\n')
    secrets: list[str] = []
    try:
        _exercise(server, secrets)
    finally:
        server.stop()
    assert server.proc is not None and server.proc.returncode == 0
    records = []
    for line in server.log().splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    assert records, server.log()
    for record in records:
        assert set(record) >= {"@timestamp", "@level", "@module", "@message"}
        assert record["@level"] in ("debug", "info", "warn", "error")
        assert record["@timestamp"].endswith("Z")
    assert any("unsealed" in record["@message"] for record in records)
    leaked = [secret for secret in secrets if secret in server.log()]
    assert not leaked, f"secrets in the JSON log: {leaked}"


def test_log_format_flag_and_bad_config(tmp_path: Path) -> None:
    port = free_port()
    server = ServerProcess(
        ["-dev", f"-dev-listen-address=127.0.0.1:{port}", "-log-format=json", "-dev-dir=d"],
        port,
        tmp_path,
    ).start(wait_for="Root Token:")
    server.stop()
    assert any(line.startswith('{"@timestamp"') for line in server.log().splitlines())
    bad = ServerProcess([f"-config={tmp_path / 'bad.hcl'}"], free_port(), tmp_path)
    (tmp_path / "bad.hcl").write_text(CONFIG.replace("{port}", "1") + 'log_format = "xml"\n')
    with pytest.raises(RuntimeError, match="log_format"):
        bad.start(timeout=10)


# -- the 500 path, in process --------------------------------------------------------------------


async def _call(app: StrongroomApp, body: bytes) -> int:
    status = 0
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {
        "type": "http",
        "method": "PUT",
        "path": "/v1/secret/data/x",
        "query_string": b"",
        "headers": [(b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 1),
    }
    await app(scope, receive, send)
    return status


def test_unexpected_error_log_holds_no_request_values(caplog: pytest.LogCaptureFixture) -> None:
    """A bug in a handler (here: ``int()`` on a client's value) becomes a 500; the log
    explains where it happened without quoting the value."""
    secret = _marker("hunter2")

    async def handler(request: Request) -> Response | None:
        return Response(data={"n": int(request.data["count"])})

    app = StrongroomApp(handler)
    body = ('{"count": "%s"}' % secret).encode()  # noqa: UP031 (JSON braces)
    with caplog.at_level(logging.DEBUG):
        assert asyncio.run(_call(app, body)) == 500
    assert "unhandled error" in caplog.text
    assert secret not in caplog.text
