"""sys/quotas/config, sys/quotas/rate-limit/:name and sys/quotas/lease-count/:name."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from strongroom.barrier import View
from strongroom.core.quotas import (
    LeaseCountQuota,
    QuotaConfig,
    QuotaManager,
    RateLimitQuota,
    decode_config,
    decode_lease_count,
    decode_rate_limit,
    encode_quota,
)
from strongroom.core.system._context import SysContext
from strongroom.errors import InvalidRequest
from strongroom.framework import Duration, Endpoint, NoArgs
from strongroom.logical import Operation, Request, Response, Storage

__all__ = ["TABLE", "load_quotas"]

Handler = Callable[[SysContext, Request, Any], Awaitable[Response | None]]
ExistenceCheck = Callable[[SysContext, Request, Any], Awaitable[bool]]

_PREFIX = "sys/quotas/"
_CONFIG_KEY = "config"
_KINDS = ("rate-limit", "lease-count")


def _view(storage: Storage) -> View:
    return View(storage, _PREFIX)


async def load_quotas(storage: Storage, manager: QuotaManager) -> None:
    view = _view(storage)
    rates = [
        decode_rate_limit(raw)
        for name in await view.list("rate-limit/")
        if (raw := await view.get("rate-limit/" + name)) is not None
    ]
    leases = [
        decode_lease_count(raw)
        for name in await view.list("lease-count/")
        if (raw := await view.get("lease-count/" + name)) is not None
    ]
    manager.load(decode_config(await view.get(_CONFIG_KEY)), rates, leases)


@dataclass(frozen=True, slots=True)
class ConfigArgs:
    rate_limit_exempt_paths: list[str] | None = None
    enable_rate_limit_audit_logging: bool | None = None
    enable_rate_limit_response_headers: bool | None = None


@dataclass(frozen=True, slots=True)
class QuotaArgs:
    name: str
    path: str | None = None
    role: str | None = None
    rate: float | None = None
    interval: Duration | None = None
    block_interval: Duration | None = None
    group_by: str | None = None
    max_leases: int | None = None
    type: str | None = None


def _check_scope(ctx: SysContext, path: str, role: str) -> str:
    """A quota's path must name an existing mount (or be empty: global)."""
    path = path.strip().lstrip("/")
    if not path:
        if role:
            raise InvalidRequest("role can only be set with a path to an auth mount")
        return ""
    found = ctx.core.router.match(path if path.endswith("/") else path + "/")
    if found is None:
        found = ctx.core.router.match(path)
    if found is None:
        raise InvalidRequest(f'invalid mount path "{path}"')
    route = found[0]
    if role and not route.mount_point.startswith("auth/"):
        raise InvalidRequest("role can only be set with a path to an auth mount")
    if role and path.rstrip("/") != route.mount_point.rstrip("/"):
        raise InvalidRequest("role quotas apply to a whole auth mount: give its path")
    return path


async def _read_config(ctx: SysContext, request: Request, args: ConfigArgs) -> Response:
    return Response(data=ctx.core.quotas.config.to_json())


async def _write_config(ctx: SysContext, request: Request, args: ConfigArgs) -> None:
    async with ctx.quota_locks.hold(_CONFIG_KEY):
        current = ctx.core.quotas.config
        config = QuotaConfig(
            rate_limit_exempt_paths=(
                current.rate_limit_exempt_paths
                if args.rate_limit_exempt_paths is None
                else tuple(p.lstrip("/") for p in args.rate_limit_exempt_paths)
            ),
            enable_rate_limit_audit_logging=(
                current.enable_rate_limit_audit_logging
                if args.enable_rate_limit_audit_logging is None
                else args.enable_rate_limit_audit_logging
            ),
            enable_rate_limit_response_headers=(
                current.enable_rate_limit_response_headers
                if args.enable_rate_limit_response_headers is None
                else args.enable_rate_limit_response_headers
            ),
        )
        await _view(ctx.core.barrier).put(_CONFIG_KEY, orjson.dumps(config.to_json()))
        ctx.core.quotas.set_config(config)


def _table_of(ctx: SysContext, kind: str) -> dict[str, RateLimitQuota] | dict[str, LeaseCountQuota]:
    return ctx.core.quotas.rate_limits if kind == "rate-limit" else ctx.core.quotas.lease_counts


def _handlers(kind: str) -> tuple[dict[Operation, Handler], ExistenceCheck]:
    async def read(ctx: SysContext, request: Request, args: QuotaArgs) -> Response | None:
        quota = _table_of(ctx, kind).get(args.name)
        return None if quota is None else Response(data=quota.to_json())

    async def write(ctx: SysContext, request: Request, args: QuotaArgs) -> None:
        core = ctx.core
        name = args.name.strip()
        if not name:
            raise InvalidRequest("missing quota name")
        async with ctx.quota_locks.hold(kind + "/" + name):
            if kind == "rate-limit":
                old = core.quotas.rate_limits.get(name)
                rate = args.rate if args.rate is not None else (old.rate if old else 0.0)
                if not math.isfinite(rate) or rate <= 0:
                    raise InvalidRequest("'rate' is invalid")
                interval = (
                    int(args.interval)
                    if args.interval is not None
                    else (old.interval if old else 1)
                )
                if interval < 1:
                    raise InvalidRequest("'interval' must be at least one second")
                group_by = args.group_by or (old.group_by if old else "ip")
                if group_by not in ("ip", "entity"):
                    raise InvalidRequest("'group_by' must be 'ip' or 'entity'")
                role = args.role if args.role is not None else (old.role if old else "")
                path = args.path if args.path is not None else (old.path if old else "")
                quota: RateLimitQuota | LeaseCountQuota = RateLimitQuota(
                    name=name,
                    rate=rate,
                    interval=interval,
                    block_interval=int(args.block_interval)
                    if args.block_interval is not None
                    else (old.block_interval if old else 0),
                    path=_check_scope(ctx, path, role),
                    role=role,
                    group_by=group_by,
                )
            else:
                prior = core.quotas.lease_counts.get(name)
                max_leases = (
                    args.max_leases
                    if args.max_leases is not None
                    else (prior.max_leases if prior else 0)
                )
                if max_leases <= 0:
                    raise InvalidRequest("'max_leases' must be a positive number")
                role = args.role if args.role is not None else (prior.role if prior else "")
                path = args.path if args.path is not None else (prior.path if prior else "")
                quota = LeaseCountQuota(
                    name=name, max_leases=max_leases, path=_check_scope(ctx, path, role), role=role
                )
            await _view(core.barrier).put(f"{kind}/{name}", encode_quota(quota))
            if isinstance(quota, RateLimitQuota):
                core.quotas.put_rate_limit(quota)
            else:
                core.quotas.put_lease_count(quota)

    async def delete(ctx: SysContext, request: Request, args: QuotaArgs) -> None:
        async with ctx.quota_locks.hold(kind + "/" + args.name):
            await _view(ctx.core.barrier).delete(f"{kind}/{args.name}")
            ctx.core.quotas.delete(kind, args.name)

    async def exists(ctx: SysContext, request: Request, args: QuotaArgs) -> bool:
        return args.name in _table_of(ctx, kind)

    ops: dict[Operation, Handler] = {
        Operation.READ: read,
        Operation.CREATE: write,
        Operation.UPDATE: write,
        Operation.DELETE: delete,
    }
    return ops, exists


def _listing(kind: str) -> Handler:
    async def list_quotas(ctx: SysContext, request: Request, args: NoArgs) -> Response:
        return Response(data={"keys": sorted(_table_of(ctx, kind))})

    return list_quotas


def _quota_table(kind: str) -> list[Endpoint[SysContext]]:
    ops, exists = _handlers(kind)
    return [
        Endpoint(
            rf"quotas/{kind}/?",
            {Operation.LIST: _listing(kind)},
            synopsis=f"List {kind} quotas",
        ),
        Endpoint(
            rf"quotas/{kind}/(?P<name>[^/]+)",
            ops,
            QuotaArgs,
            existence_check=exists,
            synopsis=f"Read, write or delete a {kind} quota",
            description="path: '' (global), a mount, or a path below a mount; role: "
            "one role of an auth mount (its logins only).",
        ),
    ]


TABLE: list[Endpoint[SysContext]] = [
    Endpoint(
        r"quotas/config",
        {Operation.READ: _read_config, Operation.UPDATE: _write_config},
        ConfigArgs,
        synopsis="Quota settings: exempt paths, response headers",
    ),
    *(endpoint for kind in _KINDS for endpoint in _quota_table(kind)),
]
