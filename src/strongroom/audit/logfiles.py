"""Server-side verification of a file audit device's log (``sys/audit-verify/<path>``).

Three things beyond ``strongroom audit verify FILE…`` run by hand:

- **Rotated files**: the files beside the device's current file whose name is the current
  name plus a suffix (``audit.log.1``, ``audit.log.2.gz``, ``audit.log-20261205``) are
  verified first, oldest first (by modification time; for equal times the larger numeric
  suffix is the older, as logrotate numbers them), then the current file, so each chain is
  followed across rotations. ``.gz``, ``.bz2`` and ``.xz`` files are read compressed. At
  most :data:`ROTATED_LIMIT` rotated files are read (the newest; a warning names the rest).
- **Per chain**: every writer (process, node) has its own chain (docs/audit.md "Several
  writers"); each is reported on its own (:class:`ChainVerdict`).
- **The last verified checkpoint, kept by the server**: after a successful verify the
  caller may record each chain's last signed checkpoint (seq and signature) behind the
  barrier. A later verify checks that the files still hold that checkpoint, unchanged, or
  have moved past it only by losing *older* files (retention): a log cut exactly after a
  checkpoint, or one writer's chain removed wholly from a shared file — which the files
  alone cannot show — is then a finding.

Pure file reading and comparison; storage and the HTTP shape live in core/system/audit.py.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from strongroom.audit.chain import Finding, Verifier, VerifyReport, json_start

__all__ = [
    "ROTATED_LIMIT",
    "ChainVerdict",
    "Checkpoint",
    "LogVerdict",
    "Recorded",
    "log_files",
    "merge_recorded",
    "open_log",
    "verify_log",
]

ROTATED_LIMIT = 64
_OPENERS: dict[str, Any] = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
_NUMBER = re.compile(r"[.\-_](\d+)(?:\.(?:gz|bz2|xz))?$")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed checkpoint seen in the files: where, and what identifies it."""

    chain: str
    seq: int
    signature: str
    time: str
    file: str
    line: int


@dataclass(frozen=True, slots=True)
class Recorded:
    """A chain's last verified checkpoint as the server keeps it."""

    seq: int
    signature: str
    time: str  # the checkpoint's own time
    verified_at: str  # when a verify recorded it

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "signature": self.signature,
            "time": self.time,
            "verified_at": self.verified_at,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Recorded:
        return cls(
            int(raw["seq"]), str(raw["signature"]), str(raw["time"]), str(raw["verified_at"])
        )


@dataclass(slots=True)
class ChainVerdict:
    chain: str
    report: VerifyReport
    last_checkpoint: Checkpoint | None = None
    recorded: Recorded | None = None
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.report.ok


@dataclass(slots=True)
class LogVerdict:
    file: str
    files: list[str]
    report: VerifyReport
    chains: list[ChainVerdict]
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.chains) and self.report.ok


def log_files(file_path: str) -> tuple[list[str], list[str]]:
    """(files oldest first ending with ``file_path``, warnings) for the device's log."""
    directory, base = os.path.split(os.path.abspath(file_path))
    found: list[tuple[float, int, str]] = []
    try:
        names = os.listdir(directory)
    except OSError:
        names = []
    for name in names:
        if name == base or not name.startswith(base) or name[len(base)] not in ".-_":
            continue
        full = os.path.join(directory, name)
        try:
            info = os.stat(full)
        except OSError:
            continue
        if not os.path.isfile(full):
            continue
        number = _NUMBER.search(name[len(base) :])
        found.append((info.st_mtime, -int(number.group(1)) if number else 0, full))
    found.sort()
    warnings: list[str] = []
    if len(found) > ROTATED_LIMIT:
        skipped = len(found) - ROTATED_LIMIT
        warnings.append(
            f"{skipped} older rotated file(s) not read (at most {ROTATED_LIMIT}); verify them "
            "offline with `strongroom audit verify`"
        )
        found = found[skipped:]
    return [full for _, _, full in found] + [file_path], warnings


def open_log(path: str, stack: ExitStack) -> IO[bytes]:
    """``path`` opened for reading (decompressed for ``.gz``, ``.bz2``, ``.xz``)."""
    opener = _OPENERS.get(os.path.splitext(path)[1], open)
    handle: IO[bytes] = stack.enter_context(opener(path, "rb"))
    return handle


class _Tap:
    """Notes every checkpoint and the first seq of each chain while the verifier reads."""

    def __init__(self, prefix: bytes | None) -> None:
        self._prefix = prefix
        self.checkpoints: dict[str, dict[int, Checkpoint]] = {}
        self.first_seq: dict[str, int] = {}
        self.warnings: list[str] = []

    def lines(self, name: str, handle: IO[bytes], live: bool) -> Iterator[bytes]:
        """``handle``'s lines; of the ``live`` file (the one the server is appending to)
        an unfinished last line is a write in progress, left for the next verify."""
        held: bytes | None = None
        number = 0
        for raw in handle:
            if held is not None:
                yield held
            number += 1
            if b'"checkpoint"' in raw or b'"link"' in raw:
                self._note(name, number, raw)
            held = raw
        if held is None:
            return
        if live and not held.endswith(b"\n") and number > 1:
            self.warnings.append(
                f"{name}: line {number} was still being written and is left for the next verify"
            )
            return
        yield held

    def _note(self, name: str, number: int, raw: bytes) -> None:
        line = raw.rstrip(b"\r\n")
        start = json_start(line, self._prefix)
        try:
            entry = orjson.loads(line[start:]) if start >= 0 else None
        except orjson.JSONDecodeError:
            return
        if not isinstance(entry, dict) or not isinstance(entry.get("seq"), int):
            return
        chain = entry.get("chain", "")
        if not isinstance(chain, str):
            return
        seq: int = entry["seq"]
        if entry.get("type") == "link":
            self.first_seq[chain] = min(self.first_seq.get(chain, seq), seq)
        elif entry.get("type") == "checkpoint":
            self.first_seq.setdefault(chain, seq)
            signature = entry.get("signature")
            time = entry.get("time")
            self.checkpoints.setdefault(chain, {})[seq] = Checkpoint(
                chain,
                seq,
                signature if isinstance(signature, str) else "",
                time if isinstance(time, str) else "",
                name,
                number,
            )


def verify_log(
    file_path: str,
    prefix: bytes | None,
    keys: Mapping[str, Any],
    recorded: Mapping[str, Recorded],
    *,
    now: float | None = None,
) -> LogVerdict:
    """Verify the device's rotated and current files chain by chain, then hold each chain
    to its ``recorded`` last verified checkpoint.

    Raises:
        OSError: the current file cannot be read.
    """
    files, warnings = log_files(file_path)
    verifier = Verifier(keys, prefix=prefix, now=now)
    tap = _Tap(prefix)
    with ExitStack() as stack:
        for path in files:
            try:
                handle = open_log(path, stack)
            except OSError as exc:
                if path == file_path:
                    raise
                warnings.append(f"{path}: not read ({exc.strerror or exc})")
                continue
            try:
                verifier.feed(path, tap.lines(path, handle, path == file_path))
            except (OSError, EOFError, lzma.LZMAError) as exc:
                if path == file_path:
                    raise
                warnings.append(f"{path}: unreadable ({exc})")
    report = verifier.finish()
    warnings.extend(tap.warnings)
    chains: list[ChainVerdict] = []
    for item in verifier.chains:
        seen = tap.checkpoints.get(item.chain, {})
        last = seen[max(seen)] if seen else None
        verdict = ChainVerdict(item.chain, item.report, last, recorded.get(item.chain))
        _hold_to_recorded(verdict, seen, tap.first_seq.get(item.chain))
        chains.append(verdict)
    present = {c.chain for c in chains}
    for chain, kept in sorted(recorded.items()):
        if chain not in present:
            missing = ChainVerdict(chain, VerifyReport(), None, kept)
            missing.report.finding = Finding(
                "",
                0,
                f"chain {chain or '(no chain id)'} was verified up to its checkpoint at seq "
                f"{kept.seq} ({kept.time}) on {kept.verified_at}, and none of its lines is in "
                "the files now: that writer's lines were removed",
            )
            chains.append(missing)
    if report.finding is None:
        found = [c.report.finding for c in chains if c.report.finding is not None]
        report.finding = found[0] if found else None
    return LogVerdict(file_path, files, report, chains, warnings)


def _hold_to_recorded(
    verdict: ChainVerdict, seen: Mapping[int, Checkpoint], first_seq: int | None
) -> None:
    kept = verdict.recorded
    if kept is None or not verdict.report.ok:
        return
    at = seen.get(kept.seq)
    if at is not None:
        if at.signature != kept.signature:
            verdict.report.finding = Finding(
                at.file,
                at.line,
                f"the checkpoint at seq {kept.seq} differs from the one verified on "
                f"{kept.verified_at}: the log was rewritten",
            )
        return
    if first_seq is not None and first_seq > kept.seq:
        verdict.note = (
            f"the checkpoint verified on {kept.verified_at} (seq {kept.seq}) was in an older "
            "file that is gone (retention); the files kept continue after it"
        )
        return
    last = verdict.last_checkpoint
    verdict.report.finding = Finding(
        last.file if last else "",
        last.line if last else 0,
        f"the checkpoint at seq {kept.seq} ({kept.time}), verified on {kept.verified_at}, is "
        "missing: the log was cut after "
        + (f"the checkpoint at seq {last.seq}" if last else "its start"),
    )


def merge_recorded(
    current: Mapping[str, Recorded], verdict: LogVerdict, verified_at: str
) -> dict[str, Recorded]:
    """``current`` advanced to each verified chain's last checkpoint (never moved back)."""
    merged = dict(current)
    for chain in verdict.chains:
        last = chain.last_checkpoint
        if not chain.ok or last is None:
            continue
        kept = merged.get(chain.chain)
        if kept is None or kept.seq < last.seq:
            merged[chain.chain] = Recorded(last.seq, last.signature, last.time, verified_at)
    return merged
