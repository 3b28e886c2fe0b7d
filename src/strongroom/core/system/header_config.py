"""sys/config/auditing/request-headers (request headers copied into audit entries,
HMAC'd when asked) and sys/config/ui/headers (headers for the web UI's responses).

The audited-header set is read on every request (http/ forwards those headers, the audit
trail copies them), so it lives on the Core as immutable values replaced whole on write:
``core.audited_headers`` (name → hmac) and its byte names for the HTTP edge.

UI headers are sent on every answer under ``/ui`` (as Vault), one header line per value,
from ``core.ui_headers`` (loaded at unseal, replaced on write, reloaded by standbys). They
can never weaken the UI's protections (docs/ui.md): the server's own security headers
(``X-Frame-Options``, ``X-Content-Type-Options``, ``Referrer-Policy``,
``Cross-Origin-*-Policy``) and the response's framing (``Content-Type``, ``Content-Length``,
``Cache-Control``, ``ETag``, ``Location``, ``Set-Cookie`` …) cannot be set; a
``Content-Security-Policy`` is sent *in addition to* the built-in one (a browser enforces
every policy it gets, so a second one can only restrict), and one asking for
``'unsafe-inline'``, ``'unsafe-eval'`` or ``'unsafe-hashes'`` is refused as it could not
take effect. Writes are refused with a 400; a value stored before these rules is skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

from strongroom.core.system._context import SysContext
from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import KEEP, Endpoint, NoArgs, Swap, swap
from strongroom.logical import Operation, Request, Response, Storage

__all__ = [
    "AUDITED_HEADERS_KEY",
    "TABLE",
    "UI_HEADERS_KEY",
    "load_audited_headers",
    "load_ui_headers",
    "ui_header_problem",
]

AUDITED_HEADERS_KEY = "core/audited-headers"
UI_HEADERS_KEY = "core/ui-headers"
_TOKEN_HEADERS = frozenset({"x-vault-token", "authorization"})

# set by the server on every UI answer, never by sys/config/ui/headers
_FIXED_UI_HEADERS = frozenset(
    {
        "x-frame-options",
        "x-content-type-options",
        "referrer-policy",
        "cross-origin-opener-policy",
        "cross-origin-resource-policy",
        "cross-origin-embedder-policy",
        "content-type",
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "trailer",
        "te",
        "cache-control",
        "etag",
        "last-modified",
        "location",
        "set-cookie",
        "allow",
        "date",
        "server",
    }
)
_UNSAFE_CSP = ("'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")
_VALUE = re.compile(r"^[\t\x20-\x7e\x80-\xff]{0,4096}$")


def ui_header_problem(name: str, values: list[str]) -> str | None:
    """Why the UI header ``name: values`` may not be set, or None when it may."""
    lower = name.lower()
    if not _TOKEN.match(name):
        return f"{name!r} is not a valid header name"
    if lower.startswith("x-vault-"):
        return "X-Vault headers cannot be set"
    if lower in _FIXED_UI_HEADERS:
        return f"{name} is set by the server on every UI answer and cannot be changed"
    for value in values:
        if not _VALUE.match(value):
            return f"a value of {name} holds a control character or is too long"
        if lower in ("content-security-policy", "content-security-policy-report-only"):
            unsafe = [word for word in _UNSAFE_CSP if word in value.lower()]
            if unsafe and lower == "content-security-policy":
                return (
                    f"a Content-Security-Policy with {', '.join(unsafe)} would not loosen the "
                    "UI's built-in policy (both are enforced) and is refused"
                )
    return None


async def load_ui_headers(storage: Storage) -> tuple[tuple[bytes, bytes], ...]:
    """The UI headers to send: one (name, value) per value, the refused ones skipped."""
    raw = await storage.get(UI_HEADERS_KEY)
    return _ui_header_lines({} if raw is None else dict(orjson.loads(raw)))


def _ui_header_lines(headers: dict[str, list[str]]) -> tuple[tuple[bytes, bytes], ...]:
    return tuple(
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, values in sorted(headers.items())
        if ui_header_problem(name, values) is None
        for value in values
    )


async def load_audited_headers(storage: Storage) -> dict[str, bool]:
    raw = await storage.get(AUDITED_HEADERS_KEY)
    return {} if raw is None else {k: bool(v) for k, v in orjson.loads(raw).items()}


@dataclass(frozen=True, slots=True)
class HeaderArgs:
    header: str
    hmac: bool = False


@dataclass(frozen=True, slots=True)
class UiHeaderArgs:
    header: str
    values: list[str] | None = None
    multivalue: bool = False


def _audited_name(args: HeaderArgs) -> str:
    name = args.header.strip().lower()
    if not name:
        raise InvalidRequest("missing header name")
    if name in _TOKEN_HEADERS:
        # the token is audited (HMAC'd) in its own field; never as a header copy
        raise InvalidRequest(f"{name} cannot be audited as a request header")
    return name


async def _list_audited(ctx: SysContext, request: Request, args: NoArgs) -> Response:
    headers = {name: {"hmac": hmac} for name, hmac in sorted(ctx.core.audited_headers.items())}
    return Response(data={"headers": headers})


async def _read_audited(ctx: SysContext, request: Request, args: HeaderArgs) -> Response:
    name = _audited_name(args)
    if name not in ctx.core.audited_headers:
        raise InvalidRequest("Could not find header in config")
    return Response(data={name: {"hmac": ctx.core.audited_headers[name]}})


async def _save(ctx: SysContext, headers: dict[str, bool]) -> None:
    await ctx.core.barrier.put(AUDITED_HEADERS_KEY, orjson.dumps(headers))
    ctx.core.set_audited_headers(headers)


async def _write_audited(ctx: SysContext, request: Request, args: HeaderArgs) -> None:
    name = _audited_name(args)
    async with ctx.header_locks.hold(AUDITED_HEADERS_KEY):
        await _save(ctx, {**ctx.core.audited_headers, name: args.hmac})


async def _delete_audited(ctx: SysContext, request: Request, args: HeaderArgs) -> None:
    name = _audited_name(args)
    async with ctx.header_locks.hold(AUDITED_HEADERS_KEY):
        await _save(ctx, {k: v for k, v in ctx.core.audited_headers.items() if k != name})


async def _ui_headers(ctx: SysContext) -> dict[str, list[str]]:
    raw = await ctx.core.barrier.get(UI_HEADERS_KEY)
    return {} if raw is None else dict(orjson.loads(raw))


def _ui_name(args: UiHeaderArgs) -> str:
    name = args.header.strip()
    if not name:
        raise InvalidRequest("missing header name")
    if name.lower().startswith("x-vault-"):
        raise InvalidRequest("X-Vault headers cannot be set")
    return name


def _find_ui(headers: dict[str, list[str]], name: str) -> str:
    """The stored spelling of ``name`` (header names are case-insensitive)."""
    return next((k for k in headers if k.lower() == name.lower()), name)


async def _list_ui(ctx: SysContext, request: Request, args: NoArgs) -> Response:
    return Response(data={"keys": sorted(await _ui_headers(ctx))})


async def _read_ui(ctx: SysContext, request: Request, args: UiHeaderArgs) -> Response:
    headers = await _ui_headers(ctx)
    values = headers.get(_find_ui(headers, _ui_name(args)))
    if values is None:
        raise NotFound()
    if args.multivalue:
        return Response(data={"values": values})
    return Response(data={"value": values[0] if values else ""})


async def _change_ui(ctx: SysContext, name: str, values: list[str] | None) -> None:
    """Set (or with ``values`` None remove) one UI header: a guarded read-modify-write,
    so concurrent writers (tasks, workers, nodes) never lose one another's header."""

    async def change(raw: bytes | None) -> Swap[dict[str, list[str]]]:
        headers: dict[str, list[str]] = {} if raw is None else dict(orjson.loads(raw))
        headers.pop(_find_ui(headers, name), None)
        if values is not None:
            headers[name] = values
        elif raw is None:
            return Swap(KEEP, headers)
        return Swap(orjson.dumps(headers), headers)

    headers = await swap(ctx.core.barrier, UI_HEADERS_KEY, change)
    ctx.core.ui_headers = _ui_header_lines(headers)


async def _write_ui(ctx: SysContext, request: Request, args: UiHeaderArgs) -> None:
    name = _ui_name(args)
    if not args.values:
        raise InvalidRequest("missing values")
    values = [str(v) for v in args.values]
    problem = ui_header_problem(name, values)
    if problem is not None:
        raise InvalidRequest(problem)
    await _change_ui(ctx, name, values)


async def _delete_ui(ctx: SysContext, request: Request, args: UiHeaderArgs) -> None:
    await _change_ui(ctx, _ui_name(args), None)


_op = Operation


TABLE: list[Endpoint[SysContext]] = [
    Endpoint(
        r"config/auditing/request-headers/?",
        {_op.READ: _list_audited, _op.LIST: _list_audited},
        synopsis="The request headers copied into audit entries",
    ),
    Endpoint(
        r"config/auditing/request-headers/(?P<header>[^/]+)",
        {
            _op.READ: _read_audited,
            _op.UPDATE: _write_audited,
            _op.CREATE: _write_audited,
            _op.DELETE: _delete_audited,
        },
        HeaderArgs,
        synopsis="Audit one request header (hmac: HMAC its value)",
    ),
    Endpoint(r"config/ui/headers/?", {_op.LIST: _list_ui}, synopsis="Custom UI response headers"),
    Endpoint(
        r"config/ui/headers/(?P<header>[^/]+)",
        {_op.READ: _read_ui, _op.UPDATE: _write_ui, _op.CREATE: _write_ui, _op.DELETE: _delete_ui},
        UiHeaderArgs,
        synopsis="One custom UI response header",
        description="Sent on every /ui answer, one line per value. The server's own "
        "security headers cannot be set; a Content-Security-Policy is sent in addition "
        "to the built-in one (so it can only restrict).",
    ),
]
