"""sys/config/auditing/request-headers (request headers copied into audit entries,
HMAC'd when asked) and sys/config/ui/headers (headers for the web UI's responses).

The audited-header set is read on every request (http/ forwards those headers, the audit
trail copies them), so it lives on the Core as immutable values replaced whole on write:
``core.audited_headers`` (name → hmac) and its byte names for the HTTP edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from strongroom.core.system._context import SysContext
from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import Endpoint, NoArgs
from strongroom.logical import Operation, Request, Response, Storage

__all__ = ["AUDITED_HEADERS_KEY", "TABLE", "load_audited_headers"]

AUDITED_HEADERS_KEY = "core/audited-headers"
UI_HEADERS_KEY = "core/ui-headers"
_TOKEN_HEADERS = frozenset({"x-vault-token", "authorization"})


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


async def _list_ui(ctx: SysContext, request: Request, args: NoArgs) -> Response:
    return Response(data={"keys": sorted(await _ui_headers(ctx))})


async def _read_ui(ctx: SysContext, request: Request, args: UiHeaderArgs) -> Response:
    values = (await _ui_headers(ctx)).get(_ui_name(args))
    if values is None:
        raise NotFound()
    if args.multivalue:
        return Response(data={"values": values})
    return Response(data={"value": values[0] if values else ""})


async def _write_ui(ctx: SysContext, request: Request, args: UiHeaderArgs) -> None:
    name = _ui_name(args)
    if not args.values:
        raise InvalidRequest("missing values")
    async with ctx.header_locks.hold(UI_HEADERS_KEY):
        headers = await _ui_headers(ctx)
        headers[name] = list(args.values)
        await ctx.core.barrier.put(UI_HEADERS_KEY, orjson.dumps(headers))


async def _delete_ui(ctx: SysContext, request: Request, args: UiHeaderArgs) -> None:
    name = _ui_name(args)
    async with ctx.header_locks.hold(UI_HEADERS_KEY):
        headers = await _ui_headers(ctx)
        headers.pop(name, None)
        await ctx.core.barrier.put(UI_HEADERS_KEY, orjson.dumps(headers))


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
        description="Stored for Vault compatibility: this server serves no web UI, so "
        "the headers are kept but never sent.",
    ),
]
