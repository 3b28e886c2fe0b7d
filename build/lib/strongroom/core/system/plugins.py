"""sys/plugins/catalog: the built-in engines and auth methods. There are no external
plugins: registering one is refused with a clear message (and nothing is stored)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strongroom import __version__
from strongroom.errors import InvalidRequest
from strongroom.framework import NoArgs, Path
from strongroom.logical import Operation, Request, Response

if TYPE_CHECKING:
    from strongroom.core.core import Core

__all__ = ["plugin_paths"]

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


def _catalog(core: Core) -> dict[str, list[str]]:
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


def plugin_paths(core: Core) -> list[Path]:
    async def catalog(request: Request, args: NoArgs) -> Response:
        entries = _catalog(core)
        detailed = [_describe(kind, name) for kind in _TYPES for name in entries[kind]]
        return Response(data={**entries, "detailed": detailed})

    def kind_of(args: PluginArgs) -> str:
        if args.type not in _TYPES:
            raise InvalidRequest(f"unknown plugin type {args.type[:40]!r}")
        return args.type

    async def list_type(request: Request, args: PluginArgs) -> Response:
        return Response(data={"keys": _catalog(core)[kind_of(args)]})

    async def read(request: Request, args: PluginArgs) -> Response | None:
        kind = kind_of(args)
        if args.name not in _catalog(core)[kind]:
            return None
        return Response(data=_describe(kind, args.name))

    async def register(request: Request, args: PluginArgs) -> None:
        kind_of(args)
        raise InvalidRequest(
            "external plugins are not supported: this server runs its built-in engines and "
            "auth methods only (see sys/plugins/catalog)"
        )

    async def deregister(request: Request, args: PluginArgs) -> None:
        kind = kind_of(args)
        if args.name in _catalog(core)[kind]:
            raise InvalidRequest("built-in plugins cannot be deregistered")

    op = Operation
    kind = r"(?P<type>auth|database|secret|[^/]+)"
    return [
        Path(r"plugins/catalog/?", {op.READ: catalog}, synopsis="The plugin catalog"),
        Path(
            r"plugins/catalog/" + kind + r"/?",
            {op.LIST: list_type},
            PluginArgs,
            synopsis="Plugins of one type",
        ),
        Path(
            r"plugins/catalog/" + kind + r"/(?P<name>[^/]+)",
            {op.READ: read, op.UPDATE: register, op.CREATE: register, op.DELETE: deregister},
            PluginArgs,
            synopsis="One plugin; registering external plugins is refused",
        ),
    ]
