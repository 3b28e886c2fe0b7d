"""sys/leases/* (and the legacy sys/renew, sys/revoke, sys/revoke-prefix, sys/revoke-force)."""

from __future__ import annotations

from dataclasses import dataclass

from strongroom.core.system._context import SysContext
from strongroom.errors import InvalidRequest
from strongroom.framework import Duration, Endpoint, NoArgs
from strongroom.logical import Operation, Request, Response, Secret

__all__ = ["TABLE"]


@dataclass(frozen=True, slots=True)
class LeaseArgs:
    lease_id: str = ""
    url_lease_id: str = ""
    increment: Duration = Duration(0)
    sync: bool = True


@dataclass(frozen=True, slots=True)
class PrefixArgs:
    prefix: str = ""
    sync: bool = True


@dataclass(frozen=True, slots=True)
class CountArgs:
    type: str = ""
    include_child_namespaces: bool = False


def _lease_id_of(args: LeaseArgs) -> str:
    lease_id = (args.lease_id or args.url_lease_id).strip()
    if not lease_id:
        raise InvalidRequest("lease_id must be specified")
    return lease_id


async def _lookup(ctx: SysContext, request: Request, args: LeaseArgs) -> Response:
    core = ctx.core
    lease_id = _lease_id_of(args)
    entry = await core.leases.get(lease_id)
    if entry is not None:
        return Response(data=entry.describe(core.clock.now()), data_only=True)
    token = await core.token_leases.entry(lease_id)
    if token is None:
        raise InvalidRequest("invalid lease")
    return Response(data=core.token_leases.describe(lease_id, token), data_only=True)


async def _list_prefix(ctx: SysContext, request: Request, args: PrefixArgs) -> Response | None:
    secrets = await ctx.core.leases.list_prefix(args.prefix)
    tokens = await ctx.core.token_leases.list_prefix(args.prefix)
    keys = sorted(set(secrets) | set(tokens))
    return Response(data={"keys": keys}, data_only=True) if keys else None


async def _renew(ctx: SysContext, request: Request, args: LeaseArgs) -> Response:
    core = ctx.core
    lease_id = _lease_id_of(args)
    if await core.leases.get(lease_id) is None and await core.token_leases.entry(lease_id):
        # as Vault: token leases renew through auth/token/renew*
        raise InvalidRequest("tokens cannot be renewed through this endpoint")
    entry, warnings = await core.leases.renew(lease_id, int(args.increment))
    ttl = max(0, round(entry.expire_time - core.clock.now()))
    response = Response(
        secret=Secret(type=entry.secret_type, ttl=ttl, renewable=entry.renewable),
        warnings=warnings,
    )
    response.lease_id = lease_id
    return response


async def _revoke(ctx: SysContext, request: Request, args: LeaseArgs) -> None:
    lease_id = _lease_id_of(args)
    if not await ctx.core.token_leases.revoke(lease_id):  # a token lease: its whole tree
        await ctx.core.leases.revoke(lease_id)


async def _revoke_prefix(ctx: SysContext, request: Request, args: PrefixArgs) -> None:
    await ctx.core.revoke_prefix(args.prefix)


async def _revoke_force(ctx: SysContext, request: Request, args: PrefixArgs) -> None:
    await ctx.core.revoke_prefix(args.prefix, force=True)


async def _tidy(ctx: SysContext, request: Request, args: NoArgs) -> Response:
    # Vault runs it in the background and answers 202 with a warning
    async def work() -> str:
        revoked = await ctx.core.leases.expire_due() + await ctx.core.tokens.sweep()
        return f"revoked {revoked} expired leases"

    return ctx.lease_tidy.start(work)


async def _count(ctx: SysContext, request: Request, args: CountArgs) -> Response:
    total = await ctx.core.leases.count() + await ctx.core.token_leases.count()
    return Response(data={"lease_count": total, "counts": {"": total}}, data_only=True)


def _lease_table(base: str) -> list[Endpoint[SysContext]]:
    update = Operation.UPDATE
    return [
        Endpoint(
            base + r"renew(?:/(?P<url_lease_id>.+))?",
            {update: _renew},
            LeaseArgs,
            synopsis="Renew a lease",
        ),
        Endpoint(
            base + r"revoke(?:/(?P<url_lease_id>.+))?",
            {update: _revoke},
            LeaseArgs,
            synopsis="Revoke a lease",
        ),
        Endpoint(
            base + r"revoke-prefix/" + _PREFIX,
            {update: _revoke_prefix},
            PrefixArgs,
            synopsis="Revoke every lease under a prefix",
        ),
        Endpoint(
            base + r"revoke-force/" + _PREFIX,
            {update: _revoke_force},
            PrefixArgs,
            synopsis="Delete leases under a prefix without revoking at the backend",
        ),
    ]


_PREFIX = r"(?P<prefix>.*)"

TABLE: list[Endpoint[SysContext]] = [
    *_lease_table("leases/"),
    *_lease_table(""),
    Endpoint(
        r"leases/lookup/" + _PREFIX,
        {Operation.LIST: _list_prefix},
        PrefixArgs,
        synopsis="List leases",
    ),
    Endpoint(r"leases/lookup", {Operation.UPDATE: _lookup}, LeaseArgs, synopsis="Look up a lease"),
    Endpoint(r"leases/tidy", {Operation.UPDATE: _tidy}, synopsis="Revoke expired leases now"),
    Endpoint(r"leases/count", {Operation.READ: _count}, CountArgs, synopsis="Count leases"),
]
