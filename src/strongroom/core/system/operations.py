"""Authenticated operator endpoints: sys/seal, sys/step-down, sys/rotate, sys/key-status."""

from __future__ import annotations

import asyncio
from typing import Any

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
    """Vault's sys/ha-status: the nodes this node knows of (the active, and itself:
    nodes do not register with each other here). ``node_id`` is ours, not Vault's."""
    cluster = ctx.core.cluster
    if cluster is None:
        return Response(data={"nodes": []})
    leader = await cluster.leader()
    nodes: list[dict[str, Any]] = []
    if leader is not None:
        nodes.append(_node(leader.node_id, leader.api_addr, leader.cluster_addr, True))
    if leader is None or leader.node_id != cluster.node_id:
        settings = cluster.settings
        nodes.append(
            _node(settings.node_id, settings.api_addr, settings.cluster_addr, cluster.active)
        )
    for node in nodes:
        node["version"] = ctx.core.settings.version
    return Response(data={"nodes": nodes})


def _node(node_id: str, api_addr: str, cluster_addr: str, active: bool) -> dict[str, Any]:
    return {
        "hostname": node_id.rsplit("-", 2)[0],
        "node_id": node_id,
        "api_address": api_addr,
        "cluster_address": cluster_addr,
        "active_node": active,
        "last_echo": None,
        "redundancy_zone": "",
        "upgrade_version": "",
    }


TABLE: list[Endpoint[SysContext]] = [
    Endpoint(r"seal", {Operation.UPDATE: _seal}, synopsis="Seal the server"),
    Endpoint(r"step-down", {Operation.UPDATE: _step_down}, synopsis="Give up active status"),
    Endpoint(r"rotate", {Operation.UPDATE: _rotate}, synopsis="Rotate the barrier encryption key"),
    Endpoint(r"key-status", {Operation.READ: _key_status}, synopsis="The barrier key's term"),
    Endpoint(r"ha-status", {Operation.READ: _ha_status}, synopsis="The HA cluster's nodes"),
]
