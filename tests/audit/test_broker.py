"""The broker on a real core (in-memory storage, no HTTP): pairs of entries, failing closed,
several devices, restarts, rotation, alerts and the sys/audit endpoints."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from strongroom.audit import Verifier, load_public_key
from strongroom.audit.chain import key_id_of
from strongroom.audit.devices import FileDevice
from strongroom.clock import FakeClock
from strongroom.errors import InternalError, InvalidRequest, NotFound, PermissionDenied
from strongroom.logical import Operation
from tests.audit.conftest import InProcess, Run, read_lines

Factory = Callable[..., InProcess]
R, U, D, L = Operation.READ, Operation.UPDATE, Operation.DELETE, Operation.LIST


def enable(run: Run, node: InProcess, name: str, **options: str) -> None:
    run(node.call(U, f"sys/audit/{name}", {"type": "file", "options": options}))


def verify_files(run: Run, node: InProcess, *paths: Path) -> Any:
    body = run(node.call(R, "sys/audit-public-key", token=""))
    key = load_public_key(body.data["public_key"].encode())
    verifier = Verifier({key_id_of(key): key})
    for path in paths:
        with open(path, "rb") as handle:
            verifier.feed(str(path), handle)
    return verifier.finish()


def by_request(path: Path) -> Counter[tuple[str, str]]:
    return Counter(
        (e["request"]["id"], e["type"])
        for e in read_lines(path)
        if e["type"] in ("request", "response")
    )


def test_no_device_means_no_trail(run: Run, core_factory: Factory) -> None:
    node = core_factory()
    assert node.core.audit.enabled is False
    run(node.call(U, "secret/data/x", {"data": {"a": "b"}}))


def test_every_request_leaves_one_request_and_one_response_entry(
    run: Run, core_factory: Factory, tmp_path: Path
) -> None:
    node = core_factory(audit_directory=str(tmp_path))
    enable(run, node, "file", file_path="a.log")
    calls: list[tuple[Operation, str, dict[str, Any] | None, str | None]] = [
        (U, "secret/data/app", {"data": {"password": "pw-1"}}, None),
        (R, "secret/data/app", None, None),
        (L, "secret/metadata/", None, None),
        (R, "sys/mounts", None, None),
        (
            U,
            "sys/policies/acl/dev",
            {"policy": 'path "secret/*" { capabilities = ["read"] }'},
            None,
        ),
        (U, "auth/token/create", {"policies": ["dev"]}, None),
        (R, "secret/data/app", None, "hvs.bogus"),  # bad token
        (R, "nowhere/x", None, None),  # no route
        (D, "secret/metadata/app", None, None),
    ]
    for number, (operation, path, data, token) in enumerate(calls):
        with contextlib.suppress(PermissionDenied, NotFound):
            run(node.call(operation, path, data, token=token, request_id=f"r{number}"))
    counts = by_request(tmp_path / "a.log")
    for number in range(len(calls)):
        assert counts[(f"r{number}", "request")] == 1, calls[number]
        assert counts[(f"r{number}", "response")] == 1, calls[number]
    text = (tmp_path / "a.log").read_text()
    assert "pw-1" not in text and node.root not in text
    assert verify_files(run, node, tmp_path / "a.log").ok


def test_denials_carry_identity_and_error(run: Run, core_factory: Factory, tmp_path: Path) -> None:
    node = core_factory(audit_directory=str(tmp_path))
    run(node.call(U, "sys/policies/acl/none", {"policy": 'path "x/*" { capabilities = ["read"] }'}))
    created = run(node.call(U, "auth/token/create", {"policies": ["none"], "display_name": "bob"}))
    token = created.auth.client_token
    enable(run, node, "file", file_path="a.log")
    with pytest.raises(PermissionDenied):
        run(node.call(R, "secret/data/app", token=token, request_id="denied"))
    entries = [
        e for e in read_lines(tmp_path / "a.log") if e.get("request", {}).get("id") == "denied"
    ]
    assert [e["type"] for e in entries] == ["request", "response"]
    for entry in entries:
        assert entry["error"] == "permission denied"
        assert entry["auth"]["display_name"] == "token-bob"
        assert entry["auth"]["policies"] == ["default", "none"]
        assert entry["auth"]["accessor"].startswith("hmac-sha256:")
        assert entry["request"]["remote_address"] == "10.0.0.7"
    assert token not in (tmp_path / "a.log").read_text()


def test_fail_closed_refuses_before_the_backend_runs(
    run: Run, core_factory: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = core_factory(audit_directory=str(tmp_path))
    enable(run, node, "file", file_path="a.log")
    device = node.core.audit._devices["file/"]

    def broken(data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(device, "_write_now", broken)
    with pytest.raises(InternalError, match="failed to audit request"):
        run(node.call(U, "secret/data/blocked", {"data": {"v": "1"}}))
    monkeypatch.undo()
    assert run(node.call(R, "secret/data/blocked")) is None  # nothing was written
    assert node.core.audit.metrics()["refused"] == 1
    assert node.core.audit.metrics()["devices"]["file/"]["failures"] >= 1


def test_one_working_device_is_enough(
    run: Run, core_factory: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = core_factory(audit_directory=str(tmp_path))
    enable(run, node, "good", file_path="good.log")
    enable(run, node, "bad", file_path="bad.log")

    def broken(data: bytes) -> int:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(node.core.audit._devices["bad/"], "_write_now", broken)
    run(node.call(U, "secret/data/ok", {"data": {"v": "1"}}, request_id="one"))
    assert by_request(tmp_path / "good.log")[("one", "request")] == 1
    assert by_request(tmp_path / "bad.log")[("one", "request")] == 0
    metrics = node.core.audit.metrics()["devices"]
    # the response entry goes only where the request entry went
    assert metrics["bad/"]["failures"] == 1 and metrics["good/"]["failures"] == 0


def test_log_raw_on_one_device_never_leaks_into_another(
    run: Run, core_factory: Factory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    node = core_factory(audit_directory=str(tmp_path))
    enable(run, node, "hashed", file_path="hashed.log")
    enable(run, node, "raw", file_path="raw.log", log_raw="true")
    assert "IN CLEAR" in caplog.text
    run(node.call(U, "secret/data/app", {"data": {"password": "very-secret"}}))
    assert "very-secret" in (tmp_path / "raw.log").read_text()
    assert node.root in (tmp_path / "raw.log").read_text()
    hashed = (tmp_path / "hashed.log").read_text()
    assert "very-secret" not in hashed and node.root not in hashed


def test_audit_hash_matches_the_log(run: Run, core_factory: Factory, tmp_path: Path) -> None:
    node = core_factory(audit_directory=str(tmp_path))
    enable(run, node, "file", file_path="a.log")
    run(node.call(U, "secret/data/app", {"data": {"password": "findme"}}))
    hashed = run(node.call(U, "sys/audit-hash/file", {"input": "findme"})).data["hash"]
    assert hashed.startswith("hmac-sha256:") and hashed in (tmp_path / "a.log").read_text()
    with pytest.raises(InvalidRequest):
        run(node.call(U, "sys/audit-hash/nope", {"input": "x"}))


def test_sys_audit_list_enable_disable(run: Run, core_factory: Factory, tmp_path: Path) -> None:
    node = core_factory(audit_directory=str(tmp_path))
    enable(run, node, "file", file_path="a.log", prefix="x ")
    listed = run(node.call(R, "sys/audit")).data
    assert listed == {
        "file/": {
            "type": "file",
            "description": "",
            "options": {"file_path": "a.log", "prefix": "x "},
            "local": False,
            "path": "file/",
        }
    }
    with pytest.raises(InvalidRequest, match="already in use"):
        enable(run, node, "file", file_path="b.log")
    with pytest.raises(InvalidRequest, match="already used"):
        enable(run, node, "other", file_path="a.log")
    with pytest.raises(InvalidRequest, match="audit_directory"):
        enable(run, node, "escape", file_path="/tmp/escape.log")
    with pytest.raises(InvalidRequest, match="type is required"):
        run(node.call(U, "sys/audit/typeless", {}))
    run(node.call(D, "sys/audit/file"))
    assert run(node.call(R, "sys/audit")).data == {}
    assert node.core.audit.enabled is False
    size = (tmp_path / "a.log").stat().st_size
    run(node.call(R, "secret/data/app"))
    assert (tmp_path / "a.log").stat().st_size == size
    assert verify_files(run, node, tmp_path / "a.log").ok  # ends with a final checkpoint


def test_the_chain_survives_a_restart(run: Run, core_factory: Factory, tmp_path: Path) -> None:
    node = core_factory(audit_directory=str(tmp_path))
    enable(run, node, "file", file_path="a.log", checkpoint_entries="3")
    key_before = run(node.call(R, "sys/audit-public-key", token="")).data["key_id"]
    for i in range(4):
        run(node.call(R, f"secret/data/k{i}"))
    run(node.restart())
    assert run(node.call(R, "sys/audit-public-key", token="")).data["key_id"] == key_before
    run(node.call(R, "secret/data/after"))
    entries = read_lines(tmp_path / "a.log")
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert [e["type"] for e in entries].count("link") == 2
    assert verify_files(run, node, tmp_path / "a.log").ok


def test_an_unclean_stop_is_recovered_at_unseal(
    run: Run, core_factory: Factory, tmp_path: Path
) -> None:
    node = core_factory(audit_directory=str(tmp_path))
    enable(run, node, "file", file_path="a.log")
    for i in range(3):
        run(node.call(R, f"secret/data/k{i}"))
    broker = node.core.audit
    device = broker._devices["file/"]
    run(device._close_sink())  # the process "dies": no final checkpoint, no saved state
    broker._devices.clear()
    broker._configs.clear()
    run(node.restart())
    run(node.call(R, "secret/data/after"))
    report = verify_files(run, node, tmp_path / "a.log")
    assert report.ok, report.finding
    assert any("recovered" in warning for warning in report.warnings)


def test_sighup_rotation_links_the_files(run: Run, core_factory: Factory, tmp_path: Path) -> None:
    node = core_factory(audit_directory=str(tmp_path))
    enable(run, node, "file", file_path="a.log")
    run(node.call(R, "secret/data/one"))
    (tmp_path / "a.log").rename(tmp_path / "a.log.1")
    run(node.core.audit.reopen())
    run(node.call(R, "secret/data/two"))
    old, new = read_lines(tmp_path / "a.log.1"), read_lines(tmp_path / "a.log")
    assert old[-1]["type"] == "checkpoint" and new[0]["type"] == "link"
    assert new[0]["seq"] == old[-1]["seq"] + 1
    assert verify_files(run, node, tmp_path / "a.log.1", tmp_path / "a.log").ok
    assert verify_files(run, node, tmp_path / "a.log").ok
    assert not verify_files(run, node, tmp_path / "a.log", tmp_path / "a.log.1").ok


def test_time_based_checkpoints(run: Run, core_factory: Factory, tmp_path: Path) -> None:
    clock = FakeClock()
    node = core_factory(audit_directory=str(tmp_path), clock=clock)
    enable(run, node, "file", file_path="a.log", checkpoint_interval="30s")
    run(node.call(R, "secret/data/x"))
    device = node.core.audit._devices["file/"]
    run(device.tick())
    assert read_lines(tmp_path / "a.log")[-1]["type"] == "response"
    clock.advance(31)
    run(device.tick())
    assert read_lines(tmp_path / "a.log")[-1]["type"] == "checkpoint"


def test_seal_operations_are_audited_with_key_shares_hashed(
    run: Run, core_factory: Factory, tmp_path: Path
) -> None:
    node = core_factory(audit_directory=str(tmp_path))
    enable(run, node, "file", file_path="a.log")
    otp = base64.b64encode(b"o" * 26).decode()  # any value: only the audit trail matters
    attempt = run(node.call(U, "sys/generate-root/attempt", {}, request_id="gr1"))
    nonce = attempt.data["nonce"]
    share = node.keys[0].hex()
    run(node.call(U, "sys/generate-root/update", {"key": share, "nonce": nonce}, request_id="gr2"))
    del otp
    text = (tmp_path / "a.log").read_text()
    assert share not in text and node.keys[0].hex() not in text
    counts = by_request(tmp_path / "a.log")
    assert counts[("gr1", "request")] == counts[("gr2", "response")] == 1
    run(node.call(U, "sys/seal", {}, request_id="seal"))
    assert read_lines(tmp_path / "a.log")[-1]["type"] == "checkpoint"


def test_alerts_fire_once_per_window(run: Run, core_factory: Factory, tmp_path: Path) -> None:
    received: list[dict[str, Any]] = []

    async def webhook_server() -> tuple[asyncio.Server, int]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(
                next(
                    line.split(b":")[1]
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
            )
            received.append(orjson.loads(await reader.readexactly(length)))
            writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        return server, server.sockets[0].getsockname()[1]

    server, port = run(webhook_server())
    node = core_factory(audit_directory=str(tmp_path))
    enable(
        run,
        node,
        "file",
        file_path="a.log",
        alert_denied_threshold="3",
        alert_window="60s",
        alert_webhook=f"http://127.0.0.1:{port}/hook",
    )
    for _ in range(10):
        with pytest.raises(PermissionDenied):
            run(node.call(R, "secret/data/x", token="hvs.guess", remote="203.0.113.5"))
    run(asyncio.sleep(0.3))
    alerts = [e for e in read_lines(tmp_path / "a.log") if e["type"] == "alert"]
    assert len(alerts) == 1
    assert alerts[0]["alert"]["key_type"] == "remote_address"
    assert alerts[0]["alert"]["key"] == "203.0.113.5" and alerts[0]["alert"]["count"] == 4
    assert len(received) == 1 and received[0]["alert"]["key"] == "203.0.113.5"
    assert verify_files(run, node, tmp_path / "a.log").ok
    server.close()


def test_an_unusable_device_still_fails_closed_after_unseal(
    run: Run, core_factory: Factory, tmp_path: Path
) -> None:
    node = core_factory(audit_directory=str(tmp_path))
    enable(run, node, "file", file_path=str(tmp_path / "a.log"))
    node.core.audit.audit_directory = str(tmp_path / "elsewhere")  # config changed meanwhile
    (tmp_path / "elsewhere").mkdir()
    run(node.restart())
    assert node.core.audit.enabled
    with pytest.raises(InternalError):
        run(node.call(R, "secret/data/x"))
    assert node.core.audit.metrics()["devices"]["file/"] == {"open": False, "usable": False}


def test_a_device_that_cannot_open_at_unseal_retries(
    run: Run, core_factory: Factory, tmp_path: Path
) -> None:
    node = core_factory(audit_directory=str(tmp_path))
    (tmp_path / "sub").mkdir()
    enable(run, node, "file", file_path="sub/a.log")
    run(node.core.seal())
    (tmp_path / "sub" / "a.log").rename(tmp_path / "a.log.keep")
    (tmp_path / "sub").rmdir()
    run(node.core.seal_manager.submit_unseal_key(node.keys[0]))
    run(node.core.after_unseal())
    device = node.core.audit._devices["file/"]
    assert isinstance(device, FileDevice) and not device.is_open
    with pytest.raises(InternalError):
        run(node.call(R, "secret/data/x"))
    (tmp_path / "sub").mkdir()
    device._next_attempt = 0.0
    run(node.call(R, "secret/data/x", request_id="back"))
    assert by_request(tmp_path / "sub" / "a.log")[("back", "response")] == 1
