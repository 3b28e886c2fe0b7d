"""Small read-only sys/ endpoints a UI or client asks about the server: sys/experiments,
sys/internal/ui/feature-flags (unauthenticated, as Vault), sys/internal/ui/version,
sys/well-known[/:label], sys/config/state/sanitized (the server configuration without
secrets, built by server/config.py) and sys/internal/inspect/router/:tag (the mount table
by tag; only with the config's ``introspection_endpoint``, or in dev mode, as Vault).

There are no experiments to enable and no feature flags; nothing registers a
``/.well-known/`` label (in Vault only Enterprise's EST does), so the listing is empty and a
label lookup answers 404.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from strongroom.errors import NotFound
from strongroom.framework import NoArgs, Path
from strongroom.logical import Operation, Request, Response

if TYPE_CHECKING:
    from strongroom.core.core import Core

__all__ = ["UNAUTHENTICATED", "server_info_paths"]

UNAUTHENTICATED = ("internal/ui/feature-flags",)


@dataclass(frozen=True, slots=True)
class LabelArgs:
    label: str


@dataclass(frozen=True, slots=True)
class TagArgs:
    tag: str


def _router_entries(core: Core, tag: str) -> list[dict[str, object]]:
    state = core.state
    out: list[dict[str, object]] = []
    for table in (state.mounts, state.auth_mounts):
        for entry in table.entries.values():
            item: dict[str, object] = {
                "accessor": entry.accessor,
                "mount_namespace": "",
                "mount_path": entry.path,
                "mount_type": entry.type,
                "uuid": entry.uuid,
            }
            if tag in ("root", "storage"):
                item["storage_prefix"] = entry.storage_prefix
                item["tainted"] = False
            out.append(item)
    key = {"root": "mount_path", "uuid": "uuid", "accessor": "accessor"}.get(tag, "storage_prefix")
    return sorted(out, key=lambda item: str(item[key]))


def server_info_paths(core: Core) -> list[Path]:
    async def experiments(request: Request, args: NoArgs) -> Response:
        return Response(data={"available": [], "enabled": []})

    async def feature_flags(request: Request, args: NoArgs) -> Response:
        return Response(data={"feature_flags": []}, envelope=False)

    async def version(request: Request, args: NoArgs) -> Response:
        return Response(data={"version": core.settings.version})

    async def well_known(request: Request, args: NoArgs) -> Response | None:
        if request.operation is Operation.LIST:
            return None  # no labels: an empty listing is a 404, as every LIST
        return Response(data={"keys": [], "key_info": {}})

    async def well_known_label(request: Request, args: LabelArgs) -> Response:
        raise NotFound(f"no mount registered for label {args.label[:80]!r}")

    async def sanitized(request: Request, args: NoArgs) -> Response:
        return Response(data=dict(core.settings.sanitized_config))

    async def inspect_router(request: Request, args: TagArgs) -> Response:
        return Response(data={args.tag: _router_entries(core, args.tag)})

    op = Operation
    inspect = (
        [
            Path(
                r"internal/inspect/router/(?P<tag>root|uuid|accessor|storage)",
                {op.READ: inspect_router},
                TagArgs,
                synopsis="The router's mount entries by tag",
            )
        ]
        if core.settings.introspection_endpoint
        else []
    )
    return [
        *inspect,
        Path(
            r"config/state/sanitized",
            {op.READ: sanitized},
            synopsis="The server configuration, without secrets",
        ),
        Path(r"experiments", {op.READ: experiments}, synopsis="Available and enabled experiments"),
        Path(
            r"internal/ui/feature-flags",
            {op.READ: feature_flags},
            synopsis="Feature flags for the web UI (unauthenticated)",
        ),
        Path(r"internal/ui/version", {op.READ: version}, synopsis="The server's version"),
        Path(
            r"well-known/?",
            {op.READ: well_known, op.LIST: well_known},
            synopsis="Registered /.well-known/ labels",
        ),
        Path(
            r"well-known/(?P<label>.+)",
            {op.READ: well_known_label},
            LabelArgs,
            synopsis="One registered /.well-known/ label",
        ),
    ]
