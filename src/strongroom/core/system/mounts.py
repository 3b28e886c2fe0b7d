"""sys/mounts, sys/auth, sys/remount and sys/internal/ui/mounts."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from strongroom.core.mounts import MountConfig, MountEntry, mount_token_type
from strongroom.core.system._context import MIGRATIONS_KEPT, SysContext, SystemCore, caller_acl
from strongroom.errors import InvalidRequest, PermissionDenied
from strongroom.framework import (
    Endpoint,
    NoArgs,
    parse_bool,
    parse_duration,
    parse_int,
    parse_str_list,
)
from strongroom.logical import Operation, Request, Response

__all__ = ["TABLE"]

Handler = Callable[[SysContext, Request, Any], Awaitable[Response | None]]

_TUNABLE_LISTS = (
    "audit_non_hmac_request_keys",
    "audit_non_hmac_response_keys",
    "passthrough_request_headers",
    "allowed_response_headers",
)


@dataclass(frozen=True, slots=True)
class MountArgs:
    path: str
    type: str = ""
    description: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    local: bool = False
    seal_wrap: bool = False
    plugin_name: str = ""
    external_entropy_access: bool = False
    plugin_version: str = ""


@dataclass(frozen=True, slots=True)
class PathArgs:
    path: str


@dataclass(frozen=True, slots=True)
class TuneArgs:
    path: str
    default_lease_ttl: str = ""
    max_lease_ttl: str = ""
    description: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    listing_visibility: str | None = None
    force_no_cache: bool | None = None
    audit_non_hmac_request_keys: list[str] | None = None
    audit_non_hmac_response_keys: list[str] | None = None
    passthrough_request_headers: list[str] | None = None
    allowed_response_headers: list[str] | None = None
    user_lockout_config: dict[str, Any] | None = None
    token_type: str | None = None


@dataclass(frozen=True, slots=True)
class MigrationArgs:
    migration_id: str


@dataclass(frozen=True, slots=True)
class RemountArgs:
    # "from" is a Python keyword: the handler reads it from request.data
    to: str = ""


def _config_from(raw: dict[str, Any]) -> MountConfig:
    known = {"default_lease_ttl", "max_lease_ttl", "force_no_cache", "listing_visibility"}
    known.update(_TUNABLE_LISTS)
    unknown = set(raw) - known - {"plugin_name", "token_type", _LOCKOUT}
    if unknown:
        raise InvalidRequest(f"unknown mount config keys: {', '.join(sorted(unknown))}")
    lists: dict[str, Any] = {
        name: tuple(parse_str_list(raw.get(name), name)) for name in _TUNABLE_LISTS
    }
    return MountConfig(
        default_lease_ttl=parse_duration(raw.get("default_lease_ttl", 0), "default_lease_ttl"),
        max_lease_ttl=parse_duration(raw.get("max_lease_ttl", 0), "max_lease_ttl"),
        force_no_cache=parse_bool(raw.get("force_no_cache", False), "force_no_cache"),
        listing_visibility=str(raw.get("listing_visibility", "")),
        **lists,
    )


# Vault's user lockout, set through sys/auth/<path>/tune ``user_lockout_config``. The methods
# that count failed logins (userpass) keep their settings in their own storage at
# ``config/lockout`` (auth/_lockout.py); core writes that record, as sys/locked-users reads
# their ``lockout/`` records. Other methods do not lock users out, so the setting is refused.
_LOCKOUT = "user_lockout_config"
_LOCKOUT_KEY = "config/lockout"
_LOCKOUT_TYPES = ("userpass",)
_LOCKOUT_DEFAULTS = {"threshold": 5, "duration": 900, "counter_reset": 900, "disabled": False}


async def _set_lockout(core: SystemCore, entry: MountEntry, raw: Any) -> None:
    if not entry.is_auth or entry.type not in _LOCKOUT_TYPES:
        raise InvalidRequest(
            f"{_LOCKOUT} is not supported by {entry.type!r} mounts"
            f" (supported: {', '.join(_LOCKOUT_TYPES)} auth methods)"
        )
    if not isinstance(raw, dict):
        raise InvalidRequest(f"{_LOCKOUT} must be an object")
    unknown = set(raw) - {
        "lockout_threshold",
        "lockout_duration",
        "lockout_counter_reset",
        "lockout_disable",
    }
    if unknown:
        raise InvalidRequest(f"unknown {_LOCKOUT} keys: {', '.join(sorted(unknown))}")
    route = core.router.get(entry.full_path)
    if route is None:
        raise InvalidRequest(f"no mount at {entry.path!r}")
    current = dict(_LOCKOUT_DEFAULTS)
    stored = await route.storage.get(_LOCKOUT_KEY)
    if stored is not None:
        current.update(orjson.loads(stored))
    if "lockout_threshold" in raw:
        threshold = parse_int(raw["lockout_threshold"], "lockout_threshold")
        if threshold < 1:
            raise InvalidRequest("lockout_threshold: must be at least 1")
        current["threshold"] = threshold
    for key, field_name in (
        ("lockout_duration", "duration"),
        ("lockout_counter_reset", "counter_reset"),
    ):
        if key in raw:
            seconds = int(parse_duration(raw[key], key))
            if seconds < 1:
                raise InvalidRequest(f"{key}: must be positive")
            current[field_name] = seconds
    if "lockout_disable" in raw:
        current["disabled"] = parse_bool(raw["lockout_disable"], "lockout_disable")
    await route.storage.put(_LOCKOUT_KEY, orjson.dumps(current))


async def _lockout_view(core: SystemCore, entry: MountEntry) -> dict[str, Any] | None:
    route = core.router.get(entry.full_path)
    if entry.type not in _LOCKOUT_TYPES or route is None:
        return None
    stored = await route.storage.get(_LOCKOUT_KEY)
    if stored is None:
        return None
    record = {**_LOCKOUT_DEFAULTS, **orjson.loads(stored)}
    return {
        "lockout_threshold": record["threshold"],
        "lockout_duration": record["duration"],
        "lockout_counter_reset": record["counter_reset"],
        "lockout_disable": record["disabled"],
    }


def _tune_view(core: SystemCore, entry: MountEntry) -> dict[str, Any]:
    config = entry.config
    out: dict[str, Any] = {
        "default_lease_ttl": config.default_lease_ttl or core.settings.default_lease_ttl,
        "max_lease_ttl": config.max_lease_ttl or core.settings.max_lease_ttl,
        "force_no_cache": config.force_no_cache,
        "description": entry.description,
    }
    if entry.options:
        out["options"] = dict(entry.options)
    if config.listing_visibility:
        out["listing_visibility"] = config.listing_visibility
    if entry.is_auth:
        # Vault's auth mounts always report the token type they issue
        out["token_type"] = config.token_type or "default-service"
    for name in _TUNABLE_LISTS:
        if getattr(config, name):
            out[name] = list(getattr(config, name))
    return out


def _listing(is_auth: bool) -> Handler:
    async def handler(ctx: SysContext, request: Request, args: NoArgs) -> Response:
        data = {e.path: e.describe() for e in ctx.core.mount_entries(is_auth=is_auth)}
        return Response(data=data)

    return handler


def _enabler(is_auth: bool) -> Handler:
    async def handler(ctx: SysContext, request: Request, args: MountArgs) -> None:
        core = ctx.core
        mount_type = args.type or args.plugin_name
        if not mount_type:
            raise InvalidRequest("type is required")
        options = dict(args.options)
        lockout = args.config.get(_LOCKOUT)
        if lockout is not None and not (is_auth and mount_type in _LOCKOUT_TYPES):
            raise InvalidRequest(f"{_LOCKOUT} is not supported by {mount_type!r} mounts")
        config = _config_from(args.config)
        if is_auth and "token_type" in args.config:
            config = replace(config, token_type=mount_token_type(args.config["token_type"]))
        entry = await core.enable(
            args.path,
            mount_type,
            is_auth=is_auth,
            description=args.description,
            config=config,
            options=options,
            local=args.local,
            seal_wrap=args.seal_wrap,
        )
        if lockout is not None:
            await _set_lockout(core, entry, lockout)

    return handler


def _reader(is_auth: bool) -> Handler:
    async def handler(ctx: SysContext, request: Request, args: PathArgs) -> Response:
        entry = ctx.core.find_mount(args.path, is_auth=is_auth)
        if entry is None:
            raise InvalidRequest(f"No {'auth' if is_auth else 'secret'} engine at {args.path}")
        return Response(data=entry.describe())

    return handler


def _disabler(is_auth: bool) -> Handler:
    async def handler(ctx: SysContext, request: Request, args: PathArgs) -> None:
        await ctx.core.disable(args.path, is_auth=is_auth)

    return handler


def _tune_reader(is_auth: bool) -> Handler:
    async def handler(ctx: SysContext, request: Request, args: PathArgs) -> Response:
        core = ctx.core
        entry = core.find_mount(args.path, is_auth=is_auth)
        if entry is None:
            raise InvalidRequest(f"cannot fetch sysview for path {args.path!r}")
        data = _tune_view(core, entry)
        lockout = await _lockout_view(core, entry)
        if lockout is not None:
            data[_LOCKOUT] = lockout
        return Response(data=data)

    return handler


def _tuner(is_auth: bool) -> Handler:
    async def handler(ctx: SysContext, request: Request, args: TuneArgs) -> None:
        core = ctx.core
        changes: dict[str, Any] = {}
        for name in ("default_lease_ttl", "max_lease_ttl"):
            raw = getattr(args, name)
            if raw == "system":
                changes[name] = 0
            elif raw not in ("", None):
                changes[name] = int(parse_duration(raw, name))
        if args.listing_visibility is not None:
            if args.listing_visibility not in ("", "unauth", "hidden"):
                raise InvalidRequest("listing_visibility must be '', 'unauth' or 'hidden'")
            changes["listing_visibility"] = args.listing_visibility
        if args.force_no_cache is not None:
            changes["force_no_cache"] = args.force_no_cache
        for name in _TUNABLE_LISTS:
            value = getattr(args, name)
            if value is not None:
                changes[name] = tuple(value)
        if args.token_type is not None:
            # checked before anything is written: a bad value changes nothing
            found = core.find_mount(args.path, is_auth=is_auth)
            if found is None:
                raise InvalidRequest(f"no mount at {args.path!r}")
            changes["token_type"] = mount_token_type(args.token_type, found)
        if args.user_lockout_config is not None:
            entry = core.find_mount(args.path, is_auth=is_auth)
            if entry is None:
                raise InvalidRequest(f"no mount at {args.path!r}")
            await _set_lockout(core, entry, args.user_lockout_config)
        await core.tune(
            args.path,
            is_auth=is_auth,
            config_changes=changes,
            description=args.description,
            options=args.options or None,
        )

    return handler


async def _remount(ctx: SysContext, request: Request, args: RemountArgs) -> Response:
    src = str(request.data.get("from", "")).strip()
    if not src or not args.to:
        raise InvalidRequest("both 'from' and 'to' are required")
    moved = await ctx.core.remount(src, args.to)
    # Vault moves a mount in the background and reports on it by migration ID; here the
    # move is done when this answers, so its status is already final
    migration_id = str(uuid.uuid4())
    source = src.strip("/") + "/"
    target = (f"auth/{moved.path}" if moved.is_auth else moved.path).rstrip("/") + "/"
    migrations = ctx.migrations
    migrations[migration_id] = {
        "source_mount": source,
        "target_mount": target,
        "status": "success",
    }
    while len(migrations) > MIGRATIONS_KEPT:
        del migrations[next(iter(migrations))]
    return Response(data={"migration_id": migration_id})


async def _remount_status(
    ctx: SysContext, request: Request, args: MigrationArgs
) -> Response | None:
    info = ctx.migrations.get(args.migration_id)
    if info is None:
        return None
    return Response(
        data={"migration_id": args.migration_id, "migration_info": dict(info)},
        data_only=True,
    )


async def _ui_mounts(ctx: SysContext, request: Request, args: NoArgs) -> Response:
    # Vault: without a token, the mounts tuned ``listing_visibility = "unauth"`` (type,
    # description and options only, for a login page); with one, every mount its ACL
    # reaches, in full. "hidden" and "" are the same: not listed to strangers.
    core = ctx.core
    out: dict[str, dict[str, Any]] = {"secret": {}, "auth": {}}
    acl = await caller_acl(core, request, in_last_use=True) if request.client_token else None
    for is_auth, bucket in ((False, "secret"), (True, "auth")):
        for entry in core.mount_entries(is_auth=is_auth):
            unauth = entry.config.listing_visibility == "unauth"
            if acl is None:
                if unauth:
                    out[bucket][entry.path] = {
                        "type": entry.type,
                        "description": entry.description,
                        "options": dict(entry.options) if entry.options else None,
                    }
            elif (
                unauth
                or acl.capabilities(entry.full_path + "*") != ["deny"]
                or _any_access(acl, entry.full_path)
            ):
                out[bucket][entry.path] = entry.describe()
    return Response(data=out, data_only=True)


async def _ui_mount(ctx: SysContext, request: Request, args: PathArgs) -> Response:
    core = ctx.core
    acl = await caller_acl(core, request, in_last_use=True)
    path = args.path
    found = core.router.match(path)
    if found is None:
        raise PermissionDenied()
    route = found[0]
    if route.entry.type in ("system",) or not _any_access(acl, route.entry.full_path):
        raise PermissionDenied()
    data = route.entry.describe()
    data["path"] = route.entry.full_path if route.entry.is_auth else route.entry.path
    return Response(data=data, data_only=True)


def _mount_table(prefix: str, is_auth: bool) -> list[Endpoint[SysContext]]:
    read, update, delete = Operation.READ, Operation.UPDATE, Operation.DELETE
    return [
        Endpoint(prefix, {read: _listing(is_auth)}, synopsis=f"List {prefix}"),
        Endpoint(
            prefix + r"/(?P<path>.+?)/tune/?",
            {read: _tune_reader(is_auth), update: _tuner(is_auth)},
            TuneArgs,
            synopsis="Tune a mount's configuration",
        ),
        Endpoint(
            prefix + r"/(?P<path>.+)",
            {read: _reader(is_auth), update: _enabler(is_auth), delete: _disabler(is_auth)},
            MountArgs,
            synopsis=f"Enable, read or disable a {'n auth method' if is_auth else ' mount'}",
        ),
    ]


TABLE: list[Endpoint[SysContext]] = [
    *_mount_table("mounts", False),
    *_mount_table("auth", True),
    Endpoint(r"remount", {Operation.UPDATE: _remount}, RemountArgs, synopsis="Move a mount"),
    Endpoint(
        r"remount/status/(?P<migration_id>[^/]+)",
        {Operation.READ: _remount_status},
        MigrationArgs,
        synopsis="The status of a mount move",
    ),
    Endpoint(
        r"internal/ui/mounts", {Operation.READ: _ui_mounts}, synopsis="Mounts visible to the caller"
    ),
    Endpoint(
        r"internal/ui/mounts/(?P<path>.+)",
        {Operation.READ: _ui_mount},
        PathArgs,
        synopsis="The mount owning a path, if the caller may use it",
    ),
]


def _any_access(acl: Any, path: str) -> bool:
    """Whether the ACL grants anything at or below ``path`` (for mount discovery)."""
    probe = path if path.endswith("/") else path + "/"
    if acl.capabilities(path) != ["deny"]:
        return True
    return bool(acl.has_access_under(probe))
