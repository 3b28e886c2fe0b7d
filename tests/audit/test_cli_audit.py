"""``strongroom audit verify`` and ``audit search`` (offline, with an optional server)."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
import pytest

from strongroom.audit import Salt, Signer
from strongroom.cli.main import run
from tests.audit.conftest import T0, build_log
from tests.cli.fakevault import ADDR, FakeServer, Result


def cli(*argv: str, env: dict[str, str] | None = None, server: FakeServer | None = None) -> Result:
    out, err = io.StringIO(), io.StringIO()
    code = run(
        list(argv),
        env or {},
        out,
        err,
        transport=server.transport if server else None,
        stdin=io.StringIO(""),
    )
    return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture
def pem(tmp_path: Path, signer: Signer) -> Path:
    path = tmp_path / "audit.pem"
    path.write_text(signer.public_pem())
    return path


@pytest.fixture
def log(tmp_path: Path, signer: Signer) -> Path:
    lines, _ = build_log(signer, 12, start=1_700_000_000.0)
    path = tmp_path / "audit.log"
    path.write_bytes(b"".join(lines))
    return path


def test_verify_ok(log: Path, pem: Path) -> None:
    result = cli("audit", "verify", f"-pubkey={pem}", str(log))
    assert result.code == 0, result.err
    assert result.out.startswith("OK: 16 lines in 1 file(s); 3 signed checkpoint(s) cover 16")
    double_dash = cli("audit", "verify", "--pubkey", str(pem), str(log))
    assert double_dash.code == 0


def test_verify_reports_the_line(log: Path, pem: Path) -> None:
    lines = log.read_bytes().splitlines(keepends=True)
    del lines[4]
    log.write_bytes(b"".join(lines))
    result = cli("audit", "verify", f"-pubkey={pem}", str(log))
    assert result.code == 2
    assert f"FAILED: {log} line 5: seq jumps" in result.out
    as_json = orjson.loads(cli("audit", "verify", f"-pubkey={pem}", "-format=json", str(log)).out)
    assert as_json["verified"] is False and as_json["broken"]["line"] == 5


def test_verify_with_the_wrong_key(log: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.pem"
    other.write_text(Signer.generate().public_pem())
    result = cli("audit", "verify", f"-pubkey={other}", str(log))
    assert result.code == 2 and "unknown key" in result.out


def test_verify_reports_an_unverified_tail(tmp_path: Path, signer: Signer, pem: Path) -> None:
    import time

    lines, _ = build_log(signer, 7, start=time.time() - 5, final_checkpoint=False)
    path = tmp_path / "live.log"
    path.write_bytes(b"".join(lines))
    result = cli("audit", "verify", f"-pubkey={pem}", str(path))
    assert result.code == 0
    assert "Unverified tail: lines 7-9" in result.out


def test_verify_fetches_the_key_from_the_server(log: Path, signer: Signer) -> None:
    server = FakeServer()
    server.on(
        "GET",
        "sys/audit-public-key",
        200,
        {"data": {"public_key": signer.public_pem(), "key_id": signer.key_id}},
    )
    result = cli("audit", "verify", str(log), env={"STRONGROOM_ADDR": ADDR}, server=server)
    assert result.code == 0, result.err
    assert server.last().headers.get("x-vault-token") is None


def test_verify_needs_a_key(log: Path) -> None:
    result = cli("audit", "verify", str(log))
    assert result.code == 1 and "no public key" in result.err
    missing = cli("audit", "verify", "-pubkey=/nonexistent.pem", str(log))
    assert missing.code == 1 and "Error reading /nonexistent.pem" in missing.err


def test_search(log: Path) -> None:
    found = cli("audit", "search", "-path=secret/data/app3", str(log))
    assert found.code == 0
    assert [orjson.loads(x)["request"]["path"] for x in found.out.splitlines()] == [
        "secret/data/app3"
    ]
    counted = cli("audit", "search", "--path", "secret/data/*", "-count", str(log))
    assert counted.out.strip() == "12"
    nothing = cli("audit", "search", "-path=nope", str(log))
    assert nothing.code == 1 and nothing.out == ""
    typed = cli("audit", "search", "-type=checkpoint,link", "-count", str(log))
    assert typed.out.strip() == "4"
    assert cli("audit", "search", "-since=bogus", str(log)).code == 1


def test_search_hashes_raw_values_through_the_server(tmp_path: Path) -> None:
    salt = Salt(b"q" * 32)
    path = tmp_path / "a.log"
    entry = {
        "time": "2026-01-01T00:00:00Z",
        "type": "request",
        "seq": 1,
        "prev_hash": "",
        "auth": {"client_token": salt.hmac("hvs.tok")},
        "request": {"path": "secret/data/x", "data": {"pw": salt.hmac("hunter2")}},
    }
    path.write_bytes(orjson.dumps(entry) + b"\n")
    server = FakeServer()
    server.on_call(
        "PUT",
        "sys/audit-hash/file",
        lambda request: (
            200,
            {"data": {"hash": salt.hmac(orjson.loads(request.content)["input"])}},
        ),
    )
    env = {"STRONGROOM_ADDR": ADDR, "STRONGROOM_TOKEN": "hvs.root"}
    by_value = cli(
        "audit", "search", "-value=hunter2", "-device=file", str(path), env=env, server=server
    )
    assert by_value.code == 0 and by_value.out.count("\n") == 1
    by_token = cli(
        "audit", "search", "-token=hvs.tok", "-device=file", str(path), env=env, server=server
    )
    assert by_token.code == 0
    no_device = cli("audit", "search", "-token=hvs.tok", str(path))
    assert no_device.code == 1 and "HMAC'd" in no_device.err
    ready = cli("audit", "search", f"-value={salt.hmac('hunter2')}", "-count", str(path))
    assert ready.out.strip() == "1"


def test_audit_help_lists_the_new_commands() -> None:
    result = cli("audit")
    assert "verify" in result.err and "search" in result.err and "enable" in result.err


def test_verify_a_rotated_set(tmp_path: Path, signer: Signer, pem: Path) -> None:
    first, chain = build_log(signer, 5, start=T0)
    second, _ = build_log(signer, 5, start=T0 + 10, state=chain.state.copy())
    (tmp_path / "a.1").write_bytes(b"".join(first))
    (tmp_path / "a").write_bytes(b"".join(second))
    assert (
        cli("audit", "verify", f"-pubkey={pem}", str(tmp_path / "a.1"), str(tmp_path / "a")).code
        == 0
    )
    swapped = cli("audit", "verify", f"-pubkey={pem}", str(tmp_path / "a"), str(tmp_path / "a.1"))
    assert swapped.code == 2
