"""sys/leases/* (and the legacy sys/renew, sys/revoke, sys/revoke-prefix, sys/revoke-force)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from strongroom.errors import InvalidRequest
from strongroom.framework import BackgroundJob, Duration, NoArgs, Path
from strongroom.logical import Operation, Request, Response, Secret

if TYPE_CHECKING:
    from strongroom.core.core import Core

__all__ = ["lease_paths"]


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


def lease_paths(core: Core) -> list[Path]:
    tidy_job = BackgroundJob("sys/leases/tidy")

    def lease_id_of(args: LeaseArgs) -> str:
        lease_id = (args.lease_id or args.url_lease_id).strip()
        if not lease_id:
            raise InvalidRequest("lease_id must be specified")
        return lease_id

    async def lookup(request: Request, args: LeaseArgs) -> Response:
        lease_id = lease_id_of(args)
        entry = await core.leases.get(lease_id)
        if entry is not None:
            return Response(data=entry.describe(core.clock.now()), data_only=True)
        token = await core.token_leases.entry(lease_id)
        if token is None:
            raise InvalidRequest("invalid lease")
        return Response(data=core.token_leases.describe(lease_id, token), data_only=True)

    async def list_prefix(request: Request, args: PrefixArgs) -> Response | None:
        secrets = await core.leases.list_prefix(args.prefix)
        tokens = await core.token_leases.list_prefix(args.prefix)
        keys = sorted(set(secrets) | set(tokens))
        return Response(data={"keys": keys}, data_only=True) if keys else None

    async def renew(request: Request, args: LeaseArgs) -> Response:
        lease_id = lease_id_of(args)
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

    async def revoke(request: Request, args: LeaseArgs) -> None:
        lease_id = lease_id_of(args)
        if not await core.token_leases.revoke(lease_id):  # a token lease: its whole tree
            await core.leases.revoke(lease_id)

    async def revoke_prefix(request: Request, args: PrefixArgs) -> None:
        await core.revoke_prefix(args.prefix)

    async def revoke_force(request: Request, args: PrefixArgs) -> None:
        await core.revoke_prefix(args.prefix, force=True)

    async def tidy(request: Request, args: NoArgs) -> Response:
        # Vault runs it in the background and answers 202 with a warning
        async def work() -> str:
            revoked = await core.leases.expire_due() + await core.tokens.sweep()
            return f"revoked {revoked} expired leases"

        return tidy_job.start(work)

    async def count(request: Request, args: CountArgs) -> Response:
        total = await core.leases.count() + await core.token_leases.count()
        return Response(data={"lease_count": total, "counts": {"": total}}, data_only=True)

    read, update, lst = Operation.READ, Operation.UPDATE, Operation.LIST
    prefix = r"(?P<prefix>.*)"
    paths: list[Path] = []
    for base in ("leases/", ""):
        paths += [
            Path(
                base + r"renew(?:/(?P<url_lease_id>.+))?",
                {update: renew},
                LeaseArgs,
                synopsis="Renew a lease",
            ),
            Path(
                base + r"revoke(?:/(?P<url_lease_id>.+))?",
                {update: revoke},
                LeaseArgs,
                synopsis="Revoke a lease",
            ),
            Path(
                base + r"revoke-prefix/" + prefix,
                {update: revoke_prefix},
                PrefixArgs,
                synopsis="Revoke every lease under a prefix",
            ),
            Path(
                base + r"revoke-force/" + prefix,
                {update: revoke_force},
                PrefixArgs,
                synopsis="Delete leases under a prefix without revoking at the backend",
            ),
        ]
    paths += [
        Path(r"leases/lookup/" + prefix, {lst: list_prefix}, PrefixArgs, synopsis="List leases"),
        Path(r"leases/lookup", {update: lookup}, LeaseArgs, synopsis="Look up a lease"),
        Path(r"leases/tidy", {update: tidy}, synopsis="Revoke expired leases now"),
        Path(r"leases/count", {read: count}, CountArgs, synopsis="Count leases"),
    ]
    return paths
