"""Authenticated operator endpoints: sys/seal, sys/step-down, sys/rotate, sys/key-status."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import TYPE_CHECKING

from strongroom.framework import NoArgs, Path
from strongroom.logical import Operation, Request, Response

if TYPE_CHECKING:
    from strongroom.core.core import Core

__all__ = ["operation_paths"]

_stepping_down: set[asyncio.Task[None]] = set()  # keeps the background task referenced


def operation_paths(core: Core) -> list[Path]:
    async def seal(request: Request, args: NoArgs) -> None:
        await core.seal()
        if core.peer_relay is not None:  # worker processes: seal every sibling as well
            await core.peer_relay("PUT", "sys/seal", {}, request.client_token)

    async def step_down(request: Request, args: NoArgs) -> None:
        cluster = core.cluster
        if cluster is None:
            return None  # a single node: nothing to step down from
        # after this response (audited by the active): as Vault, the node gives up the
        # lock and another (or this one, once its hold has lapsed) takes over
        task = asyncio.get_running_loop().create_task(cluster.step_down())
        _stepping_down.add(task)
        task.add_done_callback(_stepping_down.discard)
        return None

    async def rotate(request: Request, args: NoArgs) -> None:
        await core.seal_manager.rotate()

    async def key_status(request: Request, args: NoArgs) -> Response:
        return Response(data=core.seal_manager.key_status().to_json())

    async def ha_status(request: Request, args: NoArgs) -> Response:
        """Vault's sys/ha-status: the active and the standbys it heard from (their echoes,
        core/cluster_registry.py); a standby asks the active. ``node_id`` is ours."""
        cluster = core.cluster
        if cluster is None:
            return Response(data={"nodes": []})
        whole = replace(request, path=request.mount_point + request.path)
        return Response(data={"nodes": await cluster.ha_status(whole)})

    update, read = Operation.UPDATE, Operation.READ
    return [
        Path(r"seal", {update: seal}, synopsis="Seal the server"),
        Path(r"step-down", {update: step_down}, synopsis="Give up active status"),
        Path(r"rotate", {update: rotate}, synopsis="Rotate the barrier encryption key"),
        Path(r"key-status", {read: key_status}, synopsis="The barrier key's term"),
        Path(r"ha-status", {read: ha_status}, synopsis="The HA cluster's nodes"),
    ]
