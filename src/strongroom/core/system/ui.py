"""The sys/internal/ui/* endpoints a web UI asks besides ui/mounts (core/system/mounts.py):
resultant-acl (what the caller's token may do) and namespaces (none here)."""

from __future__ import annotations

from typing import Any

from strongroom.core.system._context import SysContext, caller_acl
from strongroom.framework import Endpoint, NoArgs
from strongroom.logical import Operation, Request, Response

__all__ = ["TABLE"]


async def _resultant_acl(ctx: SysContext, request: Request, args: NoArgs) -> Response:
    acl = await caller_acl(ctx.core, request)
    if acl.is_root:
        return Response(data={"root": True})
    exact: dict[str, Any] = {}
    globs: dict[str, Any] = {}
    for rule in acl.rules:
        block: dict[str, Any] = {"capabilities": sorted(rule.capabilities)}
        if rule.allowed_parameters:
            block["allowed_parameters"] = {k: list(v) for k, v in rule.allowed_parameters.items()}
        if rule.denied_parameters:
            block["denied_parameters"] = {k: list(v) for k, v in rule.denied_parameters.items()}
        if rule.path.endswith("*"):
            globs[rule.path[:-1]] = block
        else:
            exact[rule.path] = block
    return Response(data={"exact_paths": exact, "glob_paths": globs, "root": False})


async def _namespaces(ctx: SysContext, request: Request, args: NoArgs) -> Response:
    return Response(data={})  # no namespaces on this server


_read = Operation.READ


TABLE: list[Endpoint[SysContext]] = [
    Endpoint(
        r"internal/ui/resultant-acl",
        {_read: _resultant_acl},
        synopsis="The caller's resulting ACL, for a UI",
    ),
    Endpoint(r"internal/ui/namespaces", {_read: _namespaces}, synopsis="Namespaces (none)"),
]
