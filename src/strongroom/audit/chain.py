"""Tamper evidence: a hash chain through every line, and signed checkpoints. Pure: no I/O.

Every line a device writes is one JSON object (after an optional constant ``prefix``)
carrying ``seq`` (1, 2, 3, … per device, never reset) and ``prev_hash``: the SHA-256 (hex)
of the previous line's JSON text exactly as written. The hash covers the JSON object only,
from its ``{`` to its ``}``, so a ``prefix`` or a syslog/socket collector's framing does not
break the chain; nothing security-relevant lives outside the object.

Four kinds of lines join the chain besides Vault's ``request``/``response`` entries:

``link``
    The first line of every file (a new device, a restart, a rotation). It carries the
    previous line's hash and seq, so a rotated set of files verifies as one chain, while
    one file alone verifies from its link on. A link starts a new checkpoint range.
``checkpoint``
    Every ``checkpoint_entries`` lines or ``checkpoint_interval`` seconds (whichever comes
    first), at rotation and at seal/shutdown: ``covers_seq_from``/``covers_seq_to`` (every
    line since the previous checkpoint or link), ``chain_hash`` (SHA-256 over the
    concatenated binary SHA-256 digests of those lines) and an Ed25519 ``signature`` over
    the canonical body (the checkpoint without ``signature``, keys sorted, no whitespace),
    with the ``key_id`` of the server's signing key. Hash chains alone prove nothing against
    someone who can rewrite the whole file and recompute every hash; the signature, made
    with a key kept behind the barrier, is what such a person cannot forge.
``alert``
    Threshold alerts (:mod:`strongroom.audit.alerts`).

Several writers: every chain started since chain ids exist carries ``chain`` (its writer's
id: node or host name, process id and a random start nonce) in every line, so several
processes or nodes may append to one file, or each to its own, and each chain verifies on
its own: :class:`Verifier` sorts lines by ``chain`` and keeps one chain walker per id.
Lines without ``chain`` (logs written before, or a chain continued from such a log) form
the legacy chain ``""`` and verify exactly as before.

:class:`Chain` is the writer's side (stamp a line, commit it once written, build
checkpoints); :class:`Verifier` is the reader's: it walks lines in order and reports the
*first* broken link with its line number, then whatever tail no checkpoint covers yet.

Verification limits (documented, not hidden): lines after the last checkpoint are an
*unverified tail*; the verifier accepts it as "not yet checkpointed" only while it is
younger than the checkpoint policy allows (``2 * checkpoint_interval + 30 s`` after its
first line, and no longer than ``checkpoint_entries``). An older tail means a checkpoint
that must exist is missing: the log was truncated, or the server stopped uncleanly and did
not come back. A log cut exactly after a checkpoint verifies; only the server (or a copy
shipped elsewhere through a socket/syslog device) knows there was more.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import hashlib
import re
import time as _time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "GENESIS_HASH",
    "Chain",
    "ChainReport",
    "ChainState",
    "CheckpointPolicy",
    "Finding",
    "Signer",
    "StampedLine",
    "TailInfo",
    "Verifier",
    "VerifyReport",
    "canonical_body",
    "json_start",
    "key_id_of",
    "load_public_key",
    "parse_time",
]

GENESIS_HASH = "0" * 64
ENTRY_TYPES = frozenset({"request", "response", "checkpoint", "link", "alert"})
_STALE_GRACE = 30.0


def canonical_body(checkpoint: Mapping[str, Any]) -> bytes:
    """The bytes a checkpoint signature covers: every field but ``signature``, keys sorted."""
    body = {k: v for k, v in checkpoint.items() if k != "signature"}
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def key_id_of(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM. Raises ValueError for anything else."""
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


class Signer:
    """The server's checkpoint signing key (one per server, kept behind the barrier)."""

    __slots__ = ("_key", "key_id", "public_key")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.public_key = key.public_key()
        self.key_id = key_id_of(self.public_key)

    def __repr__(self) -> str:
        return f"Signer(key_id={self.key_id!r})"

    @classmethod
    def generate(cls) -> Signer:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, raw: bytes) -> Signer:
        return cls(Ed25519PrivateKey.from_private_bytes(raw))

    def private_bytes(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )

    def public_pem(self) -> str:
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self._key.sign(message)).decode()


@dataclass(frozen=True, slots=True)
class CheckpointPolicy:
    entries: int = 1000
    interval: float = 60.0

    def to_json(self) -> dict[str, Any]:
        return {"entries": self.entries, "interval": int(self.interval)}


@dataclass(slots=True)
class ChainState:
    """The head of one device's chain: enough to continue it after a restart.

    ``pending`` holds the SHA-256 digests of the lines written since the last checkpoint
    (or link), oldest first; ``range_start`` is the seq of the first of them. ``offset`` is
    the file offset just after the head line (file devices: exact even when other writers
    append to the same file), where tail recovery starts reading; ``file_id`` names that
    file (device and inode), so an offset is never applied to another file.
    """

    seq: int = 0
    last_hash: str = GENESIS_HASH
    range_start: int = 1
    pending: list[bytes] = field(default_factory=list)
    offset: int = 0
    chain_id: str = ""
    file_id: str = ""

    def to_json(self) -> dict[str, Any]:
        raw: dict[str, Any] = {
            "seq": self.seq,
            "last_hash": self.last_hash,
            "range_start": self.range_start,
            "pending": [d.hex() for d in self.pending],
            "offset": self.offset,
        }
        if self.chain_id:
            raw["chain"] = self.chain_id
        if self.file_id:
            raw["file"] = self.file_id
        return raw

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ChainState:
        return cls(
            seq=int(raw["seq"]),
            last_hash=str(raw["last_hash"]),
            range_start=int(raw["range_start"]),
            pending=[bytes.fromhex(d) for d in raw.get("pending", ())],
            offset=int(raw.get("offset", 0)),
            chain_id=str(raw.get("chain", "")),
            file_id=str(raw.get("file", "")),
        )

    def copy(self) -> ChainState:
        return ChainState(
            self.seq,
            self.last_hash,
            self.range_start,
            list(self.pending),
            self.offset,
            self.chain_id,
            self.file_id,
        )


@dataclass(frozen=True, slots=True)
class StampedLine:
    """A line ready to write: ``data`` is prefix + JSON + newline."""

    data: bytes
    seq: int
    digest: bytes
    kind: str


class Chain:
    """The writer's side of one device's chain. Stamp, write, then commit: a line that
    failed to reach the device is never committed, so the chain never refers to it."""

    def __init__(self, state: ChainState, prefix: str = "") -> None:
        self.state = state
        self._prefix = prefix.encode()

    def stamp(self, entry: dict[str, Any]) -> StampedLine:
        """Fill ``seq``/``prev_hash`` (in place: ``entry`` is the device's own dict)."""
        state = self.state
        if state.chain_id:
            entry["chain"] = state.chain_id
        entry["seq"] = state.seq + 1
        entry["prev_hash"] = state.last_hash
        body = orjson.dumps(entry)
        digest = hashlib.sha256(body).digest()
        return StampedLine(self._prefix + body + b"\n", state.seq + 1, digest, entry["type"])

    def commit(self, line: StampedLine, written: int) -> None:
        state = self.state
        state.seq = line.seq
        state.last_hash = line.digest.hex()
        state.offset += written
        if line.kind == "checkpoint":
            state.pending = []
            state.range_start = line.seq + 1
        elif line.kind == "link":
            state.pending = [line.digest]
            state.range_start = line.seq
        else:
            state.pending.append(line.digest)

    @property
    def uncovered(self) -> int:
        return len(self.state.pending)

    def link_entry(self, time: str, policy: CheckpointPolicy, reason: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"time": time, "type": "link"}
        if self.state.chain_id:
            entry["chain"] = self.state.chain_id
        entry.update(seq=0, prev_hash="", reason=reason, policy=policy.to_json())
        return entry

    def checkpoint_entry(
        self, signer: Signer, time: str, policy: CheckpointPolicy, *, recovered: int = 0
    ) -> dict[str, Any]:
        """A signed checkpoint covering every pending line (call :meth:`stamp` on it next:
        the signature covers ``seq`` and ``prev_hash``, filled here already)."""
        state = self.state
        body: dict[str, Any] = {"time": time, "type": "checkpoint"}
        if state.chain_id:
            body["chain"] = state.chain_id  # under the signature: a checkpoint names its chain
        body |= {
            "seq": state.seq + 1,
            "prev_hash": state.last_hash,
            "covers_seq_from": state.range_start,
            "covers_seq_to": state.seq,
            "entries": len(state.pending),
            "chain_hash": hashlib.sha256(b"".join(state.pending)).hexdigest(),
            "policy": policy.to_json(),
            "key_id": signer.key_id,
        }
        if recovered:
            body["recovered"] = recovered
        body["signature"] = signer.sign(canonical_body(body))
        return body


def json_start(line: bytes, prefix: bytes | None) -> int:
    """Where the JSON object of a line starts, or -1."""
    if prefix is not None:
        return len(prefix) if line.startswith(prefix) else -1
    return line.find(b"{")


def parse_time(text: str) -> float | None:
    """Seconds since the epoch from an RFC 3339 UTC stamp (``…Z``), or None."""
    try:
        whole = _time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")
    except (ValueError, TypeError):
        return None
    seconds = float(calendar.timegm(whole))
    if len(text) > 20 and text[19] == ".":
        digits = text[20:].rstrip("Z")
        if digits.isdigit():
            seconds += int(digits) / 10 ** len(digits)
    return seconds


@dataclass(frozen=True, slots=True)
class Finding:
    """The first broken link: where (file, 1-based line) and what."""

    file: str
    line: int
    message: str


@dataclass(frozen=True, slots=True)
class TailInfo:
    """Lines after the last checkpoint: not (yet) covered by a signature."""

    file: str
    first_line: int
    last_line: int
    count: int
    first_time: float | None


@dataclass(slots=True)
class VerifyReport:
    finding: Finding | None = None
    files: int = 0
    lines: int = 0
    checkpoints: int = 0
    verified_lines: int = 0
    tail: TailInfo | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.finding is None


@dataclass(slots=True)
class _Pending:
    file: str
    first_line: int
    first_time: float | None


class _ChainWalker:
    """One chain's walk: the lines of one writer, in order, across the files fed.

    Once a finding is recorded, the rest of this chain is not examined: everything after a
    break is unproven anyway.
    """

    def __init__(
        self,
        chain_id: str,
        keys: Mapping[str, Ed25519PublicKey],
        prefix: bytes | None,
        now: float,
    ) -> None:
        self.chain_id = chain_id
        self._keys = keys
        self._prefix = prefix
        self._now = now
        self.report = VerifyReport()
        self._expected_seq = 0
        self._last_hash = ""
        self._range_start = 0
        self._pending: list[bytes] = []
        self._pending_at: _Pending | None = None
        self._policy = CheckpointPolicy()
        self._previous_line: tuple[str, int] | None = None

    def _fail(self, file: str, line: int, message: str) -> None:
        if self.report.finding is None:
            self.report.finding = Finding(file, line, message)

    def line(self, name: str, number: int, raw: bytes, first: bool) -> None:
        """One line of this chain (``first``: its first line in file ``name``)."""
        if self.report.finding is not None:
            return
        self.report.lines += 1
        self._line(name, number, raw, first)

    def _line(self, name: str, number: int, raw: bytes, first: bool) -> bool:
        if not raw.endswith(b"\n"):
            self._fail(name, number, "incomplete last line (a torn write, or a cut in a line)")
            return False
        line = raw[:-1].rstrip(b"\r")
        start = json_start(line, self._prefix)
        try:
            entry = orjson.loads(line[start:]) if start >= 0 else None
        except orjson.JSONDecodeError:
            entry = None
        if (
            not isinstance(entry, dict)
            or entry.get("type") not in ENTRY_TYPES
            or not isinstance(entry.get("seq"), int)
            or not isinstance(entry.get("prev_hash"), str)
        ):
            self._fail(name, number, "not a Strongroom audit entry (altered, or inserted)")
            return False
        digest = hashlib.sha256(line[start:]).digest()
        seq: int = entry["seq"]
        kind: str = entry["type"]
        if first and self._expected_seq == 0:
            if kind != "link":
                self._fail(
                    name,
                    number,
                    "the log does not start with a link entry: its head was cut, "
                    "or this is not the first file of the set",
                )
                return False
        elif seq != self._expected_seq:
            if seq < self._expected_seq:
                message = (
                    f"seq {seq} where {self._expected_seq} was expected: "
                    "a line was inserted, duplicated or moved here"
                )
            else:
                message = (
                    f"seq jumps from {self._expected_seq - 1} to {seq}: "
                    "lines were deleted or moved before this one"
                )
            if first:
                message += " (this file does not continue the previous one)"
            self._fail(name, number, message)
            return False
        elif entry["prev_hash"] != self._last_hash:
            if first:
                self._fail(
                    name,
                    number,
                    "the link does not match the last line of the previous file "
                    "(files missing, out of order, or the previous file was altered)",
                )
            else:
                previous = self._previous_line or (name, number - 1)
                self._fail(
                    previous[0],
                    previous[1],
                    f"line {previous[1]} was altered: its hash does not match the prev_hash "
                    f"recorded by line {number} (or that link itself was edited)",
                )
            return False
        if kind == "link":
            if self._pending and self._pending_at is not None:
                at = self._pending_at
                self._fail(
                    at.file,
                    at.first_line,
                    f"lines from {at.first_line} on are not covered by any checkpoint before "
                    f"the link at line {number} of {name}",
                )
                return False
            self._range_start = seq
            self._pending = []
            self._pending_at = None
            self._read_policy(entry)
        elif kind == "checkpoint":
            if not self._checkpoint(name, number, entry):
                return False
            self.report.verified_lines = self.report.lines
            self._expected_seq = seq + 1
            self._last_hash = digest.hex()
            self._previous_line = (name, number)
            return True
        if not self._pending:
            stamp = entry.get("time")
            self._pending_at = _Pending(
                name, number, parse_time(stamp) if isinstance(stamp, str) else None
            )
        self._pending.append(digest)
        self._expected_seq = seq + 1
        self._last_hash = digest.hex()
        self._previous_line = (name, number)
        return True

    def _read_policy(self, entry: Mapping[str, Any]) -> None:
        policy = entry.get("policy")
        if isinstance(policy, dict):
            entries, interval = policy.get("entries"), policy.get("interval")
            if isinstance(entries, int) and isinstance(interval, int | float):
                self._policy = CheckpointPolicy(entries, float(interval))

    def _checkpoint(self, name: str, number: int, entry: dict[str, Any]) -> bool:
        seq = entry["seq"]
        signature = entry.get("signature")
        key_id = entry.get("key_id")
        key = self._keys.get(key_id) if isinstance(key_id, str) else None
        if key is None:
            self._fail(
                name,
                number,
                f"checkpoint signed by an unknown key (key_id {key_id!r}): forged, "
                "or verify was given the wrong public key",
            )
            return False
        try:
            if not isinstance(signature, str):
                raise ValueError
            key.verify(base64.b64decode(signature, validate=True), canonical_body(entry))
        except (InvalidSignature, ValueError, binascii.Error):
            self._fail(name, number, "checkpoint signature is invalid: forged or altered")
            return False
        covers = (entry.get("covers_seq_from"), entry.get("covers_seq_to"))
        if covers != (self._range_start, seq - 1) or entry.get("entries") != len(self._pending):
            self._fail(
                name,
                number,
                f"checkpoint covers seq {covers[0]}-{covers[1]} but the lines since the "
                f"previous checkpoint are seq {self._range_start}-{seq - 1}",
            )
            return False
        if entry.get("chain_hash") != hashlib.sha256(b"".join(self._pending)).hexdigest():
            self._fail(name, number, "checkpoint chain_hash does not match the lines it covers")
            return False
        if entry.get("recovered"):
            self.report.warnings.append(
                f"{name}:{number}: this checkpoint covers {entry['recovered']} line(s) the "
                "server recovered from the file after an unclean stop; they were not signed "
                "when written"
            )
        self.report.checkpoints += 1
        self._read_policy(entry)
        self._range_start = seq + 1
        self._pending = []
        self._pending_at = None
        return True

    def finish(self) -> VerifyReport:
        """The report: the first finding, or the unverified tail (stale tails are findings)."""
        report = self.report
        at = self._pending_at
        if report.finding is not None or not self._pending or at is None:
            return report
        report.tail = TailInfo(
            at.file,
            at.first_line,
            at.first_line + len(self._pending) - 1,
            len(self._pending),
            at.first_time,
        )
        policy = self._policy
        limit = 2 * policy.interval + _STALE_GRACE
        if at.first_time is not None and self._now - at.first_time > limit:
            self._fail(
                at.file,
                at.first_line,
                f"{len(self._pending)} line(s) from here on are older than the checkpoint "
                f"interval allows ({policy.interval:g} s) and no checkpoint covers them: the "
                "log was truncated past a checkpoint, or the server stopped uncleanly",
            )
        elif len(self._pending) > policy.entries:
            self._fail(
                at.file,
                at.first_line + policy.entries,
                f"a checkpoint is due every {policy.entries} lines but none follows line "
                f"{at.first_line + policy.entries - 1}",
            )
        return report


@dataclass(frozen=True, slots=True)
class ChainReport:
    """One chain's verdict in a multi-writer verify (``chain`` is ``""`` for legacy lines)."""

    chain: str
    report: VerifyReport


_CHAIN_FIELD = re.compile(rb'"chain":"([^"\\]{1,256})"')


class Verifier:
    """Walks one or more files (each writer's chain in order) and reports, per chain, the
    first broken link.

    Feed each file's lines (bytes, each ending in ``\\n`` except perhaps a torn last one)
    with :meth:`feed`, then call :meth:`finish`. Lines are sorted by their ``chain`` field
    (lines without one are the legacy chain ``""``); each chain is verified on its own,
    continuing across files in the order fed, so rotated files go oldest first while the
    files of different writers may come in any order. A line that cannot be parsed is
    given to the chain its raw ``"chain":"…"`` text names, else to the chain of the line
    before it in the same file. :attr:`report` sums everything up; its ``finding`` is the
    earliest finding of any chain, and :attr:`chains` holds every chain's own report.
    """

    def __init__(
        self,
        keys: Mapping[str, Ed25519PublicKey],
        *,
        prefix: bytes | None = None,
        now: float | None = None,
    ) -> None:
        self._keys = dict(keys)
        self._prefix = prefix
        self._now = _time.time() if now is None else now
        self.report = VerifyReport()
        self._walkers: dict[str, _ChainWalker] = {}
        self._order: dict[str, int] = {}

    def _walker(self, chain_id: str) -> _ChainWalker:
        walker = self._walkers.get(chain_id)
        if walker is None:
            walker = _ChainWalker(chain_id, self._keys, self._prefix, self._now)
            self._walkers[chain_id] = walker
        return walker

    def _chain_of(self, raw: bytes, previous: str) -> str:
        line = raw.rstrip(b"\r\n")
        start = json_start(line, self._prefix)
        if start >= 0:
            try:
                entry = orjson.loads(line[start:])
            except orjson.JSONDecodeError:
                entry = None
            if isinstance(entry, dict):
                chain_id = entry.get("chain", "")
                return chain_id if isinstance(chain_id, str) else previous
        match = _CHAIN_FIELD.search(line)
        return match.group(1).decode("utf-8", "replace") if match else previous

    def feed(self, name: str, lines: Iterable[bytes]) -> None:
        """Verify one file's lines, continuing each chain from the files fed before it."""
        self._order.setdefault(name, len(self._order))
        self.report.files += 1
        seen: set[str] = set()
        previous = ""
        for number, raw in enumerate(lines, 1):
            self.report.lines += 1
            chain_id = self._chain_of(raw, previous)
            walker = self._walker(chain_id)
            first = chain_id not in seen
            if first:
                seen.add(chain_id)
                walker.report.files += 1
            walker.line(name, number, raw, first)
            previous = chain_id
        if not seen:
            walker = self._walker("")
            walker.report.files += 1
            walker._fail(name, 1, "the file is empty")

    @property
    def chains(self) -> list[ChainReport]:
        return [ChainReport(c, w.report) for c, w in self._walkers.items()]

    def finish(self) -> VerifyReport:
        """The summed report; each chain's own is in :attr:`chains`."""
        report = self.report
        found: list[tuple[tuple[int, int], Finding]] = []
        for walker in self._walkers.values():
            own = walker.finish()
            report.checkpoints += own.checkpoints
            report.verified_lines += own.verified_lines
            report.warnings.extend(own.warnings)
            if own.tail is not None and report.tail is None:
                report.tail = own.tail
            if own.finding is not None:
                at = (self._order.get(own.finding.file, 0), own.finding.line)
                found.append((at, own.finding))
        if found:
            report.finding = min(found, key=lambda item: item[0])[1]
        return report
