"""What the sys/ path tables are bound to: the part of the core they may use.

The modules of this package declare their path tables at module level
(:class:`strongroom.framework.Endpoint`); every handler takes a :class:`SysContext` first.
The context holds the core as :class:`SystemCore`, a Protocol that ``Core`` satisfies
structurally, so sys/ never imports ``strongroom.core.core`` (import-linter enforces it:
core imports sys/, not the other way round), plus the little state a sys/ backend keeps
between requests (mount moves, the tidy job, per-key locks).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from strongroom.errors import PermissionDenied
from strongroom.framework import BackgroundJob, KeyLocks

if TYPE_CHECKING:
    from strongroom.audit import AuditBroker
    from strongroom.barrier import AESGCMBarrier
    from strongroom.clock import Clock
    from strongroom.core.acl import ACL
    from strongroom.core.activity import ActivityLog
    from strongroom.core.cluster import Cluster
    from strongroom.core.identity import IdentityStore
    from strongroom.core.leases import LeaseManager
    from strongroom.core.mounts import MountConfig, MountEntry
    from strongroom.core.password_policy import PasswordPolicyStore
    from strongroom.core.policies import PolicyStore
    from strongroom.core.quotas import QuotaManager
    from strongroom.core.router import Router
    from strongroom.core.system.cors import CorsConfig
    from strongroom.core.system.introspection import InFlight
    from strongroom.core.system.keys import RotateConfig
    from strongroom.core.telemetry import Telemetry
    from strongroom.core.token_leases import TokenLeases
    from strongroom.core.tokens import TokenEntry, TokenStore
    from strongroom.logical import BackendFactory, Request
    from strongroom.seal import SealManager

__all__ = [
    "CoreSettingsView",
    "PeerRelay",
    "SysContext",
    "SystemCore",
    "UnsealedView",
    "caller_acl",
]

PeerRelay = Callable[[str, str, dict[str, Any], str], Awaitable[None]]
"""(method, path, body, token): an operator action sent on to the other worker processes."""


class CoreSettingsView(Protocol):
    @property
    def default_lease_ttl(self) -> int: ...
    @property
    def max_lease_ttl(self) -> int: ...
    @property
    def storage_type(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def raw_storage_endpoint(self) -> bool: ...
    @property
    def introspection_endpoint(self) -> bool: ...
    @property
    def sanitized_config(self) -> Mapping[str, Any]: ...


class UnsealedView(Protocol):
    @property
    def active(self) -> bool: ...  # False on an HA standby


class SystemCore(Protocol):
    """The core as sys/ sees it (``strongroom.core.core.Core`` is the implementation).

    Also how ``core/mfa.py`` and ``core/snapshots.py``, which sys/ calls, take the core:
    nothing that sys/ imports needs ``core.core``.
    """

    # settable: sys/config/cors, sys/rotate/config and sys/config/ui/headers replace them whole
    cors_config: CorsConfig
    rotate_config: RotateConfig
    ui_headers: tuple[tuple[bytes, bytes], ...]
    # why the node sealed itself ("" if it did not): sys/health's seal_reason
    seal_reason: str

    @property
    def sealed(self) -> bool: ...
    @property
    def barrier(self) -> AESGCMBarrier: ...
    @property
    def seal_manager(self) -> SealManager: ...
    @property
    def settings(self) -> CoreSettingsView: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def audit(self) -> AuditBroker: ...
    @property
    def router(self) -> Router: ...
    @property
    def factories(self) -> Mapping[str, BackendFactory]: ...
    @property
    def cluster(self) -> Cluster | None: ...
    @property
    def peer_relay(self) -> PeerRelay | None: ...
    @property
    def active_time(self) -> float: ...
    @property
    def quotas(self) -> QuotaManager: ...
    @property
    def activity(self) -> ActivityLog: ...
    @property
    def telemetry(self) -> Telemetry: ...
    @property
    def in_flight(self) -> InFlight: ...
    @property
    def audited_headers(self) -> Mapping[str, bool]: ...
    @property
    def tokens(self) -> TokenStore: ...
    @property
    def policies(self) -> PolicyStore: ...
    @property
    def leases(self) -> LeaseManager: ...
    @property
    def token_leases(self) -> TokenLeases: ...
    @property
    def identity(self) -> IdentityStore: ...
    @property
    def state(self) -> UnsealedView: ...

    def cluster_info(self) -> tuple[str, str]: ...
    def entry_by_uuid(self, mount_uuid: str) -> MountEntry | None: ...
    async def acl_for(self, entry: TokenEntry) -> ACL: ...
    async def initialize(
        self, secret_shares: int, secret_threshold: int
    ) -> tuple[list[bytes], str]: ...
    async def after_unseal(self) -> None: ...
    async def seal(self) -> None: ...
    async def mint_root_token(self) -> str: ...
    def set_audited_headers(self, headers: dict[str, bool]) -> None: ...
    async def revoke_prefix(self, prefix: str, *, force: bool = False) -> int: ...
    def password_policies(self) -> PasswordPolicyStore: ...
    def mount_entries(self, *, is_auth: bool) -> list[MountEntry]: ...
    def find_mount(self, path: str, *, is_auth: bool) -> MountEntry | None: ...
    async def enable(
        self,
        path: str,
        mount_type: str,
        *,
        is_auth: bool,
        description: str = "",
        config: MountConfig | None = None,
        options: Mapping[str, str] | None = None,
        local: bool = False,
        seal_wrap: bool = False,
    ) -> MountEntry: ...
    async def disable(self, path: str, *, is_auth: bool) -> None: ...
    async def remount(self, src: str, dst: str) -> MountEntry: ...
    async def reload_backends(self, paths: Sequence[str]) -> list[str]: ...
    async def tune(
        self,
        path: str,
        *,
        is_auth: bool,
        config_changes: Mapping[str, Any],
        description: str | None = None,
        options: Mapping[str, str] | None = None,
    ) -> None: ...


# mount moves reported by sys/remount/status (Vault keeps them in memory too)
MIGRATIONS_KEPT = 256


class SysContext:
    """The owner of the sys/ path tables: the core and the sys/ backend's own state."""

    __slots__ = ("core", "header_locks", "lease_tidy", "migrations", "quota_locks")

    def __init__(self, core: SystemCore) -> None:
        self.core = core
        self.migrations: dict[str, dict[str, str]] = {}  # the latest moves, this process
        self.lease_tidy = BackgroundJob("sys/leases/tidy")
        self.header_locks = KeyLocks()
        self.quota_locks = KeyLocks()


async def caller_acl(core: SystemCore, request: Request, *, in_last_use: bool = False) -> ACL:
    """The calling token's ACL, for the sys/ paths that are unauthenticated or served
    before the road's checks and so look the caller up themselves.

    Raises:
        PermissionDenied: no token, or not a valid one.
    """
    token = request.client_token
    entry = await core.tokens.lookup(token, in_last_use=in_last_use) if token else None
    if entry is None:
        raise PermissionDenied()
    return await core.acl_for(entry)
