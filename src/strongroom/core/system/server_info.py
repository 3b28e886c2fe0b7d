"""Small read-only sys/ endpoints a UI or client asks about the server: sys/experiments,
sys/internal/ui/feature-flags (unauthenticated, as Vault), sys/internal/ui/version,
sys/well-known[/:label], sys/config/state/sanitized (the server configuration without
secrets, built by server/config.py), sys/internal/inspect/router/:tag (the mount table
by tag; only with the config's ``introspection_endpoint``, or in dev mode, as Vault),
sys/mounts-all (unauthenticated: the mounts tuned ``listing_visibility = "unauth"``) and
sys/activation-flags (no feature here is gated by a flag: both lists are empty, and
activating a feature is refused).

There are no experiments to enable and no feature flags; nothing registers a
``/.well-known/`` label (in Vault only Enterprise's EST does), so the listing is empty and a
label lookup answers 404.
"""

from __future__ import annotations

from dataclasses import dataclass

from strongroom.core.system._context import SysContext, SystemCore
from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import Endpoint, NoArgs
from strongroom.logical import Operation, Request, Response

__all__ = ["INSPECT_TABLE", "TABLE", "UNAUTHENTICATED"]

UNAUTHENTICATED = ("internal/ui/feature-flags", "mounts-all", "activation-flags")


@dataclass(frozen=True, slots=True)
class LabelArgs:
    label: str


@dataclass(frozen=True, slots=True)
class TagArgs:
    tag: str


@dataclass(frozen=True, slots=True)
class FeatureArgs:
    feature: str


def _router_entries(core: SystemCore, tag: str) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for is_auth in (False, True):
        for entry in core.mount_entries(is_auth=is_auth):
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


async def _experiments(ctx: SysContext, request: Request, args: NoArgs) -> Response:
    return Response(data={"available": [], "enabled": []})


async def _feature_flags(ctx: SysContext, request: Request, args: NoArgs) -> Response:
    # Vault lists the flags set in its environment (only a cloud one exists); with none its
    # answer is {"feature_flags": null} (its docs' sample spells the key "feature-flags")
    return Response(data={"feature_flags": None}, envelope=False)


async def _version(ctx: SysContext, request: Request, args: NoArgs) -> Response:
    return Response(data={"version": ctx.core.settings.version})


async def _well_known(ctx: SysContext, request: Request, args: NoArgs) -> Response | None:
    if request.operation is Operation.LIST:
        return None  # no labels: an empty listing is a 404, as every LIST
    return Response(data={"keys": [], "key_info": {}})


async def _well_known_label(ctx: SysContext, request: Request, args: LabelArgs) -> Response:
    raise NotFound(f"no mount registered for label {args.label[:80]!r}")


async def _sanitized(ctx: SysContext, request: Request, args: NoArgs) -> Response:
    return Response(data=dict(ctx.core.settings.sanitized_config))


async def _inspect_router(ctx: SysContext, request: Request, args: TagArgs) -> Response:
    return Response(data={args.tag: _router_entries(ctx.core, args.tag)})


async def _mounts_all(ctx: SysContext, request: Request, args: NoArgs) -> Response:
    out: dict[str, dict[str, dict[str, str]]] = {"auth": {}, "secret": {}}
    for is_auth, kind in ((True, "auth"), (False, "secret")):
        for entry in ctx.core.mount_entries(is_auth=is_auth):
            if entry.config.listing_visibility == "unauth":
                out[kind][entry.path] = {"description": entry.description, "type": entry.type}
    return Response(data=out)


async def _activation_flags(ctx: SysContext, request: Request, args: NoArgs) -> Response:
    return Response(data={"activated": [], "unactivated": []})


async def _activate(ctx: SysContext, request: Request, args: FeatureArgs) -> Response:
    raise InvalidRequest(f"unknown activation flag {args.feature[:80]!r}: none are gated here")


_op = Operation


TABLE: list[Endpoint[SysContext]] = [
    Endpoint(
        r"config/state/sanitized",
        {_op.READ: _sanitized},
        synopsis="The server configuration, without secrets",
    ),
    Endpoint(
        r"experiments", {_op.READ: _experiments}, synopsis="Available and enabled experiments"
    ),
    Endpoint(
        r"mounts-all",
        {_op.READ: _mounts_all},
        synopsis="Mounts listed to unauthenticated callers (listing_visibility unauth)",
    ),
    Endpoint(
        r"activation-flags",
        {_op.READ: _activation_flags},
        synopsis="Features gated by one-time activation flags (none here)",
    ),
    Endpoint(
        r"activation-flags/(?P<feature>[^/]+)/activate",
        {_op.UPDATE: _activate},
        FeatureArgs,
        synopsis="Activate a gated feature (there are none)",
    ),
    Endpoint(
        r"internal/ui/feature-flags",
        {_op.READ: _feature_flags},
        synopsis="Feature flags for the web UI (unauthenticated)",
    ),
    Endpoint(r"internal/ui/version", {_op.READ: _version}, synopsis="The server's version"),
    Endpoint(
        r"well-known/?",
        {_op.READ: _well_known, _op.LIST: _well_known},
        synopsis="Registered /.well-known/ labels",
    ),
    Endpoint(
        r"well-known/(?P<label>.+)",
        {_op.READ: _well_known_label},
        LabelArgs,
        synopsis="One registered /.well-known/ label",
    ),
]


# only with the config's introspection_endpoint (or in dev mode), as Vault
INSPECT_TABLE: list[Endpoint[SysContext]] = [
    Endpoint(
        r"internal/inspect/router/(?P<tag>root|uuid|accessor|storage)",
        {Operation.READ: _inspect_router},
        TagArgs,
        synopsis="The router's mount entries by tag",
    )
]
