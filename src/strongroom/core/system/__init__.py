"""The sys/ backend: one module per path family, assembled here."""

from __future__ import annotations

from collections.abc import Sequence

from strongroom.core.system import (
    activity,
    audit,
    audit_verify,
    cors,
    header_config,
    introspection,
    keys,
    leases,
    locked_users,
    loggers,
    metrics,
    mfa,
    monitor,
    mounts,
    operations,
    password_policies,
    plugin_reload,
    plugins,
    policies,
    quotas,
    raw,
    server_info,
    snapshot,
    specs,
    tools,
    ui,
    wrapping,
)
from strongroom.core.system._context import SysContext, SystemCore
from strongroom.core.system.audit import UNAUTHENTICATED_PATHS as AUDIT_UNAUTHENTICATED
from strongroom.framework import Endpoint, FrameworkBackend
from strongroom.logical import BackendKind

__all__ = ["build_system_backend"]

# Vault's sudo-protected sys paths (those that exist here).
ROOT_PATHS = (
    "auth/*",
    "remount",
    "audit",
    "audit/*",
    "audit-verify/*",
    "audit-search/*",
    "raw",
    "raw/*",
    "rotate",
    "seal",
    "step-down",
    "config/*",
    "plugins/catalog/*",
    "leases/revoke-prefix/*",
    "leases/revoke-force/*",
    "leases/lookup/*",
    "revoke-prefix/*",
    "revoke-force/*",
    "locked-users/*",
    "leases",
    "loggers",
    "loggers/*",
    "monitor",
)

# Vault's unauthenticated sys paths (those that exist here). The ui/mounts handlers look up
# the caller's token themselves and show only mounts it can use.
UNAUTHENTICATED_PATHS = (
    "internal/ui/mounts",
    "internal/ui/mounts/*",
    "wrapping/lookup",
    "mfa/validate",
    *AUDIT_UNAUTHENTICATED,
    *server_info.UNAUTHENTICATED,
)


# the sys/ path tables, in matching order (the first pattern that matches wins)
_TABLES: tuple[Sequence[Endpoint[SysContext]], ...] = (
    operations.TABLE,
    mounts.TABLE,
    policies.TABLE,
    audit.TABLE,
    audit_verify.TABLE,
    leases.TABLE,
    wrapping.TABLE,
    locked_users.TABLE,
    metrics.TABLE,
    password_policies.TABLE,
    tools.TABLE,
    cors.TABLE,
    quotas.TABLE,
    introspection.TABLE,
    keys.TABLE,
    loggers.TABLE,
    plugins.TABLE,
    specs.TABLE,
    header_config.TABLE,
    ui.TABLE,
    monitor.TABLE,
    mfa.TABLE,
    snapshot.TABLE,
    plugin_reload.TABLE,
    server_info.TABLE,
    activity.TABLE,
)


def build_system_backend(core: SystemCore) -> FrameworkBackend:
    ctx = SysContext(core)
    settings = core.settings
    tables = [
        *((server_info.INSPECT_TABLE,) if settings.introspection_endpoint else ()),
        *_TABLES,
        *((raw.TABLE,) if settings.raw_storage_endpoint else ()),
    ]
    paths = [endpoint.bind(ctx) for table in tables for endpoint in table]
    return FrameworkBackend(
        kind=BackendKind.SECRET,
        paths=paths,
        help="System endpoints: mounts, policies, audit, seal and operator controls.",
        root_paths=ROOT_PATHS,
        unauthenticated_paths=UNAUTHENTICATED_PATHS,
    )
