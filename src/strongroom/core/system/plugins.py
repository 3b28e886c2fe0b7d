"""sys/plugins/catalog: the built-in engines and auth methods. There are no external
plugins: registering one is refused with a clear message (and nothing is stored)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strongroom import __version__
from strongroom.core.system._context import SysContext, SystemCore
from strongroom.errors import InvalidRequest
from strongroom.framework import Endpoint, NoArgs
from strongroom.logical import Operation, Request, Response

__all__ = ["TABLE"]

_AUTH_TYPES = frozenset({"userpass", "approle", "jwt", "oidc", "kubernetes", "cert", "token"})
_DATABASE_PLUGINS = ("postgresql-database-plugin",)
_TYPES = ("auth", "database", "secret")


@dataclass(frozen=True, slots=True)
class PluginArgs:
    type: str
    name: str = ""
    sha256: str = ""
    command: str = ""
    version: str = ""


def _catalog(core: SystemCore) -> dict[str, list[str]]:
    names = set(core.factories)
    return {
        "auth": sorted((names & _AUTH_TYPES) | {"token"}),
        "database": list(_DATABASE_PLUGINS),
        "secret": sorted(names - _AUTH_TYPES),
    }


def _describe(kind: str, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "type": kind,
        "builtin": True,
        "deprecation_status": "supported",
        "version": f"v{__version__}+builtin",
        "args": [],
        "command": "",
        "sha256": "",
    }


async def _read_catalog(ctx: SysContext, request: Request, args: NoArgs) -> Response:
    entries = _catalog(ctx.core)
    detailed = [_describe(kind, name) for kind in _TYPES for name in entries[kind]]
    return Response(data={**entries, "detailed": detailed})


def _kind_of(args: PluginArgs) -> str:
    if args.type not in _TYPES:
        raise InvalidRequest(f"unknown plugin type {args.type[:40]!r}")
    return args.type


async def _list_type(ctx: SysContext, request: Request, args: PluginArgs) -> Response:
    return Response(data={"keys": _catalog(ctx.core)[_kind_of(args)]})


async def _read(ctx: SysContext, request: Request, args: PluginArgs) -> Response | None:
    kind = _kind_of(args)
    if args.name not in _catalog(ctx.core)[kind]:
        return None
    return Response(data=_describe(kind, args.name))


async def _register(ctx: SysContext, request: Request, args: PluginArgs) -> None:
    _kind_of(args)
    raise InvalidRequest(
        "external plugins are not supported: this server runs its built-in engines and "
        "auth methods only (see sys/plugins/catalog)"
    )


async def _deregister(ctx: SysContext, request: Request, args: PluginArgs) -> None:
    kind = _kind_of(args)
    if args.name in _catalog(ctx.core)[kind]:
        raise InvalidRequest("built-in plugins cannot be deregistered")


_op = Operation


_KIND = r"(?P<type>auth|database|secret|[^/]+)"


TABLE: list[Endpoint[SysContext]] = [
    Endpoint(r"plugins/catalog/?", {_op.READ: _read_catalog}, synopsis="The plugin catalog"),
    Endpoint(
        r"plugins/catalog/" + _KIND + r"/?",
        {_op.LIST: _list_type},
        PluginArgs,
        synopsis="Plugins of one type",
    ),
    Endpoint(
        r"plugins/catalog/" + _KIND + r"/(?P<name>[^/]+)",
        {_op.READ: _read, _op.UPDATE: _register, _op.CREATE: _register, _op.DELETE: _deregister},
        PluginArgs,
        synopsis="One plugin; registering external plugins is refused",
    ),
]
