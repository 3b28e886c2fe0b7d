"""audit/logfiles.py on files written by the real chain code: rotated sets found and ordered,
compressed rotated files, a write in progress, and each branch of holding a chain to its
server-kept last verified checkpoint (kept, retention, rewritten, cut, removed)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from strongroom.audit import ChainState, Signer
from strongroom.audit.chain import key_id_of, load_public_key
from strongroom.audit.logfiles import Recorded, log_files, merge_recorded, verify_log
from tests.audit.conftest import T0, build_log

NOW = T0 + 100


@pytest.fixture
def signer() -> Signer:
    return Signer.generate()


def keys(signer: Signer) -> dict[str, object]:
    key = load_public_key(signer.public_pem().encode())
    return {key_id_of(key): key}


def rotated_pair(signer: Signer, tmp_path: Path, chain_id: str = "w1/1") -> tuple[Path, Path]:
    """audit.log.1 (older) then audit.log, one chain continued across the rotation."""
    old_lines, chain = build_log(signer, 12, every=4, state=ChainState(chain_id=chain_id))
    new_lines, _ = build_log(signer, 8, every=4, start=T0 + 20, state=chain.state.copy())
    old, new = tmp_path / "audit.log.1", tmp_path / "audit.log"
    old.write_bytes(b"".join(old_lines))
    new.write_bytes(b"".join(new_lines))
    os.utime(old, (T0, T0))
    os.utime(new, (T0 + 30, T0 + 30))
    return old, new


def test_rotated_files_are_found_oldest_first(tmp_path: Path) -> None:
    current = tmp_path / "audit.log"
    for name, age in (("audit.log.2.gz", 30), ("audit.log.1", 20), ("audit.log-2026", 10)):
        (tmp_path / name).write_bytes(b"x\n")
        os.utime(tmp_path / name, (T0 - age, T0 - age))
    for unrelated in ("audit.logger", "other.log.1"):
        (tmp_path / unrelated).write_bytes(b"x\n")
    current.write_bytes(b"x\n")
    files, warnings = log_files(str(current))
    assert [Path(f).name for f in files] == [
        "audit.log.2.gz",
        "audit.log.1",
        "audit.log-2026",
        "audit.log",
    ]
    assert warnings == []
    # equal times: logrotate's larger number is the older
    for name in ("audit.log.2.gz", "audit.log.1", "audit.log-2026"):
        os.utime(tmp_path / name, (T0, T0))
    files, _ = log_files(str(current))
    assert files.index(str(tmp_path / "audit.log.2.gz")) < files.index(
        str(tmp_path / "audit.log.1")
    )


def test_a_rotated_set_verifies_as_one_chain_and_is_recorded(
    signer: Signer, tmp_path: Path
) -> None:
    old, new = rotated_pair(signer, tmp_path)
    verdict = verify_log(str(new), None, keys(signer), {}, now=NOW)
    assert verdict.ok, verdict.report.finding
    assert verdict.files == [str(old), str(new)]
    (chain,) = verdict.chains
    assert chain.chain == "w1/1" and chain.report.files == 2
    assert chain.last_checkpoint is not None and chain.last_checkpoint.file == str(new)
    recorded = merge_recorded({}, verdict, "2026-12-05T00:00:00Z")
    assert recorded["w1/1"].seq == chain.last_checkpoint.seq
    # never moved back
    older = Recorded(chain.last_checkpoint.seq + 10, "sig", "t", "earlier")
    assert merge_recorded({"w1/1": older}, verdict, "now")["w1/1"] == older
    # and the current file alone verifies too (its link continues the rotated file)
    old.unlink()
    assert verify_log(str(new), None, keys(signer), {}, now=NOW).ok


def test_compressed_rotated_files_and_a_write_in_progress(signer: Signer, tmp_path: Path) -> None:
    old, new = rotated_pair(signer, tmp_path)
    packed = tmp_path / "audit.log.1.gz"
    packed.write_bytes(gzip.compress(old.read_bytes()))
    os.utime(packed, (T0, T0))
    old.unlink()
    with new.open("ab") as handle:
        handle.write(b'{"time":"2027-01-15T08:00:00Z","type":"req')  # no newline yet
    verdict = verify_log(str(new), None, keys(signer), {}, now=NOW)
    assert verdict.ok, verdict.report.finding
    assert verdict.files == [str(packed), str(new)]
    assert any("still being written" in w for w in verdict.warnings)


def test_held_to_the_last_verified_checkpoint(signer: Signer, tmp_path: Path) -> None:
    old, new = rotated_pair(signer, tmp_path)
    first = verify_log(str(new), None, keys(signer), {}, now=NOW)
    kept = merge_recorded({}, first, "2026-12-05T00:00:00Z")
    # kept checkpoint still there: fine
    assert verify_log(str(new), None, keys(signer), kept, now=NOW).ok
    # the same seq with another signature: the log was rewritten
    (seq, rec) = next(iter(kept.items()))
    forged = {seq: Recorded(rec.seq, "AAAA", rec.time, rec.verified_at)}
    verdict = verify_log(str(new), None, keys(signer), forged, now=NOW)
    assert not verdict.ok and "differs" in str(verdict.report.finding)
    # recorded in the rotated file, which retention removed: accepted, with a note
    in_old = verify_log(str(old), None, keys(signer), {}, now=NOW)
    kept_old = merge_recorded({}, in_old, "2026-12-05T00:00:00Z")
    old.unlink()
    verdict = verify_log(str(new), None, keys(signer), kept_old, now=NOW)
    assert verdict.ok, verdict.report.finding
    assert "older file that is gone" in verdict.chains[0].note
    # the current file cut after its first checkpoint: the later recorded one is missing
    lines = new.read_bytes().splitlines(keepends=True)
    first_cp = next(i for i, line in enumerate(lines) if b'"type":"checkpoint"' in line)
    new.write_bytes(b"".join(lines[: first_cp + 1]))
    assert verify_log(str(new), None, keys(signer), {}, now=NOW).ok  # the file alone: fine
    verdict = verify_log(str(new), None, keys(signer), kept, now=NOW)
    assert not verdict.ok and "was cut after" in str(verdict.report.finding)
    # a recorded chain with no line left at all
    gone = {"w9/1": Recorded(5, "sig", "t", "then")}
    verdict = verify_log(str(new), None, keys(signer), gone, now=NOW)
    assert not verdict.ok
    missing = next(c for c in verdict.chains if c.chain == "w9/1")
    assert missing.report.lines == 0 and "removed" in str(missing.report.finding)
