"""``audit verify`` and ``audit search``: offline tools for audit logs (ours, beyond Vault).

``audit enable|disable|list`` live with the other mount tables in ``_mounts.py``.

``verify FILE...`` checks the hash chains and the signed checkpoints of one log, or of a
rotated set given oldest first, or of the files of several writers (processes or nodes,
each line names its writer's chain): each chain is verified on its own and reported with
its *first* broken link (file and line).
It needs the server's public key: ``-pubkey=FILE`` (PEM, repeatable), or, when none is
given and a server address is configured, it reads the unauthenticated
``sys/audit-public-key``. Exit codes: 0 verified (an unverified tail younger than the
checkpoint interval is reported, not failed), 2 tampering or a missing checkpoint found,
1 a local error.

``search FILE...`` streams a log through filters. Tokens, accessors and data values are
HMAC'd in the log: give them as ``hmac-sha256:…``, or give the raw value with
``-device=PATH`` and the CLI asks the server (``sys/audit-hash/PATH``) for its HMAC.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson

from ._client import CommandError, env_value, remote
from ._command import Command, Context, expect_at_least
from ._flags import Flag, Options, UsageError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from strongroom.audit import VerifyReport
    from strongroom.audit.chain import ChainReport

__all__ = ["COMMANDS"]

_HMAC = "hmac-sha256:"


def _open(path: str, stack: ExitStack) -> BinaryIO:
    try:
        return stack.enter_context(open(path, "rb"))
    except OSError as exc:
        raise CommandError(f"Error reading {path}: {exc.strerror}") from None


def _prefix(opts: Options) -> bytes | None:
    return opts.text("prefix").encode() if opts.is_set("prefix") else None


def _has_server(ctx: Context, opts: Options) -> bool:
    return bool(opts.text("address") or env_value(ctx.env, "ADDR"))


# ----- verify ------------------------------------------------------------------------
def _keys(ctx: Context, opts: Options) -> dict[str, Ed25519PublicKey]:
    from strongroom.audit.chain import key_id_of, load_public_key

    pems: list[tuple[str, bytes]] = []
    for name in opts.strings("pubkey"):
        try:
            with open(name, "rb") as handle:
                pems.append((name, handle.read()))
        except OSError as exc:
            raise CommandError(f"Error reading {name}: {exc.strerror}") from None
    if not pems:
        if not _has_server(ctx, opts):
            raise UsageError(
                "no public key: pass -pubkey=FILE, or set STRONGROOM_ADDR to read it from "
                "the server's sys/audit-public-key"
            )
        with remote("reading the audit public key"):
            body = ctx.client().request("GET", "sys/audit-public-key") or {}
        data = body.get("data") if isinstance(body.get("data"), Mapping) else body
        pem = data.get("public_key") if isinstance(data, Mapping) else None
        if not isinstance(pem, str):
            raise CommandError("Error reading the audit public key: no key in the answer", 2)
        pems.append(("sys/audit-public-key", pem.encode()))
    keys: dict[str, Ed25519PublicKey] = {}
    for name, pem_bytes in pems:
        try:
            key = load_public_key(pem_bytes)
        except ValueError:
            raise CommandError(f"Error: {name} is not an Ed25519 public key (PEM)") from None
        keys[key_id_of(key)] = key
    return keys


def _report_json(report: VerifyReport, chains: list[ChainReport]) -> dict[str, Any]:
    body = _one_json(report)
    body["chains"] = [{"chain": c.chain, **_one_json(c.report)} for c in chains]
    return body


def _one_json(report: VerifyReport) -> dict[str, Any]:
    finding = report.finding
    tail = report.tail
    return {
        "verified": report.ok,
        "files": report.files,
        "lines": report.lines,
        "checkpoints": report.checkpoints,
        "verified_lines": report.verified_lines,
        "broken": None
        if finding is None
        else {"file": finding.file, "line": finding.line, "message": finding.message},
        "unverified_tail": None
        if tail is None
        else {
            "file": tail.file,
            "first_line": tail.first_line,
            "last_line": tail.last_line,
            "count": tail.count,
        },
        "warnings": report.warnings,
    }


def _verify(ctx: Context, opts: Options, args: list[str]) -> int:
    from strongroom.audit.chain import Verifier

    expect_at_least(args, 1)
    keys = _keys(ctx, opts)
    verifier = Verifier(keys, prefix=_prefix(opts))
    with ExitStack() as stack:
        for path in args:
            verifier.feed(path, _open(path, stack))
    report = verifier.finish()
    chains = verifier.chains
    if ctx.format != "table":
        body = _report_json(report, chains)
        ctx.print(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())
        return 0 if report.ok else 2
    for warning in report.warnings:
        ctx.warn(f"WARNING: {warning}")
    several = len(chains) > 1 or any(c.chain for c in chains)
    for chain in chains:
        own = chain.report
        label = f"chain {chain.chain or '(no chain id)'}: " if several else ""
        finding = own.finding
        if finding is not None:
            ctx.print(f"FAILED: {label}{finding.file} line {finding.line}: {finding.message}")
            continue
        if several:
            ctx.print(
                f"OK: {label}{own.lines} lines in {own.files} file(s); {own.checkpoints} "
                f"signed checkpoint(s) cover {own.verified_lines} of them"
            )
        tail = own.tail
        if tail is not None:
            ctx.print(
                f"Unverified tail: {label}lines {tail.first_line}-{tail.last_line} of "
                f"{tail.file} ({tail.count}) are not covered by a checkpoint yet"
            )
    if not report.ok:
        return 2
    ctx.print(
        f"OK: {report.lines} lines in {report.files} file(s)"
        + (f", {len(chains)} chain(s)" if several else "")
        + f"; {report.checkpoints} signed checkpoint(s) cover {report.verified_lines} of them"
    )
    return 0


# ----- search ------------------------------------------------------------------------
def _hashed(ctx: Context, opts: Options, value: str, what: str, *, raw_ok: bool) -> str:
    """A value as the log shows it: HMAC'd through the server when -device is given."""
    if not value or value.startswith(_HMAC):
        return value
    device = opts.text("device").strip().strip("/")
    if not device:
        if raw_ok:
            return value
        raise UsageError(f"-{what} is HMAC'd in the log: give hmac-sha256:… or add -device=PATH")
    with remote(f"hashing the {what} with audit device {device}"):
        body = ctx.client().write(f"sys/audit-hash/{device}", {"input": value}) or {}
    data = body.get("data") if isinstance(body.get("data"), Mapping) else body
    hashed = data.get("hash") if isinstance(data, Mapping) else None
    if not isinstance(hashed, str):
        raise CommandError("Error hashing: no hash in the answer", 2)
    return hashed


def _search(ctx: Context, opts: Options, args: list[str]) -> int:
    from strongroom.audit.search import SearchQuery, parse_bound, search

    expect_at_least(args, 1)
    try:
        since = parse_bound(opts.text("since"))
        until = parse_bound(opts.text("until"))
    except ValueError:
        raise UsageError("-since/-until: RFC 3339 time, a date, or a duration ago (2h)") from None
    contains = tuple(
        _hashed(ctx, opts, value, "value", raw_ok=False) for value in opts.strings("value")
    )
    try:
        query = SearchQuery(
            path=opts.text("path"),
            entity=opts.text("entity"),
            operation=opts.text("op").lower(),
            since=since,
            until=until,
            status=opts.text("status").lower(),
            types=frozenset(opts.strings("type")),
            request_id=opts.text("request-id"),
            token=_hashed(ctx, opts, opts.text("token"), "token", raw_ok=False),
            accessor=_hashed(ctx, opts, opts.text("accessor"), "accessor", raw_ok=True),
            remote_address=opts.text("remote-address"),
            contains=contains,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    count = 0
    counting = opts.flag("count")
    prefix = _prefix(opts)
    with ExitStack() as stack:
        for path in args:
            handle = _open(path, stack)
            for number, line in search(handle, query, prefix=prefix):
                count += 1
                if counting:
                    continue
                if len(args) > 1:
                    ctx.out.write(f"{path}:{number}:")
                ctx.out.write(line.decode("utf-8", "replace") + os.linesep)
    if counting:
        ctx.print(str(count))
    return 0 if count else 1


_PREFIX = Flag("prefix", help="The device's prefix (default: the entry starts at the first '{').")

COMMANDS: dict[tuple[str, ...], Command] = {
    ("audit", "verify"): Command(
        "Verify an audit log's hash chain and signed checkpoints",
        "Usage: strongroom audit verify [options] FILE...\n\n"
        "  Give rotated files oldest first; files of several writers may be given\n"
        "  together. Reports, per writer's chain, the first broken link (deleted,\n"
        "  inserted, reordered or edited lines, forged checkpoints, a cut tail).",
        _verify,
        (
            Flag("pubkey", "multi", help="PEM public key file (default: the server's)."),
            _PREFIX,
        ),
    ),
    ("audit", "search"): Command(
        "Search an audit log",
        "Usage: strongroom audit search [options] FILE...\n\n"
        "  Prints matching lines; exits 1 when nothing matched.",
        _search,
        (
            Flag("path", help="Request path; a trailing * matches a prefix."),
            Flag("entity", help="entity_id (in clear in the log)."),
            Flag("op", aliases=("operation",), help="Operation: read, create, update, …"),
            Flag("since", help="From this time: RFC 3339, a date, or a duration ago (2h)."),
            Flag("until", help="Up to this time (same forms)."),
            Flag("status", help="denied, error or ok."),
            Flag("type", "list", help="Entry types: request, response, checkpoint, link, alert."),
            Flag("request-id", help="The request ID."),
            Flag("remote-address", help="The client's address."),
            Flag("token", help="The client token (hmac-sha256:…, or raw with -device)."),
            Flag("accessor", help="The token accessor (as logged, or raw with -device)."),
            Flag(
                "value",
                "multi",
                help="A known value in any data (hmac-sha256:… or raw with -device).",
            ),
            Flag("device", help="Audit device path whose salt HMACs raw -token/-accessor/-value."),
            Flag("count", "bool", help="Print only the number of matches."),
            _PREFIX,
        ),
        output=False,
    ),
}
