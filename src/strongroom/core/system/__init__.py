"""The sys/ backend: one module per path family, assembled here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strongroom.core.system.activity import activity_paths
from strongroom.core.system.audit import UNAUTHENTICATED_PATHS as AUDIT_UNAUTHENTICATED
from strongroom.core.system.audit import audit_paths
from strongroom.core.system.audit_verify import audit_verify_paths
from strongroom.core.system.cors import cors_paths
from strongroom.core.system.header_config import header_config_paths
from strongroom.core.system.introspection import introspection_paths
from strongroom.core.system.keys import key_paths
from strongroom.core.system.leases import lease_paths
from strongroom.core.system.locked_users import locked_user_paths
from strongroom.core.system.loggers import logger_paths
from strongroom.core.system.metrics import metric_paths
from strongroom.core.system.mfa import mfa_paths
from strongroom.core.system.monitor import monitor_paths
from strongroom.core.system.mounts import mount_paths
from strongroom.core.system.operations import operation_paths
from strongroom.core.system.password_policies import password_policy_paths
from strongroom.core.system.plugin_reload import plugin_reload_paths
from strongroom.core.system.plugins import plugin_paths
from strongroom.core.system.policies import policy_paths
from strongroom.core.system.quotas import quota_paths
from strongroom.core.system.raw import raw_paths
from strongroom.core.system.server_info import UNAUTHENTICATED as INFO_UNAUTHENTICATED
from strongroom.core.system.server_info import server_info_paths
from strongroom.core.system.snapshot import snapshot_paths
from strongroom.core.system.specs import spec_paths
from strongroom.core.system.tools import tool_paths
from strongroom.core.system.ui import ui_paths
from strongroom.core.system.wrapping import wrapping_paths
from strongroom.framework import FrameworkBackend
from strongroom.logical import BackendKind

if TYPE_CHECKING:
    from strongroom.core.core import Core

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
    *INFO_UNAUTHENTICATED,
)


def build_system_backend(core: Core) -> FrameworkBackend:
    paths = [
        *operation_paths(core),
        *mount_paths(core),
        *policy_paths(core),
        *audit_paths(core),
        *audit_verify_paths(core),
        *lease_paths(core),
        *wrapping_paths(core),
        *locked_user_paths(core),
        *metric_paths(core),
        *password_policy_paths(core),
        *tool_paths(core),
        *cors_paths(core),
        *quota_paths(core),
        *introspection_paths(core),
        *key_paths(core),
        *logger_paths(core),
        *plugin_paths(core),
        *spec_paths(core),
        *header_config_paths(core),
        *ui_paths(core),
        *monitor_paths(core),
        *mfa_paths(core),
        *snapshot_paths(core),
        *plugin_reload_paths(core),
        *server_info_paths(core),
        *activity_paths(core),
        *(raw_paths(core) if core.settings.raw_storage_endpoint else []),
    ]
    return FrameworkBackend(
        kind=BackendKind.SECRET,
        paths=paths,
        help="System endpoints: mounts, policies, audit, seal and operator controls.",
        root_paths=ROOT_PATHS,
        unauthenticated_paths=UNAUTHENTICATED_PATHS,
    )
