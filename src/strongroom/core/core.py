"""Core state: seal status, mount tables, and the services that live while unsealed.

``Core`` is built by server/wiring.py with its storage, barrier, seal manager and the
backend factories (from builtin.py). It never imports an engine: it only knows types by
name through ``factories``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from strongroom.audit import AuditAuth, AuditBroker, MountInfo
from strongroom.barrier import AESGCMBarrier, View
from strongroom.clock import Clock, SystemClock
from strongroom.core import standby
from strongroom.core.acl import ACL
from strongroom.core.activity import ActivityLog
from strongroom.core.cluster import Cluster
from strongroom.core.identity import IdentityStore, OIDCProvider, build_identity_backend, normalise
from strongroom.core.leases import LeaseEntry, LeaseManager
from strongroom.core.mounts import (
    AUTH_TABLE_KEY,
    MOUNT_TABLE_KEY,
    PROTECTED_PREFIXES,
    MountConfig,
    MountEntry,
    MountTable,
    new_accessor,
    validate_mount_path,
)
from strongroom.core.password_policy import STORAGE_PREFIX as PASSWORD_POLICY_PREFIX
from strongroom.core.password_policy import PasswordPolicyStore
from strongroom.core.policies import PolicyStore
from strongroom.core.policy import render_identity_template
from strongroom.core.quotas import QuotaManager
from strongroom.core.router import Route, Router
from strongroom.core.system.cors import CorsConfig, load_cors
from strongroom.core.system.header_config import (
    load_audited_headers,
    load_ui_headers,
)
from strongroom.core.system.introspection import InFlight
from strongroom.core.system.keys import (
    RotateConfig,
    load_rotate_config,
    rotate_if_due,
)
from strongroom.core.system.quotas import load_quotas
from strongroom.core.telemetry import Telemetry
from strongroom.core.token_backend import TokenBackendDeps, build_token_backend
from strongroom.core.token_leases import TokenLeases
from strongroom.core.token_roles import TokenRoleStore
from strongroom.core.tokens import TokenEntry, TokenStore
from strongroom.errors import InternalError, InvalidRequest, Sealed, Standby, StrongroomError
from strongroom.framework import list_all
from strongroom.logical import (
    Backend,
    BackendConfig,
    BackendFactory,
    BackendKind,
    Connection,
    Operation,
    Request,
    Secret,
    StorageOp,
    TokenInfo,
)
from strongroom.seal import SealManager
from strongroom.storage.cache import CachedStorage

__all__ = ["Core", "CoreSettings", "RequestMemos"]

log = logging.getLogger("strongroom.core")

_CLUSTER_KEY = standby.CLUSTER_KEY
AUDIT_TABLE_KEY = standby.AUDIT_TABLE_KEY
KEYRING_KEY = standby.KEYRING_KEY
_TOKEN_SALT_KEY = standby.TOKEN_SALT_KEY
_SWEEP_INTERVAL = 1.0
# Mount types core provides itself and that can be neither enabled twice nor disabled.
_SINGLETON_TYPES = ("system", "token", "cubbyhole", "identity")


PeerRelay = Callable[[str, str, dict[str, Any], str], Awaitable[None]]
"""(method, path, body, token): an operator action sent on to the other worker processes."""


@dataclass(frozen=True, slots=True)
class CoreSettings:
    default_lease_ttl: int = 768 * 3600
    max_lease_ttl: int = 768 * 3600
    storage_type: str = "inmem"
    api_addr: str = ""
    cluster_addr: str = ""  # this node's address for its peers (HA)
    version: str = "1.17.0+strongroom"
    raw_storage_endpoint: bool = False  # sys/raw/* exists (the config's key; dev: on)
    introspection_endpoint: bool = False  # sys/internal/inspect/router/:tag (dev: on)
    sanitized_config: Mapping[str, Any] = field(default_factory=dict)  # sys/config/state


@dataclass(slots=True)
class _MountSystemView:
    core: Core
    uuid: str

    def _entry(self) -> MountEntry | None:
        return self.core.entry_by_uuid(self.uuid)

    def default_lease_ttl(self) -> int:
        entry = self._entry()
        value = entry.config.default_lease_ttl if entry else 0
        return value or self.core.settings.default_lease_ttl

    def max_lease_ttl(self) -> int:
        entry = self._entry()
        value = entry.config.max_lease_ttl if entry else 0
        return value or self.core.settings.max_lease_ttl

    def now(self) -> float:
        return self.core.clock.now()

    async def generate_password(self, policy: str) -> str:
        return await self.core.password_policies().generate(policy)

    def identity_template(self, text: str, entity_id: str) -> str | None:
        if "{{" not in text:
            return text
        if not entity_id or self.core.sealed:
            return None
        return render_identity_template(text, self.core.identity.template_values(entity_id))


@dataclass(slots=True)
class _Unsealed:
    """Everything that exists only while the barrier is unsealed."""

    tokens: TokenStore
    policies: PolicyStore
    mounts: MountTable
    auth_mounts: MountTable
    cluster_id: str
    cluster_name: str
    leases: LeaseManager
    identity: IdentityStore
    oidc: OIDCProvider
    sweeper: asyncio.Task[None] | None = None
    by_uuid: dict[str, MountEntry] = field(default_factory=dict)
    active: bool = True  # False on an HA standby: loaded read-only, no leader duties


class RequestMemos:
    """A core's per-object memos for the request road (core/handling.py): a token's audit
    identity and TokenInfo, a mount's audit settings, rebuilt only when the (frozen,
    replaced-on-change) TokenEntry or Route changes. Per core, not per process: they hold
    token entries, so they go with the core that looked them up (dropped at seal and when a
    standby invalidates its token cache), and two cores in one process share nothing."""

    __slots__ = ("auth", "info", "mount")

    def __init__(self) -> None:
        self.auth: dict[int, tuple[TokenEntry, AuditAuth]] = {}
        self.info: dict[int, tuple[TokenEntry, TokenInfo]] = {}
        self.mount: dict[int, tuple[Route, MountInfo]] = {}

    def clear(self) -> None:
        self.auth.clear()
        self.info.clear()
        self.mount.clear()


class Core:
    def __init__(
        self,
        *,
        barrier: AESGCMBarrier,
        seal: SealManager,
        factories: Mapping[str, BackendFactory],
        settings: CoreSettings | None = None,
        clock: Clock | None = None,
        audit: AuditBroker | None = None,
    ) -> None:
        self.barrier = barrier
        self.seal_manager = seal
        self.factories = dict(factories)
        self.settings = settings or CoreSettings()
        self.clock: Clock = clock or SystemClock()
        # Lives as long as core; its devices open at unseal and close at seal.
        self.audit = audit or AuditBroker(clock=self.clock)
        self.router = Router()
        self._state: _Unsealed | None = None
        self._lock = asyncio.Lock()
        self.active_time = 0.0
        self.memos = RequestMemos()
        # HA (core/cluster.py): set by wiring when the storage is shared by several nodes
        self.cluster: Cluster | None = None
        self._physical_cache: CachedStorage | None = None
        self._switching = False
        self._joining = False  # after_unseal is starting the cluster
        self._background: set[asyncio.Task[None]] = set()
        self._sealing = False  # a standby found a foreign keyring: sealed, seal under way
        # why this node sealed itself, if it did (sys/health's seal_reason); "" otherwise
        self.seal_reason = ""
        # workers: pass an unseal key share or a seal on to the sibling processes
        self.peer_relay: PeerRelay | None = None
        # read by http/ on every request: immutable, replaced whole (core/system/cors.py)
        self.cors_config: CorsConfig = CorsConfig()
        self.quotas = QuotaManager()  # sys/quotas/*, loaded at unseal
        # client counts (sys/internal/counters/activity*), noted by the request road
        self.activity = ActivityLog(View(barrier, "sys/counters/"), self.clock)
        self.telemetry = Telemetry()  # wiring replaces it with the config's settings
        self.telemetry.mount_of = self.mount_of_http_path
        # requests observed so far are labelled with the mounts they reached
        self.router.before_change = lambda: self.telemetry.routes_changing()
        self.in_flight = InFlight()  # filled by the HTTP edge (sys/in-flight-req)
        self.rotate_config = RotateConfig()  # sys/rotate/config, loaded at unseal
        # sys/config/auditing/request-headers: name → hmac, and the names http/ forwards
        self.audited_headers: dict[str, bool] = {}
        self.audited_header_names: frozenset[bytes] = frozenset()
        # sys/config/ui/headers as (name, value) lines for every /ui answer
        self.ui_headers: tuple[tuple[bytes, bytes], ...] = ()

    # ----- state ---------------------------------------------------------------------
    @property
    def sealed(self) -> bool:
        return self._state is None or self._sealing

    @property
    def state(self) -> _Unsealed:
        if self._state is None:
            raise Sealed()
        return self._state

    @property
    def tokens(self) -> TokenStore:
        return self.state.tokens

    @property
    def policies(self) -> PolicyStore:
        return self.state.policies

    def entry_by_uuid(self, mount_uuid: str) -> MountEntry | None:
        return self._state.by_uuid.get(mount_uuid) if self._state else None

    def cluster_info(self) -> tuple[str, str]:
        if self._state is None:
            return "", ""
        return self._state.cluster_name, self._state.cluster_id

    async def acl_for(self, entry: TokenEntry) -> ACL:
        """The ACL of a token: its own policies plus its entity's and groups', evaluated
        now (a group losing a policy takes effect on the next request), with templated
        policies rendered for the entity."""
        state = self.state
        entity_id = entry.entity_id
        if not entity_id:
            return await state.policies.acl(entry.policies)
        identity = state.identity
        names = (*entry.policies, *identity.policies_for(entity_id))
        return await state.policies.acl(
            names,
            entity_id=entity_id,
            identity_version=identity.version,
            template_values=lambda: identity.template_values(entity_id),
        )

    # ----- lifecycle -----------------------------------------------------------------
    async def initialize(
        self, secret_shares: int, secret_threshold: int
    ) -> tuple[list[bytes], str]:
        """Initialise storage: keys, default mounts, policies, and a root token.

        Returns the unseal key shares and the root token; the core is left sealed.
        """
        async with self._lock:
            result = await self.seal_manager.initialize(secret_shares, secret_threshold)
            try:
                cluster = {
                    "id": str(uuid.uuid4()),
                    "name": f"strongroom-cluster-{secrets.token_hex(4)}",
                }
                await self.barrier.put(_CLUSTER_KEY, orjson.dumps(cluster))
                await self.barrier.put(_TOKEN_SALT_KEY, secrets.token_bytes(32))
                await self._post_unseal()
                token, _ = await self.tokens.create(
                    policies=("root",),
                    parent=None,
                    display_name="root",
                    path="auth/token/root",
                )
            finally:
                await self._pre_seal()
                self.seal_manager.seal()
            return list(result.keys), token

    def enable_ha(self, cluster: Cluster, cache: CachedStorage) -> None:
        """Take part in an HA cluster (before the first unseal); ``cache`` is the ciphertext
        cache the change feed invalidates."""
        self.cluster = cluster
        cluster.secure_storage = self.barrier  # the cluster CA lives behind the barrier
        cluster.relay = self.activity  # a standby's client counts ride on its echoes
        self._physical_cache = cache

    async def after_unseal(self) -> None:
        """Called once the seal manager has unsealed the barrier."""
        self.seal_reason = ""
        if self.cluster is not None:
            # two unseal paths may finish at once (a relayed share, a sibling's root key)
            if self._state is None and not self._joining:
                self._joining = True
                try:
                    await self.cluster.start()  # loads as a standby, then races for the lock
                finally:
                    self._joining = False
            return
        async with self._lock:
            if self._state is None:
                await self._post_unseal()

    async def seal(self) -> None:
        cluster = self.cluster
        if cluster is not None:
            await cluster.stop()
        async with self._lock:
            await self._pre_seal()
            self.seal_manager.seal()
        if cluster is not None:
            await cluster.resign()

    # ----- HA: what core/cluster.py drives (InvalidationTarget) ----------------------
    @property
    def switching(self) -> bool:
        """An HA role change or route rebuild is in progress (routes may be partial)."""
        return self._switching

    async def settled(self) -> None:
        """Return once no role change or route rebuild is in progress (HA)."""
        while self._switching:
            async with self._lock:
                pass

    async def become_active(self) -> None:
        await self._switch(active=True)
        try:
            await self.activity.flush_outbox()  # client counts not yet relayed as a standby
        except StrongroomError as exc:
            log.warning("client counts not stored: %s", type(exc).__name__)

    async def become_standby(self) -> None:
        await self._switch(active=False)

    async def _switch(self, *, active: bool) -> None:
        async with self._lock:
            if self.barrier.sealed:
                return
            self._switching = True  # requests wait (core/handling.py) until routes are whole
            state = self._state
            # a standby rebuilding its routes (mount change, feed gap) keeps auditing into
            # the chains it has open; a role change starts over (the active continues the
            # saved chain heads, a standby starts chains of its own)
            keep_audit = not active and state is not None and not state.active
            try:
                await self._pre_seal(sealing=False, keep_audit=keep_audit)
                if self._physical_cache is not None:  # anything cached before may be stale
                    self._physical_cache.invalidate_all()
                await self.barrier.reload_keyring()
                await self._post_unseal(active=active)
            finally:
                self._switching = False

    async def invalidate_all(self) -> None:
        await standby.invalidate_all(self)

    async def invalidate(self, keys: Sequence[str]) -> None:
        await standby.invalidate(self, keys)

    async def mint_root_token(self) -> str:
        token, _ = await self.tokens.create(
            policies=("root",), parent=None, display_name="root", path="auth/token/root"
        )
        return token

    async def _load_api_config(self) -> None:
        """The sys/config/* settings the request road reads (CORS)."""
        self.cors_config = await load_cors(self.barrier)
        await load_quotas(self.barrier, self.quotas)
        self.set_audited_headers(await load_audited_headers(self.barrier))
        self.rotate_config = await load_rotate_config(self.barrier)
        self.ui_headers = await load_ui_headers(self.barrier)

    def set_audited_headers(self, headers: dict[str, bool]) -> None:
        """Replace the audited request headers (both views at once: they are read per request)."""
        self.audited_headers = dict(headers)
        self.audited_header_names = frozenset(name.encode("latin-1") for name in headers)
        self.audit.request_headers = self.audited_headers

    def mount_of_http_path(self, http_path: str) -> str:
        """The mount a ``/v1/…`` path reaches ("" when none): the request metrics' label."""
        found = self.router.match(http_path[4:])
        return found[0].mount_point if found else ""

    async def lease_count_under(self, prefix: str) -> int:
        """Leases whose ID starts with ``prefix`` (all of them for ``""``): lease-count quotas."""
        if not prefix:
            return await self.leases.count()
        return len(await self.leases.ids_with_prefix(prefix))

    async def quota_role(self, request: Request, path: str) -> str:
        """The role a login request names, for role quotas: the auth method resolves it
        (AppRole: from the role ID) or it is the body's ``role`` field."""
        raw = request.data.get("role")
        role = raw if isinstance(raw, str) else ""
        found = self.router.match(path)
        if found is None:
            return role
        route, relative = found
        resolver = getattr(route.backend, "resolve_role", None)
        if resolver is None or relative != "login":
            return role
        return str(
            await resolver(
                Request(
                    operation=request.operation,
                    path=relative,
                    data=request.data,
                    storage=route.storage,
                    mount_point=route.mount_point,
                    mount_accessor=route.entry.accessor,
                    mount_type=route.entry.type,
                    connection=request.connection,
                )
            )
        )

    async def quota_identity(self, token: str) -> str:
        """Who a rate-limit quota grouped by entity counts: the token's entity, else the token."""
        entry = await self.tokens.lookup(token)
        if entry is None:
            return "anonymous"
        return entry.entity_id or "accessor:" + entry.accessor

    async def _post_unseal(self, *, active: bool = True) -> None:
        """Load everything behind the barrier. ``active=False`` (an HA standby) writes
        nothing and starts no leader duty: no defaults, no lease manager, no token sweep,
        no backend ``initialize``; it opens the audit devices read-only (chains of its own,
        nothing stored: audit/broker.py)."""
        await self._load_api_config()
        raw_cluster = await self.barrier.get(_CLUSTER_KEY)
        cluster = orjson.loads(raw_cluster) if raw_cluster else {"id": "", "name": ""}
        salt = await self.barrier.get(_TOKEN_SALT_KEY)
        if salt is None and not active:
            raise Standby("storage is not initialised yet")
        if salt is None:
            salt = secrets.token_bytes(32)
            await self.barrier.put(_TOKEN_SALT_KEY, salt)
        tokens = TokenStore(View(self.barrier, "sys/token/"), self.clock, salt)
        policies = PolicyStore(View(self.barrier, "sys/policy/"))
        leases = LeaseManager(
            View(self.barrier, "sys/expire/"), self.clock, self._lease_call, self._mount_max_ttl
        )
        identity_view = View(self.barrier, "sys/identity/")
        identity = IdentityStore(identity_view, self.clock)
        oidc = OIDCProvider(
            identity_view, self.clock, identity, issuer_base=lambda: self.settings.api_addr
        )
        mounts = await MountTable.load(self.barrier, MOUNT_TABLE_KEY, is_auth=False)
        auth_mounts = await MountTable.load(self.barrier, AUTH_TABLE_KEY, is_auth=True)
        if (mounts is None or auth_mounts is None) and not active:
            raise Standby("the active node has not written the mount tables yet")
        if mounts is None:
            mounts = MountTable(MOUNT_TABLE_KEY, is_auth=False)
            for path, kind, desc in (
                ("cubbyhole/", "cubbyhole", "per-token private secret storage"),
                ("sys/", "system", "system endpoints used for control, policy and debugging"),
            ):
                mounts = mounts.with_entry(_new_entry(path, kind, desc, is_auth=False))
            await self.barrier.put(MOUNT_TABLE_KEY, mounts.encode())
        if active and not any(e.type == "identity" for e in mounts.entries.values()):
            mounts = mounts.with_entry(
                _new_entry("identity/", "identity", "identity store", is_auth=False)
            )
            await self.barrier.put(MOUNT_TABLE_KEY, mounts.encode())
        if auth_mounts is None:
            auth_mounts = MountTable(AUTH_TABLE_KEY, is_auth=True)
            auth_mounts = auth_mounts.with_entry(
                _new_entry("token/", "token", "token based credentials", is_auth=True)
            )
            await self.barrier.put(AUTH_TABLE_KEY, auth_mounts.encode())
        state = _Unsealed(
            tokens=tokens,
            policies=policies,
            mounts=mounts,
            auth_mounts=auth_mounts,
            cluster_id=cluster["id"],
            cluster_name=cluster["name"],
            leases=leases,
            identity=identity,
            oidc=oidc,
            active=active,
        )
        self._state = state
        try:
            if active:
                await policies.setup_defaults()
                await tokens.load_schedule()
            tokens.on_revoke(self._destroy_cubbyhole)
            tokens.on_revoke(self._revoke_token_leases)
            await identity.load()
            for entry in [*mounts.entries.values(), *auth_mounts.entries.values()]:
                await self._activate(entry, initialize=active)
            if active:
                # Leases restore after the mounts are active: one that expired while the
                # server was down (or during a failover) is revoked through its backend now.
                await leases.restore()
                leases.start()
                await self.audit.start(self.barrier)
            elif self.audit.started:  # a standby's route rebuild: the devices stay open
                await self.audit.reload()
            else:
                await self.audit.start(self.barrier, read_only=True)
        except BaseException:
            self._state = None
            self.router.clear()
            await self.audit.stop()
            raise
        if active:
            state.sweeper = asyncio.get_running_loop().create_task(self._sweep_loop())
            self.active_time = self.clock.now()
        log.info(
            "core unsealed%s; %d mounts active",
            "" if self.cluster is None else (" as the active node" if active else " as a standby"),
            len(self.router.routes()),
        )

    async def _pre_seal(self, *, sealing: bool = True, keep_audit: bool = False) -> None:
        state = self._state
        if state is None:
            return
        self._state = None
        if not keep_audit:
            # Final checkpoints and chain state go behind the barrier while it is still open.
            await self.audit.stop()
        await state.leases.stop()
        if state.sweeper is not None:
            state.sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await state.sweeper
        for route in self.router.routes():
            try:
                await route.backend.cleanup()
            except Exception:
                log.exception("cleanup failed for mount %s", route.mount_point)
        self.router.clear()
        self.memos.clear()
        if sealing:
            log.info("core sealed")

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(_SWEEP_INTERVAL)
            state = self._state
            if state is None:
                return
            try:
                await state.tokens.sweep()
                await rotate_if_due(self)  # sys/rotate/config's automatic rotation
            except Sealed:
                return
            except Exception:
                log.exception("sweep failed (token expiry or key rotation)")

    @property
    def leases(self) -> LeaseManager:
        return self.state.leases

    @property
    def token_leases(self) -> TokenLeases:
        """Tokens as leases (``sys/leases`` lists, looks up and revokes them too)."""
        return TokenLeases(self.state.tokens)

    async def revoke_prefix(self, prefix: str, *, force: bool = False) -> int:
        """Revoke every token lease, then every secret lease, whose ID starts with
        ``prefix``. Returns how many. Secret leases a backend failed to revoke raise
        (unless ``force``), so a partial revocation never answers success."""
        tokens = await self.token_leases.revoke_prefix(prefix)
        return tokens + await self.state.leases.revoke_prefix(prefix, force=force)

    @property
    def identity(self) -> IdentityStore:
        return self.state.identity

    def _mount_max_ttl(self, mount_uuid: str) -> int:
        entry = self.entry_by_uuid(mount_uuid)
        value = entry.config.max_lease_ttl if entry is not None else 0
        return value or self.settings.max_lease_ttl

    async def _lease_call(self, op: str, lease: LeaseEntry, increment: int) -> Secret | None:
        """Send RENEW/REVOKE for a lease to the backend of the mount that issued it."""
        entry = self.entry_by_uuid(lease.mount_uuid)
        route = self.router.get(entry.full_path) if entry is not None else None
        if route is None:
            raise InternalError("the mount that issued this lease is gone")
        request = Request(
            operation=Operation.RENEW if op == "renew" else Operation.REVOKE,
            path=lease.path[len(route.mount_point) :],
            storage=route.storage,
            mount_point=route.mount_point,
            mount_accessor=route.entry.accessor,
            mount_type=route.entry.type,
            secret=lease.secret(increment),
        )
        response = await route.backend.handle(request)
        return response.secret if response is not None else None

    async def _renew_login(self, entry: TokenEntry, increment: int, connection: Connection) -> None:
        """Ask the auth method that issued a login token to approve its renewal."""
        if not entry.path.startswith("auth/") or entry.path.startswith("auth/token/"):
            return
        found = self.router.match(entry.path)
        if found is None or not found[0].entry.is_auth:
            raise InvalidRequest("the auth method that issued this token is gone")
        route, relative = found
        await route.backend.handle(
            Request(
                operation=Operation.RENEW,
                path=relative,
                storage=route.storage,
                mount_point=route.mount_point,
                mount_accessor=route.entry.accessor,
                mount_type=route.entry.type,
                connection=connection,
                secret=Secret(
                    type="login",
                    internal_data=entry.internal,
                    increment=increment,
                    issue_time=entry.creation_time,
                ),
            )
        )

    async def _revoke_token_leases(self, entry: TokenEntry) -> None:
        if self._state is not None:
            await self._state.leases.revoke_by_token(entry.id_hash)

    async def _destroy_cubbyhole(self, entry: TokenEntry) -> None:
        route = self.router.get("cubbyhole/")
        if route is None or not entry.cubbyhole_id:
            return
        prefix = entry.cubbyhole_id + "/"
        keys = await list_all(route.storage, prefix)
        if keys:
            await route.storage.transaction([StorageOp(prefix + key) for key in keys])

    def password_policies(self) -> PasswordPolicyStore:
        return PasswordPolicyStore(View(self.barrier, PASSWORD_POLICY_PREFIX))

    async def _token_alias_entity(self, accessor: str, alias: str) -> str:
        name = normalise("token", alias)
        return (await self.identity.login_entity(accessor, "token", name, {})).id

    # ----- mounts --------------------------------------------------------------------
    def _build_core_backend(self, entry: MountEntry) -> Backend | None:
        if entry.type == "token":
            deps = TokenBackendDeps(
                store=self.tokens,
                acl_for=self.acl_for,
                default_ttl=lambda: (
                    entry.config.default_lease_ttl or self.settings.default_lease_ttl
                ),
                max_ttl=lambda: entry.config.max_lease_ttl or self.settings.max_lease_ttl,
                now=self.clock.now,
                renew_check=self._renew_login,
                roles=TokenRoleStore(View(self.barrier, "sys/token/")),
                entity_for_alias=lambda alias: self._token_alias_entity(entry.accessor, alias),
            )
            return build_token_backend(deps)
        if entry.type == "system":
            from strongroom.core.system import build_system_backend

            return build_system_backend(self)
        if entry.type == "identity":
            state = self.state
            return build_identity_backend(
                state.identity,
                state.oidc,
                mount_exists=lambda accessor: self._mount_by_accessor(accessor) is not None,
                mount_type_of=lambda accessor: getattr(
                    self._mount_by_accessor(accessor), "type", None
                ),
            )
        return None

    async def _activate(
        self, entry: MountEntry, *, is_auth: bool | None = None, initialize: bool = True
    ) -> Route:
        """Build and mount ``entry``'s backend. With ``is_auth`` (a new mount), a backend
        of the other kind is refused before it starts, as Vault's typed plugin catalog
        refuses ``sys/mounts`` of an auth method and ``sys/auth`` of a secrets engine.
        ``initialize=False`` on an HA standby: as Vault, backends initialise (start their
        periodic duties) on the active only."""
        view = View(self.barrier, entry.storage_prefix)
        backend = self._build_core_backend(entry)
        if backend is None:
            factory = self.factories.get(entry.type)
            if factory is None:
                raise InvalidRequest(f"unknown backend type: {entry.type!r}")
            config = BackendConfig(
                mount_type=entry.type,
                mount_point=entry.full_path,
                mount_accessor=entry.accessor,
                options=dict(entry.options),
                system=_MountSystemView(self, entry.uuid),
                storage=view,
            )
            backend = await factory(config)
        if is_auth is not None and (backend.kind is BackendKind.AUTH) != is_auth:
            raise InvalidRequest(f"plugin not found in the catalog: {entry.type}")
        if initialize:
            await backend.initialize()
        route = Route(entry=entry, backend=backend, storage=view)
        self.router.mount(route)
        self.state.by_uuid[entry.uuid] = entry
        return route

    def _mount_by_accessor(self, accessor: str) -> MountEntry | None:
        state = self.state
        for entry in [*state.mounts.entries.values(), *state.auth_mounts.entries.values()]:
            if entry.accessor == accessor:
                return entry
        return None

    def _table(self, is_auth: bool) -> MountTable:
        return self.state.auth_mounts if is_auth else self.state.mounts

    async def _save_table(self, table: MountTable) -> None:
        await self.barrier.put(table.key, table.encode())
        if table.is_auth:
            self.state.auth_mounts = table
        else:
            self.state.mounts = table

    def mount_entries(self, *, is_auth: bool) -> list[MountEntry]:
        return list(self._table(is_auth).entries.values())

    def find_mount(self, path: str, *, is_auth: bool) -> MountEntry | None:
        path = validate_mount_path(path)
        return self._table(is_auth).entries.get(path)

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
    ) -> MountEntry:
        path = validate_mount_path(path)
        options = dict(options or {})
        if mount_type == "kv-v2":
            mount_type, options["version"] = "kv", "2"
        if mount_type in _SINGLETON_TYPES:
            raise InvalidRequest(f"cannot mount {mount_type!r} of type {mount_type!r}")
        if mount_type not in self.factories:
            raise InvalidRequest(f"plugin not found in the catalog: {mount_type}")
        if not is_auth and path.startswith(PROTECTED_PREFIXES):
            raise InvalidRequest(f"cannot mount under {path.split('/')[0]}/")
        self._check_ttls(config or MountConfig())
        async with self._lock:
            table = self._table(is_auth)
            conflict = table.find_conflict(path)
            if conflict is not None:
                raise InvalidRequest(f"path is already in use at {conflict}")
            entry = MountEntry(
                path=path,
                type=mount_type,
                uuid=str(uuid.uuid4()),
                accessor=new_accessor(("auth_" if is_auth else "") + mount_type),
                description=description,
                config=config or MountConfig(),
                options=options,
                local=local,
                seal_wrap=seal_wrap,
                is_auth=is_auth,
            )
            await self._activate(entry, is_auth=is_auth)
            try:
                await self._save_table(table.with_entry(entry))
            except BaseException:
                self.router.unmount(entry.full_path)
                raise
            return entry

    def _check_ttls(self, config: MountConfig) -> None:
        limit = self.settings.max_lease_ttl
        if config.max_lease_ttl and config.max_lease_ttl > limit:
            raise InvalidRequest("max_lease_ttl exceeds the system max TTL")
        if config.default_lease_ttl and config.default_lease_ttl > (config.max_lease_ttl or limit):
            raise InvalidRequest("default_lease_ttl exceeds max_lease_ttl")

    async def disable(self, path: str, *, is_auth: bool) -> None:
        path = validate_mount_path(path)
        async with self._lock:
            table = self._table(is_auth)
            entry = table.entries.get(path)
            if entry is None:
                return  # Vault: disabling an unmounted path succeeds
            if entry.type in _SINGLETON_TYPES:
                raise InvalidRequest(f"cannot unmount {entry.full_path!r}")
            # Every lease the mount issued is revoked through it first (as Vault does); a
            # failure aborts the unmount rather than orphaning live credentials.
            await self.revoke_prefix(entry.full_path)
            route = self.router.unmount(entry.full_path)
            await self._save_table(table.without(path))
            self.state.by_uuid.pop(entry.uuid, None)
            if is_auth:
                # the mount's entity and group aliases go with it (as Vault); a new mount
                # gets a new accessor, so none of them could ever match again
                await self.state.identity.drop_mount(entry.accessor)
            if route is not None:
                try:
                    await route.backend.cleanup()
                finally:
                    keys = await list_all(route.storage, "")
                    for start in range(0, len(keys), 500):
                        batch = keys[start : start + 500]
                        await route.storage.transaction([StorageOp(k) for k in batch])

    def mount_of_path(self, path: str) -> tuple[str, str]:
        """(mount path, accessor) of the mount that owns ``path`` (``("", "")`` if none)."""
        found = self.router.match(path)
        return (found[0].mount_point, found[0].entry.accessor) if found else ("", "")

    async def reload_backends(self, paths: Sequence[str]) -> list[str]:
        """Rebuild the backends mounted at ``paths`` (``secret/``, ``auth/userpass/``) from
        their factories, as Vault's sys/plugins/reload does; core's own mounts are skipped.
        Returns the paths reloaded."""
        async with self._lock:
            self._switching = True  # requests wait until the routes are whole again
            try:
                done = []
                for path in paths:
                    route = self.router.get(path)
                    if route is None or route.entry.type in _SINGLETON_TYPES:
                        continue
                    self.router.unmount(path)
                    try:
                        await route.backend.cleanup()
                    finally:
                        await self._activate(route.entry, initialize=self.state.active)
                    done.append(path)
                return done
            finally:
                self._switching = False

    async def remount(self, src: str, dst: str) -> MountEntry:
        is_auth = src.startswith("auth/")
        if is_auth != dst.startswith("auth/"):
            raise InvalidRequest("cannot move between secret and auth mounts")
        if is_auth:
            src, dst = src[len("auth/") :], dst[len("auth/") :]
        src, dst = validate_mount_path(src), validate_mount_path(dst)
        async with self._lock:
            table = self._table(is_auth)
            entry = table.entries.get(src)
            if entry is None:
                raise InvalidRequest(f"no matching mount at {src!r}")
            if entry.type in _SINGLETON_TYPES:
                raise InvalidRequest(f"cannot remount {entry.full_path!r}")
            if not is_auth and dst.startswith(PROTECTED_PREFIXES):
                raise InvalidRequest(f"cannot mount under {dst.split('/')[0]}/")
            conflict = table.without(src).find_conflict(dst)
            if conflict is not None:
                raise InvalidRequest(f"path already in use at {conflict}")
            moved = replace(entry, path=dst)
            await self._save_table(table.moved(src, dst))
            old = self.router.unmount(entry.full_path)
            if old is not None:
                self.router.mount(Route(entry=moved, backend=old.backend, storage=old.storage))
            self.state.by_uuid[moved.uuid] = moved
            return moved

    async def tune(
        self,
        path: str,
        *,
        is_auth: bool,
        config_changes: Mapping[str, Any],
        description: str | None = None,
        options: Mapping[str, str] | None = None,
    ) -> None:
        path = validate_mount_path(path)
        async with self._lock:
            table = self._table(is_auth)
            entry = table.entries.get(path)
            if entry is None:
                raise InvalidRequest(f"no mount at {path!r}")
            config = replace(entry.config, **config_changes)
            self._check_ttls(config)
            updated = replace(entry, config=config)
            if description is not None:
                updated = replace(updated, description=description)
            if options:
                merged = {**entry.options, **options}
                if merged.get("version", "") != entry.options.get("version", merged.get("version")):
                    raise InvalidRequest("changing a mount's version in place is not supported")
                updated = replace(updated, options=merged)
            await self._save_table(table.with_entry(updated))
            self.state.by_uuid[updated.uuid] = updated
            route = self.router.get(entry.full_path)
            if route is not None:
                self.router.mount(
                    Route(entry=updated, backend=route.backend, storage=route.storage)
                )


def _new_entry(path: str, kind: str, description: str, *, is_auth: bool) -> MountEntry:
    return MountEntry(
        path=path,
        type=kind,
        uuid=str(uuid.uuid4()),
        accessor=new_accessor(("auth_" if is_auth else "") + kind),
        description=description,
        is_auth=is_auth,
    )
