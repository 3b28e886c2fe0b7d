"""Several writers: each process writes its own hash chain, into one shared file or each
into its own, and ``strongroom audit verify`` checks every chain on its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from strongroom.audit import ChainState, Signer
from strongroom.audit.devices import DeviceConfig, DeviceEnv, FileDevice
from strongroom.clock import FakeClock
from tests.audit.conftest import Run, build_log
from tests.audit.test_cli_audit import cli
from tests.audit.test_devices import entry

ROOT = Path(__file__).resolve().parents[2]
ENTRIES = 120


def write_concurrently(signer: Signer, tmp_path: Path, *files: Path) -> None:
    """One writer process per file given (the same file twice: two writers share it),
    started together."""
    sync = tmp_path / "sync"
    sync.mkdir()
    key = signer.private_bytes().hex()
    argv = [sys.executable, "-m", "tests.audit.audit_writer", key]
    procs = [
        subprocess.Popen([*argv, str(f), str(ENTRIES), str(sync), str(len(files))], cwd=ROOT)
        for f in files
    ]
    for proc in procs:
        assert proc.wait(timeout=60) == 0


def entries(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


@pytest.fixture
def pem(tmp_path: Path, signer: Signer) -> Path:
    path = tmp_path / "audit.pem"
    path.write_text(signer.public_pem())
    return path


@pytest.mark.parametrize("round_", range(3))
def test_two_processes_appending_to_one_file_write_two_whole_chains(
    signer: Signer, tmp_path: Path, pem: Path, round_: int
) -> None:
    log = tmp_path / "shared.log"
    write_concurrently(signer, tmp_path, log, log)
    raw = log.read_bytes()
    assert raw.endswith(b"\n")
    lines = entries(log)  # every line parses: nothing interleaved mid-line
    chains = {str(e["chain"]) for e in lines}
    assert len(chains) == 2
    first, second = ([i for i, e in enumerate(lines) if e["chain"] == c] for c in chains)
    assert first[0] < second[-1] and second[0] < first[-1]  # the writers did interleave
    for chain in chains:
        seqs = [e["seq"] for e in lines if e["chain"] == chain]
        assert seqs == list(range(1, len(seqs) + 1))
        assert sum(1 for e in lines if e["chain"] == chain and e["type"] == "request") == ENTRIES
    result = cli("audit", "verify", f"-pubkey={pem}", str(log))
    assert result.code == 0, result.out + result.err
    assert "2 chain(s)" in result.out
    for chain in chains:
        assert f"OK: chain {chain}:" in result.out
    report = orjson.loads(cli("audit", "verify", "-format=json", f"-pubkey={pem}", str(log)).out)
    assert report["verified"] is True
    assert sorted(c["chain"] for c in report["chains"]) == sorted(chains)


def _rewrite(path: Path, number: int, change: dict[str, object]) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    entry = orjson.loads(lines[number - 1])
    entry.update(change)
    lines[number - 1] = orjson.dumps(entry) + b"\n"
    path.write_bytes(b"".join(lines))


def test_tampering_with_one_chain_names_that_chain_and_line(
    signer: Signer, tmp_path: Path, pem: Path
) -> None:
    log = tmp_path / "shared.log"
    write_concurrently(signer, tmp_path, log, log)
    lines = entries(log)
    victim = str(lines[-1]["chain"])
    # an ordinary line of the victim's chain, in the middle of the file
    number = next(
        i
        for i, e in enumerate(lines, 1)
        if e["chain"] == victim and e["type"] == "request" and i > len(lines) // 2
    )
    _rewrite(log, number, {"request": {"path": "secret/data/innocent"}})
    result = cli("audit", "verify", f"-pubkey={pem}", str(log))
    assert result.code == 2
    assert f"FAILED: chain {victim}: {log} line {number}:" in result.out
    other = ({str(e["chain"]) for e in lines} - {victim}).pop()
    assert f"OK: chain {other}:" in result.out
    report = orjson.loads(cli("audit", "verify", "-format=json", f"-pubkey={pem}", str(log)).out)
    by_chain = {c["chain"]: c for c in report["chains"]}
    assert by_chain[victim]["broken"]["line"] == number
    assert by_chain[other]["verified"] is True


@pytest.mark.parametrize("attack", ["delete", "swap", "duplicate", "torn", "head"])
def test_deletion_swap_insertion_and_cuts_within_one_chain_are_found(
    signer: Signer, tmp_path: Path, pem: Path, attack: str
) -> None:
    log = tmp_path / "shared.log"
    write_concurrently(signer, tmp_path, log, log)
    raw = log.read_bytes().splitlines(keepends=True)
    lines = entries(log)
    victim = str(lines[0]["chain"])
    mine = [i for i, e in enumerate(lines) if e["chain"] == victim and e["type"] == "request"]
    a, b = mine[len(mine) // 2], mine[len(mine) // 2 + 1]
    if attack == "delete":
        del raw[a]
    elif attack == "swap":
        raw[a], raw[b] = raw[b], raw[a]
    elif attack == "duplicate":
        raw.insert(b, raw[a])
    elif attack == "torn":  # the file cut in the middle of one of the victim's lines
        cut = raw[a].index(b'"', raw[a].index(b'"chain":"') + 9) + 1  # past its chain id
        raw = [*raw[:a], raw[a][:cut]]
    else:  # the victim's head (its link) cut off
        del raw[next(i for i, e in enumerate(lines) if e["chain"] == victim)]
    log.write_bytes(b"".join(raw))
    result = cli("audit", "verify", f"-pubkey={pem}", str(log))
    assert result.code == 2, result.out
    assert f"FAILED: chain {victim}:" in result.out


def test_two_files_from_two_writers_verify_together(
    signer: Signer, tmp_path: Path, pem: Path
) -> None:
    first, second = tmp_path / "node-a.log", tmp_path / "node-b.log"
    write_concurrently(signer, tmp_path, first, second)
    result = cli("audit", "verify", f"-pubkey={pem}", str(first), str(second))
    assert result.code == 0, result.out + result.err
    assert "2 file(s), 2 chain(s)" in result.out
    # and a line of the second writer edited: that file, chain and line are named
    victim = str(entries(second)[0]["chain"])
    _rewrite(second, 3, {"pad": "edited"})
    result = cli("audit", "verify", f"-pubkey={pem}", str(first), str(second))
    assert result.code == 2
    assert f"FAILED: chain {victim}: {second} line 3:" in result.out


def test_a_legacy_log_without_chain_ids_verifies_as_before(
    signer: Signer, tmp_path: Path, pem: Path
) -> None:
    lines, _ = build_log(signer, 12, start=1_700_000_000.0)
    log = tmp_path / "legacy.log"
    log.write_bytes(b"".join(lines))
    assert all(b'"chain"' not in line for line in lines)
    result = cli("audit", "verify", f"-pubkey={pem}", str(log))
    assert result.code == 0
    assert "chain" not in result.out
    lines[4] = lines[4].replace(b"app3", b"app9")
    log.write_bytes(b"".join(lines))
    result = cli("audit", "verify", f"-pubkey={pem}", str(log))
    assert result.code == 2
    assert result.out.startswith(f"FAILED: {log} line 5:")


def test_a_restart_from_the_saved_head_continues_the_same_chain(
    run: Run, signer: Signer, tmp_path: Path, pem: Path
) -> None:
    env = DeviceEnv(clock=FakeClock(), signer=lambda: signer, on_checkpoint=lambda d: None)
    log = tmp_path / "a.log"
    config = DeviceConfig(
        path="file/", type="file", uuid="u-1", salt=b"x" * 32, options={"file_path": str(log)}
    )
    first = FileDevice(config, env)
    run(first.open(None))
    run(first.record(entry()))
    state = first.snapshot()
    assert state is not None and state.chain_id
    run(first.close())
    saved = ChainState.from_json(orjson.loads(orjson.dumps(state.to_json())))
    assert saved.chain_id == state.chain_id
    second = FileDevice(config, env)
    run(second.open(saved))
    run(second.record(entry()))
    run(second.close())
    assert {e["chain"] for e in entries(log)} == {state.chain_id}
    result = cli("audit", "verify", f"-pubkey={pem}", str(log))
    assert result.code == 0, result.out
