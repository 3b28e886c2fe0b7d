"""High availability: one active node elected through a fenced lock, standbys that follow.

Every node (or worker process) of a cluster shares one physical store that implements
:class:`~strongroom.storage.ha.HABackend` and :class:`~strongroom.storage.ha.ChangeFeed`
(SQLite in shared mode for the workers of one node, PostgreSQL across nodes). Each is
unsealed with the key shares, as in Vault; once unsealed it runs :class:`Cluster`:

- **Election.** A node races for the lock (``try_acquire`` every ``retry_interval``). The
  winner fences the store with its term *before* it loads anything, so every write it makes
  is checked against that term inside the write's own transaction: a node that was paused
  or cut off past the lock TTL can never write once another took over (its writes raise
  :class:`~strongroom.errors.Fenced`). The active renews every ``renew_interval``; when a
  renewal says the term is over, or no renewal succeeded for a whole TTL, it steps down.
- **Active duties.** Only the active runs the token expiry sweep, the lease expiration
  manager (it restores every lease at promotion and revokes any that expired meanwhile,
  including during the failover), and backends' ``initialize`` (where transit's automatic
  rotation and database static-role rotation start), as Vault runs backends' initialize
  on the active only. They stop when it steps down.
- **Standbys** are fenced with ``None`` (every write refused) and load the mount tables,
  policies, tokens and identity read-only. They follow the change feed: for each batch of
  changed storage keys they drop the ciphertext cache entries, then what was derived from
  them (token cache, policy/ACL cache, identity, the keyring, mount tables: a mount
  table change re-routes the standby's changed mounts; the audit table: the standby opens
  and closes its own audit devices), and only then advance their applied
  index. A request served locally first checks the standby has heard from the feed within
  ``stale_bound``; if not it catches up inline, and if the feed cannot be read it refuses
  to serve locally (it redirects to the active, or answers 503).

- **Forwarding.** What a standby must not serve goes to the active over the cluster
  address recorded in the lock (core/forwarding.py): the workers' Unix sockets, or
  ``https://`` between nodes with mutual TLS pinned to the cluster CA that the first active
  generated and keeps behind the barrier (core/cluster_tls.py). With clustering disabled,
  or no cluster address known, the standby answers Vault's 307 to the active's API address.
- **Echoes.** Every standby echoes to the active every ``echo_interval``; the active keeps
  the nodes it heard from for ``sys/ha-status`` (core/cluster_registry.py).

What a standby serves locally and what goes to the active is decided in
:func:`must_go_to_active` (reads of mounts that never write on read) and by core's road
(a token with a use count is always spent on the active).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import logging
import os
import secrets
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from strongroom.core.cluster_registry import NodeEcho, Registry, node_json
from strongroom.core.cluster_tls import ClusterTLS, load_cluster_tls
from strongroom.core.forwarding import FORWARDED, Forwarder
from strongroom.errors import Standby, StandbyRedirect, StrongroomError
from strongroom.logical import Operation, Request, Response, Storage
from strongroom.storage.ha import ChangeFeed, FeedGap, HABackend, LockHolder

__all__ = [
    "LOCAL_READ_TYPES",
    "Cluster",
    "HASettings",
    "InvalidationTarget",
    "decode_index",
    "encode_index",
    "must_go_to_active",
    "new_node_id",
]

log = logging.getLogger("strongroom.cluster")

# Mount types whose READ and LIST handlers never write: a standby serves these itself. A
# transit key read may run a due automatic rotation (a write): on a standby that write is
# refused (Fenced) before anything lands, and core sends the request to the active instead.
LOCAL_READ_TYPES = frozenset(
    {
        "kv",
        "system",
        "token",
        "identity",
        "cubbyhole",
        "transit",
        "userpass",
        "approle",
        "jwt",
        "oidc",
        "kubernetes",
        "cert",
    }
)
_LOCAL_OPERATIONS = frozenset({Operation.READ, Operation.LIST})
# transit's data-plane operations (POST, yet read-only unless the key must be created or
# rotated, which a standby cannot do: it sends those to the active, see above)
_TRANSIT_OPERATIONS = frozenset({Operation.UPDATE, Operation.CREATE})
_TRANSIT_LOCAL = ("encrypt/", "decrypt/", "rewrap/", "sign/", "verify/", "hmac/", "hash", "random")


_INDEX_PREFIX = "sr1:"


def encode_index(index: int) -> str:
    """The ``X-Vault-Index`` value for a change-feed index (opaque to clients, as Vault's)."""
    return base64.urlsafe_b64encode(f"{_INDEX_PREFIX}{index}".encode()).decode()


def decode_index(value: str) -> int | None:
    """The index in an ``X-Vault-Index`` value we issued; ``None`` for anything else."""
    try:
        text = base64.urlsafe_b64decode(value.strip().encode()).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    if not text.startswith(_INDEX_PREFIX) or not text[len(_INDEX_PREFIX) :].isdigit():
        return None
    return int(text[len(_INDEX_PREFIX) :])


def new_node_id() -> str:
    """A node ID unique to this process: host, process ID and a random suffix."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


@dataclass(frozen=True, slots=True)
class HASettings:
    """How this node takes part in the cluster.

    ``lock_ttl`` bounds failover: a dead active's hold lapses at most ``lock_ttl`` after its
    last renewal, and a standby retries every ``retry_interval``; the defaults give a
    takeover within about 3.5 s of the active dying. ``stale_bound`` is how long a standby
    may go without hearing from the change feed before it stops serving local reads.
    """

    node_id: str
    api_addr: str = ""
    cluster_addr: str = ""
    lock_ttl: float = 3.0
    renew_interval: float = 0.75
    retry_interval: float = 0.25
    stale_bound: float = 0.1
    feed_poll: float = 0.05
    disable_clustering: bool = False  # Vault's key: no forwarding between nodes (307)
    echo_interval: float = 2.0  # standbys echo to the active; forgotten after 5 missed
    version: str = ""

    def __post_init__(self) -> None:
        if self.lock_ttl <= 0 or self.renew_interval <= 0 or self.retry_interval <= 0:
            raise ValueError("HA intervals must be positive")
        if self.renew_interval * 2 > self.lock_ttl:
            raise ValueError("the lock must be renewed at least twice per TTL")
        if self.echo_interval <= 0:
            raise ValueError("the echo interval must be positive")


class InvalidationTarget(Protocol):
    """What the cluster drives in core (``Core`` implements it)."""

    async def become_active(self) -> None:
        """Load everything as the active node (the store is already fenced with our term)."""

    async def become_standby(self) -> None:
        """Drop active duties and load everything read-only (the store is fenced)."""

    async def invalidate(self, keys: Sequence[str]) -> None:
        """Drop what was cached or derived from these storage keys."""

    async def invalidate_all(self) -> None:
        """Drop every cache (a feed gap)."""


def must_go_to_active(operation: Operation, mount_type: str | None, relative: str = "") -> bool:
    """Whether a request reaching a standby must run on the active node."""
    if mount_type == "transit" and operation in _TRANSIT_OPERATIONS:
        return not relative.startswith(_TRANSIT_LOCAL)
    if operation not in _LOCAL_OPERATIONS:
        return True
    return mount_type is None or mount_type not in LOCAL_READ_TYPES


class EchoRelay(Protocol):
    """What a standby's echo carries besides its identity (core's client-count outbox,
    ``core/activity.py``), and what the active does with it."""

    def outgoing(self) -> list[dict[str, Any]]:
        """Records to send with this echo (taken out of the outbox)."""

    def requeue(self, records: list[dict[str, Any]]) -> None:
        """Records an echo could not deliver."""

    async def receive(self, records: object) -> None:
        """On the active: store what a standby sent (ValueError: malformed)."""


class Cluster:
    """One node's membership: election, leadership duties, following the change feed."""

    def __init__(
        self,
        backend: HABackend,
        feed: ChangeFeed,
        settings: HASettings,
        target: InvalidationTarget,
    ) -> None:
        self.backend = backend
        self.feed = feed
        self.settings = settings
        self.target = target
        self.term: int | None = None
        self.active = False
        self.applied_index = 0
        self._heard = 0.0  # monotonic time the feed last answered
        self._leader: LockHolder | None = None
        self._leader_at = 0.0  # monotonic time ``_leader`` was read from the store
        self._task: asyncio.Task[None] | None = None
        self._follower: asyncio.Task[None] | None = None
        self._catching_up: asyncio.Lock = asyncio.Lock()
        self._stepped_down_at = 0.0
        self.transitions = 0  # promotions and demotions, for tests and sys/ha-status
        # the cluster CA behind the barrier (core sets ``secure_storage`` to its barrier)
        self.secure_storage: Storage | None = None
        self.tls: ClusterTLS | None = None
        self._tls_tried: int | None = None  # the applied index of the last failed load
        self._forwarder = Forwarder(self._client_tls, clustering=not settings.disable_clustering)
        self.registry = Registry(forget_after=settings.echo_interval * 5)
        self._echoer: asyncio.Task[None] | None = None
        self.relay: EchoRelay | None = None  # core's client counts ride on the echoes

    # ----- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        """At unseal, before core loads anything: fenced as a standby, then elect."""
        self.backend.fence(None)
        self.active = False
        self.term = None
        self.applied_index = await self.feed.current_index()
        self._heard = time.monotonic()
        await self.target.become_standby()
        await self._load_tls(create=False)
        loop = asyncio.get_running_loop()
        self._follower = loop.create_task(self._follow())
        self._task = loop.create_task(self._elect())
        self._echoer = loop.create_task(self._echo())

    async def stop(self) -> None:
        """At seal or shutdown, first: stop electing and following (an active node keeps
        its term for its final writes); then core seals, then :meth:`resign`."""
        for task in (self._task, self._follower, self._echoer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._follower = self._echoer = None

    async def resign(self) -> None:
        """Fence ourselves and give up the lock, so another node takes over now."""
        await self._forwarder.close()
        self.tls = None  # sealed: the cluster listener refuses every handshake
        self.registry.clear()
        self.backend.fence(None)
        term, self.term, self.active = self.term, None, False
        if term is not None:
            with contextlib.suppress(Exception):
                await self.backend.release(self.settings.node_id, term)

    async def step_down(self) -> None:
        """Give up leadership (sys/step-down): another node (or this one, later) takes over."""
        if not self.active or self.term is None:
            return
        term = self.term
        self._stepped_down_at = time.monotonic()
        await self._demote()
        with contextlib.suppress(Exception):
            await self.backend.release(self.settings.node_id, term)

    # ----- what requests see -----------------------------------------------------------
    @property
    def node_id(self) -> str:
        return self.settings.node_id

    async def leader(self) -> LockHolder | None:
        if self.active and self.term is not None:
            return LockHolder(
                node_id=self.node_id,
                api_addr=self.settings.api_addr,
                cluster_addr=self.settings.cluster_addr,
                term=self.term,
                expires_at=0.0,
            )
        try:
            self._leader = await self.backend.holder()
            self._leader_at = time.monotonic()
        except StrongroomError:
            pass
        return self._leader

    async def _current_leader(self) -> LockHolder | None:
        """The leader as read within the last two retry intervals (a standby's election
        loop reads it every interval), else read now: forwarding costs no query."""
        if self.active or time.monotonic() - self._leader_at > self.settings.retry_interval * 2:
            return await self.leader()
        return self._leader

    async def can_forward(self) -> bool:
        """Whether requests can be forwarded to an active node other than this one."""
        if FORWARDED.get() or self.active:
            return False
        leader = await self._current_leader()
        return (
            leader is not None
            and leader.node_id != self.node_id
            and await self._reachable(leader.cluster_addr)
        )

    async def send_to_active(self, request: Request) -> Response:
        """Run ``request`` on the active: forwarded over its cluster address when we can
        reach it that way, else Vault's 307 to its ``api_addr`` (raised)."""
        if FORWARDED.get():  # forwarded to us, and we are no longer active: never loop
            raise Standby("this node is no longer the active node; retry")
        leader = await self._current_leader()
        if leader is not None and leader.node_id != self.node_id:
            if await self._reachable(leader.cluster_addr):
                return await self._forwarder.forward(leader.cluster_addr, request)
        raise await self.redirect()

    # ----- the cluster channel ---------------------------------------------------------
    def _client_tls(self) -> ssl.SSLContext | None:
        return None if self.tls is None else self.tls.client_context

    async def _reachable(self, cluster_addr: str) -> bool:
        if (
            self.tls is None
            and self._task is not None  # unsealed and running (a sealed node has no CA)
            and cluster_addr.startswith("https://")
            and not self.settings.disable_clustering
        ):
            # the active may have made the CA since: apply what it committed (which also
            # drops a cached "absent"), and look again if anything was committed at all
            with contextlib.suppress(StrongroomError):
                await self._catch_up()
            if self._tls_tried != self.applied_index:
                await self._load_tls(create=False)
        return self._forwarder.reachable(cluster_addr)

    async def _load_tls(self, *, create: bool) -> None:
        """Load (the active: create at first) the cluster CA and this node's leaf."""
        if self.secure_storage is None or self.settings.disable_clustering:
            return
        self._tls_tried = self.applied_index
        try:
            tls = await load_cluster_tls(self.secure_storage, self.node_id, create=create)
        except Exception as exc:
            log.warning("cluster TLS: could not load the cluster CA: %s", type(exc).__name__)
            return
        if tls is not None:
            self.tls = tls

    def echo_payload(self) -> dict[str, str]:
        settings = self.settings
        return {
            "node_id": settings.node_id,
            "hostname": socket.gethostname(),
            "api_address": settings.api_addr,
            "cluster_address": settings.cluster_addr,
            "version": settings.version,
        }

    async def _echo(self) -> None:
        """A standby's heartbeat to the active, for its sys/ha-status."""
        while True:
            await asyncio.sleep(self.settings.echo_interval)
            try:
                if self.active:
                    continue
                leader = await self.leader()
                if leader is None or leader.node_id == self.node_id:
                    continue
                if await self._reachable(leader.cluster_addr):
                    await self._send_echo(leader.cluster_addr)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("standby: echo to the active failed: %s", type(exc).__name__)

    async def _send_echo(self, cluster_addr: str) -> None:
        payload: dict[str, Any] = dict(self.echo_payload())
        relay = self.relay
        relayed = relay.outgoing() if relay is not None else []
        if relayed:
            payload["activity"] = relayed
        delivered = False
        try:
            delivered = await self._forwarder.echo(cluster_addr, payload) == 204
        finally:
            if relayed and not delivered and relay is not None:
                relay.requeue(relayed)  # kept for the next echo

    async def ha_status(self, request: Request) -> list[dict[str, object]]:
        """``sys/ha-status``'s nodes: the active answers from what it heard; a standby asks
        the active when it can reach it, else lists the active and itself."""
        if not self.active and await self.can_forward():
            leader = await self._current_leader()
            if leader is not None:
                with contextlib.suppress(StrongroomError, ValueError, AttributeError):
                    answer = await self._forwarder.forward(leader.cluster_addr, request)
                    if answer.status == 200 and answer.raw_body:
                        nodes = orjson.loads(answer.raw_body).get("data", {}).get("nodes")
                        if isinstance(nodes, list):
                            return nodes
                # the active cannot be asked: what this node knows, below
        payload = self.echo_payload()
        me = NodeEcho(
            node_id=self.node_id,
            hostname=payload["hostname"],
            api_addr=self.settings.api_addr,
            cluster_addr=self.settings.cluster_addr,
            version=self.settings.version,
            last_echo=None if self.active else datetime.datetime.now(datetime.UTC),
        )
        if self.active:
            nodes = [node_json(me, True)]
            return nodes + [node_json(node, False) for node in self.registry.nodes(self.node_id)]
        leader = await self.leader()
        listed: list[dict[str, object]] = []
        if leader is not None and leader.node_id != self.node_id:
            hostname = leader.node_id.rsplit("-", 2)[0]
            active = NodeEcho(
                leader.node_id, hostname, leader.api_addr, leader.cluster_addr, "", None
            )
            listed.append(node_json(active, True))
        return [*listed, node_json(me, False)]

    async def redirect(self) -> StrongroomError:
        """The error that sends a request to the active node (Vault's 307 to its
        ``api_addr``), or a 503 when no active is known."""
        leader = await self.leader()
        if leader is None or not leader.api_addr or leader.node_id == self.node_id:
            return Standby("this node is a standby and no active node is known")
        return StandbyRedirect(leader.api_addr)

    async def ensure_fresh(self) -> None:
        """Before a standby serves a read: it has applied every change committed so far
        (read-your-writes: ``current_index`` is one cheap query on SQLite), and heard from
        the feed within ``stale_bound``; if the feed cannot be read it must not serve."""
        try:
            if await self.feed.current_index() <= self.applied_index:
                if time.monotonic() - self._heard > self.settings.stale_bound:
                    self._heard = time.monotonic()
                return
            await asyncio.wait_for(self._catch_up(), timeout=self.settings.stale_bound * 5)
        except (TimeoutError, StrongroomError, OSError) as exc:
            if time.monotonic() - self._heard <= self.settings.stale_bound:
                return  # within the bound: serve what has been applied
            log.warning("standby: change feed unavailable: %s", type(exc).__name__)
            raise await self.redirect() from None

    async def wait_for_index(self, index: int, timeout: float) -> bool:
        """Wait until this node has applied ``index`` (X-Vault-Index); False on timeout."""
        if self.active or self.applied_index >= index:
            return True
        deadline = time.monotonic() + timeout
        while self.applied_index < index:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            await self.feed.wait(self.applied_index, min(left, self.settings.feed_poll))
            with contextlib.suppress(StrongroomError):
                await self._catch_up()
        return True

    # ----- election --------------------------------------------------------------------
    async def _elect(self) -> None:
        settings = self.settings
        last_renewed = 0.0
        while True:
            try:
                if not self.active:
                    if time.monotonic() - self._stepped_down_at < settings.lock_ttl:
                        await self.leader()
                        await asyncio.sleep(settings.retry_interval)  # let another take it
                        continue
                    term = await self.backend.try_acquire(
                        settings.node_id,
                        settings.api_addr,
                        settings.cluster_addr,
                        settings.lock_ttl,
                    )
                    if term is None:
                        await self.leader()
                        await asyncio.sleep(settings.retry_interval)
                        continue
                    last_renewed = time.monotonic()
                    await self._promote(term)
                    continue
                await asyncio.sleep(settings.renew_interval)
                term = self.term
                if term is None:
                    continue
                try:
                    renewed = await self.backend.renew(settings.node_id, term, settings.lock_ttl)
                except StrongroomError as exc:
                    log.warning("active: lock renewal failed: %s", type(exc).__name__)
                    renewed = time.monotonic() - last_renewed < settings.lock_ttl
                else:
                    if renewed:
                        last_renewed = time.monotonic()
                        if self.tls is None:  # the CA could not be made at promotion
                            await self._load_tls(create=True)
                if not renewed:
                    log.warning("active: leadership lost (term %d); stepping down", term)
                    await self._demote()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("HA election loop: %s", type(exc).__name__)
                await asyncio.sleep(settings.retry_interval)

    async def _promote(self, term: int) -> None:
        # fenced with the new term first: from here on only this term's writes land
        self.backend.fence(term)
        self.term = term
        try:
            await self._catch_up()  # everything the former active wrote is applied
            # the first active makes the cluster CA, before it answers as the active (so a
            # standby that learns of it can forward to it at once)
            await self._load_tls(create=True)
            self.active = True
            self.transitions += 1
            self.registry.clear()  # as Vault: the peers heard from since becoming active
            await self.target.become_active()
        except Exception as exc:
            log.error("promotion to active failed: %s; standing by", type(exc).__name__)
            await self._demote()
            with contextlib.suppress(Exception):
                await self.backend.release(self.settings.node_id, term)
            return
        log.info("this node is now the active node (term %d)", term)

    async def _demote(self) -> None:
        self.backend.fence(None)  # first: nothing more is written under the old term
        was_active = self.active
        self.active = False
        self.term = None
        if was_active:
            self.transitions += 1
        try:
            self.applied_index = await self.feed.current_index()
        except StrongroomError:
            pass
        await self.target.become_standby()
        self._heard = time.monotonic()

    # ----- the change feed -------------------------------------------------------------
    async def _follow(self) -> None:
        poll = self.settings.feed_poll
        while True:
            try:
                if self.active:
                    # the active is the only writer: its own caches are coherent
                    self.applied_index = await self.feed.current_index()
                    self._heard = time.monotonic()
                    await asyncio.sleep(poll)
                    continue
                await self.feed.wait(self.applied_index, poll)
                await self._catch_up()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("standby: following the change feed: %s", type(exc).__name__)
                await asyncio.sleep(poll)

    async def _catch_up(self) -> None:
        async with self._catching_up:
            while True:
                try:
                    batch = await self.feed.changes_since(self.applied_index)
                except FeedGap as gap:
                    log.warning("standby: change feed gap; dropping every cache")
                    await self.target.invalidate_all()
                    self.applied_index = gap.index
                    break
                if batch.index == self.applied_index:
                    break
                if not self.active:
                    await self.target.invalidate(batch.keys)
                self.applied_index = batch.index
            self._heard = time.monotonic()

    def status(self) -> dict[str, object]:
        return {
            "node_id": self.node_id,
            "active": self.active,
            "term": self.term,
            "applied_index": self.applied_index,
            "feed_age": max(0.0, time.monotonic() - self._heard),
        }
