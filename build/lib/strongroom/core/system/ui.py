"""The sys/internal/ui/* endpoints a web UI asks besides ui/mounts (core/system/mounts.py):
resultant-acl (what the caller's token may do) and namespaces (none here)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from strongroom.errors import PermissionDenied
from strongroom.framework import NoArgs, Path
from strongroom.logical import Operation, Request, Response

if TYPE_CHECKING:
    from strongroom.core.core import Core

__all__ = ["ui_paths"]


def ui_paths(core: Core) -> list[Path]:
    async def resultant_acl(request: Request, args: NoArgs) -> Response:
        entry = await core.tokens.lookup(request.client_token) if request.client_token else None
        if entry is None:
            raise PermissionDenied()
        acl = await core.acl_for(entry)
        if acl.is_root:
            return Response(data={"root": True})
        exact: dict[str, Any] = {}
        globs: dict[str, Any] = {}
        for rule in acl.rules:
            block: dict[str, Any] = {"capabilities": sorted(rule.capabilities)}
            if rule.allowed_parameters:
                block["allowed_parameters"] = {
                    k: list(v) for k, v in rule.allowed_parameters.items()
                }
            if rule.denied_parameters:
                block["denied_parameters"] = {k: list(v) for k, v in rule.denied_parameters.items()}
            if rule.path.endswith("*"):
                globs[rule.path[:-1]] = block
            else:
                exact[rule.path] = block
        return Response(data={"exact_paths": exact, "glob_paths": globs, "root": False})

    async def namespaces(request: Request, args: NoArgs) -> Response:
        return Response(data={})  # no namespaces on this server

    read = Operation.READ
    return [
        Path(
            r"internal/ui/resultant-acl",
            {read: resultant_acl},
            synopsis="The caller's resulting ACL, for a UI",
        ),
        Path(r"internal/ui/namespaces", {read: namespaces}, synopsis="Namespaces (none)"),
    ]
