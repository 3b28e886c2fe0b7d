"""sys/config/auditing/request-headers (request headers copied into audit entries,
HMAC'd when asked) and sys/config/ui/headers (headers for the web UI's responses).

The audited-header set is read on every request (http/ forwards those headers, the audit
trail copies them), so it lives on the Core as immutable values replaced whole on write:
``core.audited_headers`` (name → hmac) and its byte names for the HTTP edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import KeyLocks, NoArgs, Path
from strongroom.logical import Operation, Request, Response, Storage

if TYPE_CHECKING:
    from strongroom.core.core import Core

__all__ = ["AUDITED_HEADERS_KEY", "header_config_paths", "load_audited_headers"]

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


def header_config_paths(core: Core) -> list[Path]:
    locks = KeyLocks()

    def audited_name(args: HeaderArgs) -> str:
        name = args.header.strip().lower()
        if not name:
            raise InvalidRequest("missing header name")
        if name in _TOKEN_HEADERS:
            # the token is audited (HMAC'd) in its own field; never as a header copy
            raise InvalidRequest(f"{name} cannot be audited as a request header")
        return name

    async def list_audited(request: Request, args: NoArgs) -> Response:
        headers = {name: {"hmac": hmac} for name, hmac in sorted(core.audited_headers.items())}
        return Response(data={"headers": headers})

    async def read_audited(request: Request, args: HeaderArgs) -> Response:
        name = audited_name(args)
        if name not in core.audited_headers:
            raise InvalidRequest("Could not find header in config")
        return Response(data={name: {"hmac": core.audited_headers[name]}})

    async def save(headers: dict[str, bool]) -> None:
        await core.barrier.put(AUDITED_HEADERS_KEY, orjson.dumps(headers))
        core.set_audited_headers(headers)

    async def write_audited(request: Request, args: HeaderArgs) -> None:
        name = audited_name(args)
        async with locks.hold(AUDITED_HEADERS_KEY):
            await save({**core.audited_headers, name: args.hmac})

    async def delete_audited(request: Request, args: HeaderArgs) -> None:
        name = audited_name(args)
        async with locks.hold(AUDITED_HEADERS_KEY):
            await save({k: v for k, v in core.audited_headers.items() if k != name})

    async def ui_headers() -> dict[str, list[str]]:
        raw = await core.barrier.get(UI_HEADERS_KEY)
        return {} if raw is None else dict(orjson.loads(raw))

    def ui_name(args: UiHeaderArgs) -> str:
        name = args.header.strip()
        if not name:
            raise InvalidRequest("missing header name")
        if name.lower().startswith("x-vault-"):
            raise InvalidRequest("X-Vault headers cannot be set")
        return name

    async def list_ui(request: Request, args: NoArgs) -> Response:
        return Response(data={"keys": sorted(await ui_headers())})

    async def read_ui(request: Request, args: UiHeaderArgs) -> Response:
        values = (await ui_headers()).get(ui_name(args))
        if values is None:
            raise NotFound()
        if args.multivalue:
            return Response(data={"values": values})
        return Response(data={"value": values[0] if values else ""})

    async def write_ui(request: Request, args: UiHeaderArgs) -> None:
        name = ui_name(args)
        if not args.values:
            raise InvalidRequest("missing values")
        async with locks.hold(UI_HEADERS_KEY):
            headers = await ui_headers()
            headers[name] = list(args.values)
            await core.barrier.put(UI_HEADERS_KEY, orjson.dumps(headers))

    async def delete_ui(request: Request, args: UiHeaderArgs) -> None:
        name = ui_name(args)
        async with locks.hold(UI_HEADERS_KEY):
            headers = await ui_headers()
            headers.pop(name, None)
            await core.barrier.put(UI_HEADERS_KEY, orjson.dumps(headers))

    op = Operation
    return [
        Path(
            r"config/auditing/request-headers/?",
            {op.READ: list_audited, op.LIST: list_audited},
            synopsis="The request headers copied into audit entries",
        ),
        Path(
            r"config/auditing/request-headers/(?P<header>[^/]+)",
            {
                op.READ: read_audited,
                op.UPDATE: write_audited,
                op.CREATE: write_audited,
                op.DELETE: delete_audited,
            },
            HeaderArgs,
            synopsis="Audit one request header (hmac: HMAC its value)",
        ),
        Path(r"config/ui/headers/?", {op.LIST: list_ui}, synopsis="Custom UI response headers"),
        Path(
            r"config/ui/headers/(?P<header>[^/]+)",
            {op.READ: read_ui, op.UPDATE: write_ui, op.CREATE: write_ui, op.DELETE: delete_ui},
            UiHeaderArgs,
            synopsis="One custom UI response header",
            description="Stored for Vault compatibility: this server serves no web UI, so "
            "the headers are kept but never sent.",
        ),
    ]
