"""sys/audit, sys/audit/<path>, sys/audit-hash/<path> and sys/audit-public-key.

The first three are Vault's (website/content/api-docs/system/audit.mdx, audit-hash.mdx);
``sys/audit`` and ``sys/audit/*`` need sudo (ROOT_PATHS). ``sys/audit-public-key`` is ours:
a path Vault does not use, readable without a token (it is in the sys backend's
unauthenticated paths), so that anyone holding a copy of a log can check its checkpoint
signatures: ``strongroom audit verify`` fetches it when given no ``-pubkey``. It answers
only while unsealed, since the key lives behind the barrier; it is generated on first use.
"""

from __future__ import annotations

import asyncio
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import orjson

from strongroom.audit.logfiles import log_files, open_log
from strongroom.audit.search import SearchQuery, parse_bound, search
from strongroom.core.mounts import validate_mount_path
from strongroom.core.system._context import SysContext
from strongroom.errors import InvalidRequest
from strongroom.framework import Endpoint, NoArgs
from strongroom.logical import Operation, Request, Response

__all__ = ["TABLE", "UNAUTHENTICATED_PATHS"]

UNAUTHENTICATED_PATHS = ("audit-public-key",)


@dataclass(frozen=True, slots=True)
class EnableArgs:
    path: str
    type: str = ""
    description: str = ""
    options: dict[str, str] = field(default_factory=dict)
    local: bool = False


@dataclass(frozen=True, slots=True)
class PathArgs:
    path: str


@dataclass(frozen=True, slots=True)
class HashArgs:
    path: str
    input: str | None = None


@dataclass(frozen=True, slots=True)
class SearchArgs:
    path: str
    request_path: str = ""  # exact, or a prefix ending in "*"
    operation: str = ""
    status: str = ""  # denied, error or ok
    since: str = ""  # RFC 3339, a date, or a duration ago (2h)
    until: str = ""
    request_id: str = ""
    remote_address: str = ""
    limit: int = 100
    rotated: bool = False  # the rotated files too (oldest first), as audit-verify reads them


_SEARCH_LIMIT = 1000


def _search_file(
    file_path: str, prefix: bytes | None, query: SearchQuery, limit: int, rotated: bool
) -> dict[str, Any]:
    matches: list[dict[str, Any]] = []
    truncated = False
    files = log_files(file_path)[0] if rotated else [file_path]
    try:
        for name in files:
            with ExitStack() as stack:
                for number, line in search(open_log(name, stack), query, prefix=prefix):
                    if len(matches) >= limit:
                        truncated = True
                        break
                    start = line.find(b"{") if prefix is None else len(prefix)
                    entry = orjson.loads(line[start:])
                    matches.append({"file": name, "line": number, "entry": entry})
            if truncated:
                break
    except (OSError, EOFError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise InvalidRequest(f"cannot read the audit file: {reason}") from None
    return {"matches": matches, "truncated": truncated, "files": files}


async def _list_devices(ctx: SysContext, request: Request, args: NoArgs) -> Response:
    return Response(data=ctx.core.audit.describe())


async def _enable(ctx: SysContext, request: Request, args: EnableArgs) -> None:
    if not args.type:
        raise InvalidRequest("type is required")
    await ctx.core.audit.enable(
        validate_mount_path(args.path),
        args.type,
        description=args.description,
        options=args.options,
        local=args.local,
    )


async def _disable(ctx: SysContext, request: Request, args: PathArgs) -> None:
    await ctx.core.audit.disable(validate_mount_path(args.path))


async def _audit_hash(ctx: SysContext, request: Request, args: HashArgs) -> Response:
    if args.input is None:
        raise InvalidRequest("the input parameter is required")
    return Response(data={"hash": ctx.core.audit.hash(validate_mount_path(args.path), args.input)})


async def _public_key(ctx: SysContext, request: Request, args: NoArgs) -> Response:
    pem, key_id = await ctx.core.audit.public_key()
    return Response(data={"public_key": pem, "key_id": key_id, "algorithm": "ed25519"})


async def _search_log(ctx: SysContext, request: Request, args: SearchArgs) -> Response:
    file_path, prefix = ctx.core.audit.log_file(validate_mount_path(args.path))
    if not 1 <= args.limit <= _SEARCH_LIMIT:
        raise InvalidRequest(f"limit must be between 1 and {_SEARCH_LIMIT}")
    try:
        query = SearchQuery(
            path=args.request_path,
            operation=args.operation.lower(),
            status=args.status.lower(),
            since=parse_bound(args.since),
            until=parse_bound(args.until),
            request_id=args.request_id,
            remote_address=args.remote_address,
        )
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    found = await asyncio.to_thread(
        _search_file, file_path, prefix, query, args.limit, args.rotated
    )
    return Response(data=found)


_read, _update, _delete = Operation.READ, Operation.UPDATE, Operation.DELETE


TABLE: list[Endpoint[SysContext]] = [
    Endpoint(
        r"audit-search/(?P<path>.+)",
        {_update: _search_log},
        SearchArgs,
        synopsis="Search a file audit device's log (sudo)",
        description=(
            "Criteria (all that are set must hold): request_path (a trailing * is a "
            "prefix), operation, status (denied|error|ok), since/until, request_id, "
            "remote_address; at most `limit` entries (default 100); rotated: the "
            "rotated files too, oldest first."
        ),
    ),
    Endpoint(
        r"audit",
        {_read: _list_devices},
        synopsis="List the enabled audit devices",
        description="Path → type, description, options and local flag of each device.",
    ),
    Endpoint(
        r"audit/(?P<path>.+)",
        {_update: _enable, _delete: _disable},
        EnableArgs,
        synopsis="Enable or disable an audit device",
        description=(
            "Types: file (file_path, mode), socket (address, socket_type, write_timeout), "
            "syslog (facility, tag). Common options: format, prefix, log_raw, "
            "hmac_accessor, elide_list_responses, checkpoint_entries, "
            "checkpoint_interval, alert_denied_threshold, alert_window, alert_webhook."
        ),
    ),
    Endpoint(
        r"audit-hash/(?P<path>.+)",
        {_update: _audit_hash},
        HashArgs,
        synopsis="HMAC a value with an audit device's salt",
        description="Lets an operator find a known value in the log: {input} → {hash}.",
    ),
    Endpoint(
        r"audit-public-key",
        {_read: _public_key},
        synopsis="The public key that signs audit checkpoints (no token needed)",
        description=(
            "PEM (Ed25519) and key_id of the key whose signatures audit checkpoints "
            "carry; `strongroom audit verify` checks a log against it offline."
        ),
    ),
]
