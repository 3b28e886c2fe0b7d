"""The hash chain, checkpoint signing, and verify finding each kind of tampering at the
right line."""

from __future__ import annotations

import calendar
import hashlib

import orjson
import pytest

from strongroom.audit import GENESIS_HASH, Chain, ChainState, CheckpointPolicy, Signer, Verifier
from strongroom.audit.chain import VerifyReport, canonical_body, parse_time
from tests.audit.conftest import T0, build_log, stamp


def verify(
    signer: Signer, *files: list[bytes], now: float = T0 + 100, prefix: bytes | None = None
) -> VerifyReport:
    verifier = Verifier({signer.key_id: signer.public_key}, prefix=prefix, now=now)
    for number, lines in enumerate(files, 1):
        verifier.feed(f"f{number}", lines)
    return verifier.finish()


def test_a_clean_log_verifies(signer: Signer) -> None:
    lines, _ = build_log(signer, 23)
    report = verify(signer, lines)
    assert report.ok, report.finding
    assert report.tail is None
    assert report.checkpoints == 5 and report.lines == len(lines) == report.verified_lines


def test_each_line_links_to_the_previous_json_text(signer: Signer) -> None:
    lines, chain = build_log(signer, 3, every=100)
    entries = [orjson.loads(line) for line in lines]
    assert entries[0]["type"] == "link" and entries[0]["prev_hash"] == GENESIS_HASH
    for before, line, entry in zip(lines, lines[1:], entries[1:], strict=False):
        assert entry["prev_hash"] == hashlib.sha256(before[:-1]).hexdigest()
        assert line.endswith(b"\n")
    assert [e["seq"] for e in entries] == list(range(1, len(lines) + 1))
    assert chain.state.last_hash == hashlib.sha256(lines[-1][:-1]).hexdigest()


def test_a_checkpoint_is_signed_over_its_canonical_body(signer: Signer) -> None:
    lines, _ = build_log(signer, 4, every=5)
    checkpoint = orjson.loads(lines[-1])
    assert checkpoint["type"] == "checkpoint"
    assert checkpoint["covers_seq_from"] == 1 and checkpoint["covers_seq_to"] == 5
    digests = b"".join(hashlib.sha256(line[:-1]).digest() for line in lines[:-1])
    assert checkpoint["chain_hash"] == hashlib.sha256(digests).hexdigest()
    import base64

    signer.public_key.verify(base64.b64decode(checkpoint["signature"]), canonical_body(checkpoint))
    assert checkpoint["key_id"] == signer.key_id


def _edit_byte(line: bytes) -> bytes:
    at = line.index(b"app") + 1
    return line[:at] + b"q" + line[at + 1 :]


# Log layout with every=5: line 1 link, 2-5 entries, 6 checkpoint, 7-11 entries,
# 12 checkpoint, 13-17 entries, 18 checkpoint, …
TAMPERS = {
    "delete": (lambda ls: ls[:7] + ls[8:], 8, "deleted"),
    "insert a copy": (lambda ls: [*ls[:7], ls[2], *ls[7:]], 8, "inserted"),
    "swap": (lambda ls: [*ls[:7], ls[8], ls[7], *ls[9:]], 8, "deleted or moved"),
    "edit one byte": (lambda ls: [*ls[:7], _edit_byte(ls[7]), *ls[8:]], 8, "altered"),
    "edit the last covered line": (
        lambda ls: [*ls[:10], _edit_byte(ls[10]), *ls[11:]],
        11,
        "altered",
    ),
    "break the JSON": (lambda ls: [*ls[:7], ls[7][:-3] + b"\n", *ls[8:]], 8, "not a Strongroom"),
    "cut the head": (lambda ls: ls[1:], 1, "does not start with a link"),
    "torn last line": (lambda ls: [*ls[:7], ls[7][:-10]], 8, "incomplete"),
}


@pytest.mark.parametrize("name", sorted(TAMPERS))
def test_verify_reports_the_first_broken_link(signer: Signer, name: str) -> None:
    lines, _ = build_log(signer, 23)
    tamper, line, words = TAMPERS[name]
    report = verify(signer, tamper(list(lines)))
    assert report.finding is not None, name
    assert report.finding.line == line, report.finding
    assert words in report.finding.message


def test_an_inserted_line_with_a_correct_prev_hash_breaks_the_next_link(signer: Signer) -> None:
    lines, _ = build_log(signer, 23)
    previous = orjson.loads(lines[6])
    forged = {
        "time": previous["time"],
        "type": "request",
        "seq": previous["seq"] + 1,
        "prev_hash": hashlib.sha256(lines[6][:-1]).hexdigest(),
        "request": {"path": "secret/data/forged"},
    }
    tampered = [*lines[:7], orjson.dumps(forged) + b"\n", *lines[7:]]
    report = verify(signer, tampered)
    assert report.finding is not None and report.finding.line == 9
    assert "inserted" in report.finding.message


def test_a_checkpoint_signed_by_another_key_is_forged(signer: Signer) -> None:
    lines, _ = build_log(signer, 23)
    other = Signer.generate()
    checkpoint = orjson.loads(lines[11])
    checkpoint["key_id"] = other.key_id
    checkpoint["signature"] = other.sign(canonical_body(checkpoint))
    tampered = [*lines[:11], orjson.dumps(checkpoint) + b"\n", *lines[12:]]
    report = verify(signer, tampered)
    assert report.finding is not None and report.finding.line == 12
    assert "unknown key" in report.finding.message


def test_a_checkpoint_with_our_key_id_but_another_signature_is_forged(signer: Signer) -> None:
    lines, _ = build_log(signer, 23)
    other = Signer.generate()
    checkpoint = orjson.loads(lines[11])
    checkpoint["signature"] = other.sign(canonical_body(checkpoint))
    tampered = [*lines[:11], orjson.dumps(checkpoint) + b"\n", *lines[12:]]
    report = verify(signer, tampered)
    assert report.finding is not None and report.finding.line == 12
    assert "signature is invalid" in report.finding.message


def test_a_rewritten_and_rechained_log_fails_at_its_first_checkpoint(signer: Signer) -> None:
    """Someone edits line 8 and recomputes every hash after it: the chain is consistent
    again, but they cannot sign the checkpoint covering it."""
    lines, _ = build_log(signer, 23)
    attacker = Signer.generate()
    rewritten: list[bytes] = list(lines[:7])
    pending: list[bytes] = []
    previous = hashlib.sha256(lines[6][:-1]).hexdigest()
    for line in lines[7:]:
        entry = orjson.loads(line)
        if entry["seq"] == 8:
            entry["request"]["path"] = "secret/data/innocent"
        entry["prev_hash"] = previous
        if entry["type"] == "checkpoint":
            entry["chain_hash"] = hashlib.sha256(b"".join(pending)).hexdigest()
            entry["signature"] = attacker.sign(canonical_body(entry))
            pending = []
        body = orjson.dumps(entry)
        if entry["type"] != "checkpoint":
            pending.append(hashlib.sha256(body).digest())
        rewritten.append(body + b"\n")
        previous = hashlib.sha256(body).hexdigest()
    report = verify(signer, rewritten)
    assert report.finding is not None and report.finding.line == 12


def test_a_fresh_unverified_tail_is_reported_not_failed(signer: Signer) -> None:
    lines, _ = build_log(signer, 23, final_checkpoint=False)
    report = verify(signer, lines, now=T0 + 30)
    assert report.ok
    assert report.tail is not None and report.tail.first_line == 25
    assert report.tail.count == len(lines) - 24


def test_truncating_past_a_checkpoint_fails_once_the_tail_is_stale(signer: Signer) -> None:
    lines, _ = build_log(signer, 23)
    cut = lines[:15]  # the checkpoint at line 18 is gone; 13-15 remain uncovered
    report = verify(signer, cut, now=T0 + 3600)
    assert report.finding is not None and report.finding.line == 13
    assert "truncated" in report.finding.message
    # the same cut seen right away is an honest unverified tail
    fresh = verify(signer, cut, now=T0 + 20)
    assert fresh.ok and fresh.tail is not None and fresh.tail.first_line == 13


def test_a_tail_longer_than_the_checkpoint_policy_fails(signer: Signer) -> None:
    chain = Chain(ChainState())
    lines: list[bytes] = []
    for entry in [
        chain.link_entry(stamp(T0), CheckpointPolicy(3, 60.0), "new-file"),
        *({"time": stamp(T0), "type": "request", "seq": 0, "prev_hash": ""} for _ in range(5)),
    ]:
        line = chain.stamp(entry)
        lines.append(line.data)
        chain.commit(line, len(line.data))
    report = verify(signer, lines, now=T0 + 10)
    assert report.finding is not None and report.finding.line == 4
    assert "due every 3 lines" in report.finding.message


def test_rotated_files_verify_as_one_chain_and_alone(signer: Signer) -> None:
    first, chain = build_log(signer, 7)
    second, _ = build_log(signer, 9, state=chain.state.copy(), start=T0 + 20)
    assert orjson.loads(second[0])["type"] == "link"
    assert verify(signer, first, second).ok
    assert verify(signer, second).ok  # each file alone, from its link
    assert not verify(signer, second, first).ok
    third, _ = build_log(signer, 3, state=ChainState(seq=999, last_hash="ab" * 32), start=T0 + 40)
    report = verify(signer, first, third)
    assert report.finding is not None and report.finding.file == "f2"
    assert report.finding.line == 1


def test_a_prefix_is_outside_the_hash(signer: Signer) -> None:
    lines, _ = build_log(signer, 8, prefix="audit: ")
    assert all(line.startswith(b"audit: {") for line in lines)
    assert verify(signer, lines).ok
    assert verify(signer, lines, prefix=b"audit: ").ok
    assert not verify(signer, lines, prefix=b"other: ").ok


def test_parse_time() -> None:
    assert parse_time("2027-01-15T08:00:00Z") == calendar.timegm((2027, 1, 15, 8, 0, 0))
    assert parse_time("1970-01-01T00:00:01.5Z") == 1.5
    assert parse_time("1970-01-01T00:00:01.000000250Z") == pytest.approx(1.00000025)
    assert parse_time("garbage") is None
