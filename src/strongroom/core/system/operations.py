"""Authenticated operator endpoints: sys/seal, sys/step-down, sys/rotate, sys/key-status."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from strongroom.core.system._context import SysContext
from strongroom.framework import Endpoint, NoArgs
from strongroom.logical import Operation, Request, Response

__all__ = ["TABLE"]

_stepping_down: set[asyncio.Task[None]] = set()  # keeps the background task referenced


async def _seal(ctx: SysContext, request: Request, args: NoArgs) -> None:
    core = ctx.core
    await core.seal()
    if core.peer_relay is not None:  # worker processes: seal every sibling as well
        await core.peer_relay("PUT", "sys/seal", {}, request.client_token)


async def _step_down(ctx: SysContext, request: Request, args: NoArgs) -> None:
    cluster = ctx.core.cluster
    if cluster is None:
        return None  # a single node: nothing to step down from
    # after this response (audited by the active): as Vault, the node gives up the
    # lock and another (or this one, once its hold has lapsed) takes over
    task = asyncio.get_running_loop().create_task(cluster.step_down())
    _stepping_down.add(task)
    task.add_done_callback(_stepping_down.discard)
    return None


async def _rotate(ctx: SysContext, request: Request, args: NoArgs) -> None:
    await ctx.core.seal_manager.rotate()


async def _key_status(ctx: SysContext, request: Request, args: NoArgs) -> Response:
    return Response(data=ctx.core.seal_manager.key_status().to_json())


async def _ha_status(ctx: SysContext, request: Request, args: NoArgs) -> Response:
    """Vault's sys/ha-status: the active and the standbys it heard from (their echoes,
    core/cluster_registry.py); a standby asks the active. ``node_id`` is ours."""
    cluster = ctx.core.cluster
    if cluster is None:
        return Response(data={"nodes": []})
    whole = replace(request, path=request.mount_point + request.path)
    return Response(data={"nodes": await cluster.ha_status(whole)})


_update, _read = Operation.UPDATE, Operation.READ


TABLE: list[Endpoint[SysContext]] = [
    Endpoint(r"seal", {_update: _seal}, synopsis="Seal the server"),
    Endpoint(r"step-down", {_update: _step_down}, synopsis="Give up active status"),
    Endpoint(r"rotate", {_update: _rotate}, synopsis="Rotate the barrier encryption key"),
    Endpoint(r"key-status", {_read: _key_status}, synopsis="The barrier key's term"),
    Endpoint(r"ha-status", {_read: _ha_status}, synopsis="The HA cluster's nodes"),
]
