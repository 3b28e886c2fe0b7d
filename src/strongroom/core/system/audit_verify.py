"""sys/audit-verify/<path>: a file audit device's tamper evidence, checked by the server.

Ours (Vault has no such endpoint); a sudo path (ROOT_PATHS), used by the web UI's audit
screen. The device must be a file device writing a local file; its rotated files beside it
are verified too, and every writer's chain is reported on its own
(:mod:`strongroom.audit.logfiles`).

- ``GET``: verify; compare each chain with its last verified checkpoint kept by the server.
- ``POST``/``PUT``: the same, then, when everything verified, record each chain's last
  signed checkpoint as its new last verified checkpoint (never moved back: a guarded
  read-modify-write, so concurrent verifies across workers keep the highest).
- ``DELETE``: forget the recorded checkpoints (after archiving a log away on purpose).

The records live behind the barrier at ``core/audit-verified/<device path>`` with the file
they were made for; a device now writing another file starts afresh.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from strongroom.audit.chain import Finding, TailInfo, VerifyReport, key_id_of, load_public_key
from strongroom.audit.logfiles import LogVerdict, Recorded, merge_recorded, verify_log
from strongroom.core.mounts import validate_mount_path
from strongroom.core.system._context import SysContext
from strongroom.errors import InvalidRequest
from strongroom.framework import KEEP, Endpoint, Swap, swap
from strongroom.logical import Operation, Request, Response

__all__ = ["TABLE", "VERIFIED_PREFIX"]

VERIFIED_PREFIX = "core/audit-verified/"


@dataclass(frozen=True, slots=True)
class VerifyArgs:
    path: str


def _finding(finding: Finding | None) -> dict[str, Any] | None:
    if finding is None:
        return None
    return {"file": finding.file, "line": finding.line, "message": finding.message}


def _tail(tail: TailInfo | None) -> dict[str, Any] | None:
    if tail is None:
        return None
    return {
        "file": tail.file,
        "first_line": tail.first_line,
        "last_line": tail.last_line,
        "count": tail.count,
    }


def _counts(report: VerifyReport) -> dict[str, Any]:
    return {
        "verified": report.ok,
        "lines": report.lines,
        "checkpoints": report.checkpoints,
        "verified_lines": report.verified_lines,
        "broken": _finding(report.finding),
        "unverified_tail": _tail(report.tail),
        "warnings": list(report.warnings),
    }


def render(verdict: LogVerdict, recorded_now: bool) -> dict[str, Any]:
    """The JSON answer (documented in docs/ui.md)."""
    chains = []
    for chain in verdict.chains:
        last = chain.last_checkpoint
        kept = chain.recorded
        chains.append(
            {
                "chain": chain.chain,
                **_counts(chain.report),
                "files": chain.report.files,
                "last_checkpoint": None
                if last is None
                else {"seq": last.seq, "time": last.time, "file": last.file, "line": last.line},
                "last_verified": None
                if kept is None
                else {"seq": kept.seq, "time": kept.time, "verified_at": kept.verified_at},
                "note": chain.note,
            }
        )
    summary = _counts(verdict.report)
    summary["verified"] = verdict.ok
    summary["warnings"] = [*verdict.warnings, *summary["warnings"]]
    return {
        **summary,
        "file": verdict.file,
        "files": verdict.files,
        "chains": chains,
        "recorded": recorded_now,
    }


def _key_of(path: str) -> str:
    return VERIFIED_PREFIX + path.rstrip("/")


def _decode(raw: bytes | None, file_path: str) -> dict[str, Recorded]:
    if raw is None:
        return {}
    stored = orjson.loads(raw)
    if stored.get("file") != file_path:
        return {}  # made for another file: the device was re-enabled elsewhere
    return {chain: Recorded.from_json(v) for chain, v in stored["chains"].items()}


async def _run(ctx: SysContext, args: VerifyArgs) -> tuple[str, str, LogVerdict]:
    path = validate_mount_path(args.path)
    file_path, prefix = ctx.core.audit.log_file(path)
    pem, _ = await ctx.core.audit.public_key()
    key = load_public_key(pem.encode())
    recorded = _decode(await ctx.core.barrier.get(_key_of(path)), file_path)
    try:
        verdict = await asyncio.to_thread(
            verify_log, file_path, prefix, {key_id_of(key): key}, recorded
        )
    except OSError as exc:
        raise InvalidRequest(f"cannot read the audit file: {exc.strerror or exc}") from None
    return path, file_path, verdict


async def _read(ctx: SysContext, request: Request, args: VerifyArgs) -> Response:
    _, _, verdict = await _run(ctx, args)
    return Response(data=render(verdict, False))


async def _record(ctx: SysContext, request: Request, args: VerifyArgs) -> Response:
    path, file_path, verdict = await _run(ctx, args)
    if not verdict.ok:
        return Response(data=render(verdict, False))
    verified_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    async def advance(raw: bytes | None) -> Swap[bool]:
        merged = merge_recorded(_decode(raw, file_path), verdict, verified_at)
        if merged == _decode(raw, file_path) and raw is not None:
            return Swap(KEEP, True)
        chains = {chain: kept.to_json() for chain, kept in merged.items()}
        return Swap(orjson.dumps({"file": file_path, "chains": chains}), True)

    await swap(ctx.core.barrier, _key_of(path), advance)
    # answer with what is now kept (another verify may have recorded a later one)
    stored = _decode(await ctx.core.barrier.get(_key_of(path)), file_path)
    for chain in verdict.chains:
        chain.recorded = stored.get(chain.chain, chain.recorded)
    return Response(data=render(verdict, True))


async def _forget(ctx: SysContext, request: Request, args: VerifyArgs) -> None:
    await ctx.core.barrier.delete(_key_of(validate_mount_path(args.path)))


_op = Operation


TABLE: list[Endpoint[SysContext]] = [
    Endpoint(
        r"audit-verify/(?P<path>.+)",
        {_op.READ: _read, _op.UPDATE: _record, _op.CREATE: _record, _op.DELETE: _forget},
        VerifyArgs,
        synopsis="Verify a file audit device's log, chain by chain (sudo)",
        description=(
            "The device's current file and its rotated files (oldest first), each "
            "writer's chain on its own, held to the last verified checkpoint the server "
            "keeps. POST records each chain's last checkpoint when all verified; DELETE "
            "forgets them."
        ),
    ),
]
