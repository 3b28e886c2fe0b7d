"""sys/plugins/reload/backend and sys/plugins/reload/:type/:name: rebuild mounted backends
from their (built-in) factories, as Vault reloads plugin backends.

A reload cleans the old backend up (its background tasks stop, a database mount closes its
connections) and starts a new one over the same storage. ``scope = "global"`` reloads on
this node only (there is no cluster-wide plugin reload here) and says so in a warning. The
answer carries Vault's ``reload_id`` (the request ID).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from strongroom.core.system._context import SysContext, SystemCore
from strongroom.errors import InvalidRequest
from strongroom.framework import Endpoint
from strongroom.logical import Operation, Request, Response

__all__ = ["TABLE"]

_SCOPES = ("", "global")
_KINDS = ("auth", "secret", "database", "unknown")


@dataclass(frozen=True, slots=True)
class ReloadBackendArgs:
    plugin: str = ""
    mounts: list[str] = field(default_factory=list)
    scope: str = ""


@dataclass(frozen=True, slots=True)
class ReloadPluginArgs:
    type: str
    name: str
    scope: str = ""


def _mount_paths(core: SystemCore, *, plugin: str, kinds: tuple[str, ...]) -> list[str]:
    out = []
    if "secret" in kinds or "database" in kinds:
        wanted = "database" if kinds == ("database",) else plugin
        out += [e.full_path for e in core.mount_entries(is_auth=False) if e.type == wanted]
    if "auth" in kinds:
        out += [e.full_path for e in core.mount_entries(is_auth=True) if e.type == plugin]
    return sorted(out)


def _answer(request: Request, reloaded: list[str], scope: str) -> Response:
    warnings = []
    if not reloaded:
        warnings.append("no plugins were reloaded locally")
    if scope == "global":
        warnings.append("reloaded on this node only: there is no cluster-wide plugin reload")
    return Response(data={"reload_id": request.id}, warnings=warnings)


async def _reload_backend(ctx: SysContext, request: Request, args: ReloadBackendArgs) -> Response:
    core = ctx.core
    if args.scope not in _SCOPES:
        raise InvalidRequest(f"invalid scope {args.scope[:40]!r}: empty or global")
    if not args.plugin and not args.mounts:
        raise InvalidRequest("plugin or mounts must be provided")
    if args.plugin and args.mounts:
        raise InvalidRequest("plugin and mounts cannot be set at the same time")
    if args.plugin:
        paths = _mount_paths(core, plugin=args.plugin, kinds=("secret", "auth"))
    else:
        paths = []
        for mount in args.mounts:
            path = mount.strip("/") + "/"
            if core.router.get(path) is None:
                raise InvalidRequest(f'cannot fetch mount entry on "{path[:80]}"')
            paths.append(path)
    return _answer(request, await core.reload_backends(paths), args.scope)


async def _reload_plugin(ctx: SysContext, request: Request, args: ReloadPluginArgs) -> Response:
    core = ctx.core
    if args.scope not in _SCOPES:
        raise InvalidRequest(f"invalid scope {args.scope[:40]!r}: empty or global")
    if args.type not in _KINDS:
        raise InvalidRequest(f"invalid plugin type {args.type[:40]!r}")
    if args.type == "database":
        # the database engine's mounts run the (built-in) database plugins
        known = args.name == "postgresql-database-plugin"
        paths = _mount_paths(core, plugin=args.name, kinds=("database",)) if known else []
    else:
        kinds = ("secret", "auth") if args.type == "unknown" else (args.type,)
        paths = _mount_paths(core, plugin=args.name, kinds=kinds)
    return _answer(request, await core.reload_backends(paths), args.scope)


TABLE: list[Endpoint[SysContext]] = [
    Endpoint(
        r"plugins/reload/backend",
        {Operation.UPDATE: _reload_backend},
        ReloadBackendArgs,
        synopsis="Reload mounted backends by plugin name or by mount path",
    ),
    Endpoint(
        r"plugins/reload/(?P<type>[^/]+)/(?P<name>[^/]+)",
        {Operation.UPDATE: _reload_plugin},
        ReloadPluginArgs,
        synopsis="Reload every mount of a plugin",
    ),
]
