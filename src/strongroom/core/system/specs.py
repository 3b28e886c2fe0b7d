"""sys/internal/specs/openapi: the OpenAPI document of every mounted backend's path table
(core/openapi.py), limited to the paths the caller's token may use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strongroom import __version__
from strongroom.core.openapi import MountSpec, build_document
from strongroom.core.system._context import SysContext, SystemCore, caller_acl
from strongroom.core.system.seal import SEAL_SPECS
from strongroom.framework import Endpoint
from strongroom.logical import Operation, Request, Response

__all__ = ["TABLE"]


@dataclass(frozen=True, slots=True)
class SpecArgs:
    generic_mount_paths: bool = False


def mount_specs(core: SystemCore) -> list[MountSpec]:
    specs = []
    for route in core.router.routes():
        paths = getattr(route.backend, "paths", None)
        if paths is None:
            continue
        specs.append(
            MountSpec(
                mount_point=route.mount_point,
                mount_type=route.entry.type,
                paths=tuple(paths),
                unauthenticated=tuple(route.backend.unauthenticated_paths),
                root_paths=tuple(route.backend.root_paths),
                extra=SEAL_SPECS if route.mount_point == "sys/" else (),
            )
        )
    return specs


async def _openapi(ctx: SysContext, request: Request, args: SpecArgs) -> Response:
    core = ctx.core
    acl = await caller_acl(core, request)

    def visible(path: str) -> bool:
        return acl.capabilities(path) != ["deny"]

    document: dict[str, Any] = build_document(mount_specs(core), __version__, visible)
    return Response(data=document, envelope=False)


TABLE: list[Endpoint[SysContext]] = [
    Endpoint(
        r"internal/specs/openapi",
        {Operation.READ: _openapi},
        SpecArgs,
        synopsis="The OpenAPI document of this server's API",
        description="Generated from every mounted backend's path table; a token sees "
        "the paths its policies allow something on.",
    )
]
