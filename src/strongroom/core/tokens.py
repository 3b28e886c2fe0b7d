"""The token store: minting, lookup, renewal and revocation of service tokens.

Security decisions:
- A token ID is ``hvs.`` plus 24 base62 characters from :mod:`secrets` (~143 bits).
- Storage never holds a token ID: records are keyed by HMAC-SHA256(salt, ID), the salt
  lives behind the barrier, so a copy of the database yields no usable token.
- Expiry is checked on every lookup against the clock, so an expired token stops
  working at once; the sweeper only reclaims storage and revokes child trees.
- Use counts are spent with a guarded read-modify-write in storage (compare-and-swap,
  :func:`strongroom.framework.swap`), never on a copy in memory: however many requests,
  worker processes or nodes use a token with ``num_uses: N`` at once, at most N succeed.
- Revocation first marks each token of the tree ``revoking`` (top-down), a stored state
  every lookup refuses, so the whole tree stops working at once. Minting a child guards
  the parent's record in the same transaction, so once a token is marked its list of
  children is final and no child minted during the walk can survive. The walk then
  deletes children before parents (re-listing until none remain), the parent last.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import secrets
import string
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, fields, replace
from typing import Any

import orjson

from strongroom.clock import Clock
from strongroom.core.batch_tokens import BATCH_KEY, BATCH_PREFIX, BatchClaims, BatchSealer
from strongroom.errors import InvalidRequest, PermissionDenied
from strongroom.framework import KEEP, KeyLocks, Swap, format_time, remember, swap
from strongroom.logical import Storage, StorageOp, TokenInfo

__all__ = ["TokenEntry", "TokenStore", "new_token_id"]

_BASE62 = string.ascii_letters + string.digits
_CACHE_LIMIT = 50_000


def _random_base62(length: int) -> str:
    return "".join(secrets.choice(_BASE62) for _ in range(length))


def new_token_id() -> str:
    return "hvs." + _random_base62(24)


@dataclass(frozen=True, slots=True)
class TokenEntry:
    id_hash: str = field(repr=False)
    accessor: str
    policies: tuple[str, ...]
    parent_hash: str = field(default="", repr=False)
    meta: dict[str, str] = field(default_factory=dict)
    display_name: str = ""
    num_uses: int = 0
    creation_time: float = 0.0
    creation_ttl: int = 0
    expire_time: float = 0.0  # 0: never expires
    explicit_max_ttl: int = 0
    max_deadline: float = 0.0  # 0: no upper bound on renewals
    period: int = 0
    renewable: bool = True
    path: str = "auth/token/create"
    entity_id: str = ""
    orphan: bool = False
    type: str = "service"
    cubbyhole_id: str = field(default="", repr=False)
    internal: dict[str, Any] = field(default_factory=dict, repr=False)
    # set when revocation starts: every lookup refuses the token from then on
    revoking: bool = False
    last_renewal: float = 0.0

    @property
    def lease_owner(self) -> str:
        """The stored token whose revocation revokes the leases this token creates: itself,
        or for a batch token (never stored) its parent ("" for an orphan batch token)."""
        return self.parent_hash if self.type == "batch" else self.id_hash

    def live(self, now: float) -> bool:
        return not self.revoking and not self.expired(now)

    @property
    def is_root(self) -> bool:
        return "root" in self.policies

    def expired(self, now: float) -> bool:
        return self.expire_time != 0.0 and now >= self.expire_time

    def ttl(self, now: float) -> int:
        if self.expire_time == 0.0:
            return 0
        return max(0, round(self.expire_time - now))

    def info(self) -> TokenInfo:
        return TokenInfo(
            accessor=self.accessor,
            policies=self.policies,
            display_name=self.display_name,
            entity_id=self.entity_id,
            metadata=self.meta,
            cubbyhole_id=self.cubbyhole_id,
            token_type=self.type,
            creation_time=self.creation_time,
        )

    def encode(self) -> bytes:
        # field by field: dataclasses.asdict deep-copies every member (~10x slower), and
        # this runs on every use of a limited-use token and every token creation
        return orjson.dumps({name: getattr(self, name) for name in _ENTRY_FIELDS})

    @classmethod
    def decode(cls, raw: bytes) -> TokenEntry:
        doc = orjson.loads(raw)
        doc["policies"] = tuple(doc["policies"])
        return cls(**doc)


_ENTRY_FIELDS = tuple(f.name for f in fields(TokenEntry))


def rfc3339(ts: float) -> str:
    """Vault's time format (RFC 3339 in UTC, nanosecond precision)."""
    return format_time(ts)


RevokeHook = Callable[[TokenEntry], Awaitable[None]]

# lease/<lease id> -> token hash: every service token is a lease under its creation path
_LEASE_PREFIX = "lease/"
# {prefix: revocations in progress}: token creation under a prefix being revoked is refused
_FENCE_KEY = "fence"
# sys/token/ keys nothing in this process caches (a standby ignores their changes)
_UNCACHED = ("accessor/", "parent/", _LEASE_PREFIX, "roles/")


def lease_id_of(entry: TokenEntry) -> str:
    """The token's lease ID, as Vault's: its creation path, then ``h`` + its salted hash."""
    return f"{entry.path.rstrip('/')}/h{entry.id_hash}"


def _check_fence(raw: bytes | None, lease_id: str) -> None:
    if raw is not None and any(lease_id.startswith(prefix) for prefix in orjson.loads(raw)):
        raise PermissionDenied("tokens under this path are being revoked")


class TokenStore:
    """Owns the ``sys/token/`` storage view.

    Layout: ``id/<hash>`` → entry, ``accessor/<hash>`` → {hash, accessor},
    ``parent/<parent hash>/<child hash>`` → "" (the revocation tree).
    """

    def __init__(self, storage: Storage, clock: Clock, salt: bytes) -> None:
        self._storage = storage
        self._clock = clock
        self._salt = salt
        # keyed once: copying a keyed HMAC state is several times cheaper than hmac.digest,
        # which resolves the digest and keys a fresh context on every call
        self._id_mac = hmac.new(salt, digestmod=hashlib.sha256)
        self._cache: dict[str, TokenEntry] = {}
        self._expiry: list[tuple[float, str]] = []
        self._revoke_hooks: list[RevokeHook] = []
        # per-token: spends of one token in this process queue instead of colliding in
        # storage (the storage guard is what makes them atomic across processes)
        self._use_locks = KeyLocks()
        self._batch = BatchSealer(storage)

    @property
    def storage(self) -> Storage:
        """The ``sys/token/`` view (for :mod:`strongroom.core.token_leases`)."""
        return self._storage

    @property
    def clock(self) -> Clock:
        return self._clock

    def on_revoke(self, hook: RevokeHook) -> None:
        self._revoke_hooks.append(hook)

    def hash_id(self, token: str) -> str:
        mac = self._id_mac.copy()
        mac.update(token.encode())
        return mac.hexdigest()

    def _accessor_key(self, accessor: str) -> str:
        digest = hmac.new(self._salt, b"accessor:" + accessor.encode(), hashlib.sha256)
        return "accessor/" + digest.hexdigest()

    # ----- loading -----------------------------------------------------------------
    async def load_schedule(self) -> None:
        """Rebuild the in-memory expiry schedule (called at unseal).

        Also gives tokens stored before tokens were leases their lease index entry, and
        drops the revoke-prefix fence a crash may have left (no revocation runs yet).
        """
        self._cache.clear()
        self._batch.forget()
        self._expiry = []
        await self._storage.delete(_FENCE_KEY)
        for name in await self._storage.list("id/"):
            raw = await self._storage.get("id/" + name)
            if raw is None:
                continue
            entry = TokenEntry.decode(raw)
            if entry.expire_time:
                self._expiry.append((entry.expire_time, entry.id_hash))
            index = _LEASE_PREFIX + lease_id_of(entry)
            if await self._storage.get(index) is None:
                await self._storage.put(index, entry.id_hash.encode())
        heapq.heapify(self._expiry)

    # ----- create ------------------------------------------------------------------
    async def create(
        self,
        *,
        policies: tuple[str, ...],
        parent: TokenEntry | None,
        meta: dict[str, str] | None = None,
        display_name: str = "token",
        ttl: int = 0,
        explicit_max_ttl: int = 0,
        max_ttl: int = 0,
        period: int = 0,
        num_uses: int = 0,
        renewable: bool = True,
        path: str = "auth/token/create",
        entity_id: str = "",
        token_id: str | None = None,
        internal: dict[str, Any] | None = None,
        token_type: str = "service",  # noqa: S107 (a token kind)
    ) -> tuple[str, TokenEntry]:
        """Mint a token. ``ttl`` 0 means no expiry (callers apply defaults first).

        ``max_ttl`` bounds renewals from the creation time (0: none). Returns the token ID,
        which exists only in this return value and the client's hands. A ``batch`` token
        is sealed, not stored (callers enforce Vault's batch rules first).
        """
        now = self._clock.now()
        limits = [v for v in (explicit_max_ttl, max_ttl) if v > 0]
        max_deadline = now + min(limits) if limits else 0.0
        expire_time = now + ttl if ttl > 0 else 0.0
        if max_deadline and (expire_time == 0.0 or expire_time > max_deadline):
            expire_time = max_deadline
        if token_type == "batch":  # noqa: S105 (a token kind)
            claims = BatchClaims(
                policies=policies,
                parent_hash=parent.id_hash if parent is not None else "",
                meta=dict(meta or {}),
                display_name=display_name,
                creation_time=now,
                creation_ttl=ttl,
                expire_time=expire_time,
                path=path,
                entity_id=entity_id,
                internal=dict(internal or {}),
            )
            if parent is not None and not await self.still_live(parent.id_hash):
                raise PermissionDenied("parent token is revoked or expired")
            batch = await self._batch.seal(claims)
            return batch, self._batch_entry(batch, claims)
        token = token_id or new_token_id()
        id_hash = self.hash_id(token)
        entry = TokenEntry(
            id_hash=id_hash,
            accessor=_random_base62(24),
            policies=policies,
            parent_hash=parent.id_hash if parent is not None else "",
            meta=dict(meta or {}),
            display_name=display_name,
            num_uses=num_uses,
            creation_time=now,
            creation_ttl=ttl,
            expire_time=expire_time,
            explicit_max_ttl=explicit_max_ttl,
            max_deadline=max_deadline,
            period=period,
            renewable=renewable,
            path=path,
            entity_id=entity_id,
            orphan=parent is None,
            cubbyhole_id=secrets.token_hex(16),
            internal=dict(internal or {}),
        )
        lease_id = lease_id_of(entry)
        ops = [
            StorageOp("id/" + id_hash, None, check=True),  # the ID is new, atomically
            StorageOp("id/" + id_hash, entry.encode()),
            StorageOp(
                self._accessor_key(entry.accessor),
                orjson.dumps({"hash": id_hash, "accessor": entry.accessor}),
            ),
            StorageOp(_LEASE_PREFIX + lease_id, id_hash.encode()),
        ]
        if parent is None:
            await self._create_orphan(ops, id_hash if token_id else "", lease_id)
        else:
            ops.append(StorageOp(f"parent/{parent.id_hash}/{id_hash}", b""))
            await self._create_child(parent, ops, id_hash if token_id else "", lease_id)
        self._remember(entry)
        return token, entry

    async def _new_id_free(self, id_hash: str) -> None:
        """For a caller-chosen ID ("" for a random one, which the transaction's absence
        guard alone covers): a clear error if it is taken."""
        if id_hash and await self._storage.get("id/" + id_hash) is not None:
            raise InvalidRequest("cannot create a token with a duplicate ID")

    async def _create_orphan(self, ops: list[StorageOp], id_hash: str, lease_id: str) -> None:
        """Commit unless a revoke-prefix covering the new token's lease is under way (the
        transaction guards the fence record it checked)."""

        async def change(raw: bytes | None) -> Swap[None]:
            _check_fence(raw, lease_id)
            await self._new_id_free(id_hash)
            return Swap(KEEP, None, ops)

        await swap(self._storage, _FENCE_KEY, change)

    async def _create_child(
        self, parent: TokenEntry, ops: list[StorageOp], id_hash: str, lease_id: str
    ) -> None:
        """Commit a child only while its parent is live: the transaction guards the
        parent's record, so a parent marked ``revoking`` meanwhile makes it fail (and
        the fence record, as for orphans)."""
        now = self._clock.now()

        async def change(raw: bytes | None) -> Swap[None]:
            current = None if raw is None else TokenEntry.decode(raw)
            if current is None or not current.live(now):
                self._cache.pop(parent.id_hash, None)
                raise PermissionDenied("parent token is revoked or expired")
            fence = await self._storage.get(_FENCE_KEY)
            _check_fence(fence, lease_id)
            await self._new_id_free(id_hash)
            return Swap(KEEP, None, [StorageOp(_FENCE_KEY, fence, check=True), *ops])

        await swap(self._storage, "id/" + parent.id_hash, change)

    def _remember(self, entry: TokenEntry) -> None:
        remember(self._cache, entry.id_hash, entry, _CACHE_LIMIT)
        if entry.expire_time:
            heapq.heappush(self._expiry, (entry.expire_time, entry.id_hash))

    # ----- lookup ------------------------------------------------------------------
    async def _entry_by_hash(self, id_hash: str) -> TokenEntry | None:
        entry = self._cache.get(id_hash)
        if entry is not None:
            return entry
        raw = await self._storage.get("id/" + id_hash)
        if raw is None:
            return None
        return remember(self._cache, id_hash, TokenEntry.decode(raw), _CACHE_LIMIT)

    async def lookup(self, token: str, *, in_last_use: bool = False) -> TokenEntry | None:
        """The live entry for a token ID, or None (unknown, revoked or expired).

        A limited-use token in its last request is refused, except with ``in_last_use``,
        which only code already behind core's gate for that very request may pass (the
        token backend and sys looking up their caller).
        """
        if token.startswith(BATCH_PREFIX):
            return await self._lookup_batch(token)
        if not token or len(token) > 256:
            return None
        entry = await self._entry_by_hash(self.hash_id(token))
        if entry is None or not entry.live(self._clock.now()):
            return None
        if entry.num_uses < 0 and not in_last_use:
            return None
        return entry

    async def _lookup_batch(self, token: str) -> TokenEntry | None:
        """A batch token's entry while it is unexpired and its parent (if any) is live."""
        claims = await self._batch.open(token)
        if claims is None:
            return None
        now = self._clock.now()
        if claims.expire_time and now >= claims.expire_time:
            return None
        if claims.parent_hash:
            parent = await self._entry_by_hash(claims.parent_hash)
            if parent is None or not parent.live(now):
                return None
        return self._batch_entry(token, claims)

    def _batch_entry(self, token: str, claims: BatchClaims) -> TokenEntry:
        return TokenEntry(
            id_hash=self.hash_id(token),
            accessor="",
            policies=claims.policies,
            parent_hash=claims.parent_hash,
            meta=claims.meta,
            display_name=claims.display_name,
            creation_time=claims.creation_time,
            creation_ttl=claims.creation_ttl,
            expire_time=claims.expire_time,
            renewable=False,
            path=claims.path,
            entity_id=claims.entity_id,
            orphan=not claims.parent_hash,
            type="batch",
            internal=claims.internal,
        )

    async def still_live(self, id_hash: str) -> bool:
        """Whether the stored token is neither revoked, being revoked, nor expired (read
        from storage, not from this process's cache)."""
        raw = await self._storage.get("id/" + id_hash)
        return raw is not None and TokenEntry.decode(raw).live(self._clock.now())

    async def lookup_accessor(self, accessor: str) -> TokenEntry | None:
        if not accessor or len(accessor) > 256:
            return None
        raw = await self._storage.get(self._accessor_key(accessor))
        if raw is None:
            return None
        ref = orjson.loads(raw)
        if not hmac.compare_digest(ref["accessor"], accessor):
            return None
        entry = await self._entry_by_hash(ref["hash"])
        if entry is None or not entry.live(self._clock.now()):
            return None
        return entry

    async def list_accessors(self) -> list[str]:
        out = []
        for name in await self._storage.list("accessor/"):
            raw = await self._storage.get("accessor/" + name)
            if raw is not None:
                out.append(orjson.loads(raw)["accessor"])
        return sorted(out)

    # ----- use and renew -----------------------------------------------------------
    async def use(self, entry: TokenEntry) -> TokenEntry | None:
        """Spend one use of a limited-use token, atomically in storage.

        Returns the entry to revoke once the request is done (its last use), else None.

        Raises:
            PermissionDenied: no use is left (another request spent the last one), or the
                token was revoked or expired meanwhile.
        """
        if entry.num_uses <= 0:
            return None
        now = self._clock.now()

        async def change(raw: bytes | None) -> Swap[tuple[TokenEntry, bool]]:
            current = None if raw is None else TokenEntry.decode(raw)
            if current is None or not current.live(now) or current.num_uses < 0:
                raise PermissionDenied()
            if current.num_uses == 0:
                return Swap(KEEP, (current, False))
            remaining = current.num_uses - 1
            updated = replace(current, num_uses=-1 if remaining == 0 else remaining)
            return Swap(updated.encode(), (updated, remaining == 0))

        try:
            async with self._use_locks.hold(entry.id_hash):
                updated, last = await swap(self._storage, "id/" + entry.id_hash, change)
        except PermissionDenied:
            self._cache.pop(entry.id_hash, None)  # stale: the next lookup reads storage
            raise
        self._cache[entry.id_hash] = updated
        return updated if last else None

    async def renew(self, entry: TokenEntry, increment: int) -> tuple[TokenEntry, list[str]]:
        """Extend a token's TTL within its bounds. Returns the new entry and warnings.

        A guarded read-modify-write: a renewal never undoes a concurrent revocation mark
        or spent use.
        """
        if not entry.renewable:
            raise InvalidRequest("lease is not renewable")
        if entry.expire_time == 0.0:
            return entry, []
        now = self._clock.now()

        async def change(raw: bytes | None) -> Swap[tuple[TokenEntry, list[str]]]:
            current = None if raw is None else TokenEntry.decode(raw)
            if current is None or current.revoking:
                raise InvalidRequest("token is revoked")
            warnings: list[str] = []
            if current.period:
                ttl = current.period
            else:
                ttl = increment if increment > 0 else current.creation_ttl
            expire = now + ttl
            if current.max_deadline and expire > current.max_deadline:
                expire = current.max_deadline
                warnings.append(
                    f"TTL of {ttl}s exceeded the effective max_ttl of "
                    f"{int(current.max_deadline - now)}s; TTL value is capped accordingly"
                )
            updated = replace(current, expire_time=expire, last_renewal=now)
            return Swap(updated.encode(), (updated, warnings))

        updated, warnings = await swap(self._storage, "id/" + entry.id_hash, change)
        self._remember(updated)
        return updated, warnings

    # ----- revoke ------------------------------------------------------------------
    async def _mark_revoking(self, id_hash: str) -> bool:
        """Store the ``revoking`` mark on a token. False if the token is already gone."""

        async def change(raw: bytes | None) -> Swap[TokenEntry | None]:
            if raw is None:
                return Swap(KEEP, None)
            current = TokenEntry.decode(raw)
            if current.revoking:
                return Swap(KEEP, current)
            marked = replace(current, revoking=True)
            return Swap(marked.encode(), marked)

        marked = await swap(self._storage, "id/" + id_hash, change)
        if marked is None:
            self._cache.pop(id_hash, None)
            return False
        self._cache[id_hash] = marked  # refused by every lookup from now on
        return True

    async def _mark_tree(self, root_hash: str) -> list[str]:
        """Mark a token and all its descendants, top-down. Returns them parents first.

        A marked token can mint no more children (creation guards the parent's record),
        so the children listed after marking a token are all it will ever have.
        """
        order: list[str] = []
        seen: set[str] = set()
        stack = [root_hash]
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            if not await self._mark_revoking(current):
                continue
            order.append(current)
            for child in await self._storage.list(f"parent/{current}/"):
                stack.append(child.rstrip("/"))
        return order

    async def revoke_tree(self, entry: TokenEntry) -> None:
        """Revoke a token and every descendant: mark them all, then delete children
        before parents (re-listing each token's children until none remain), the given
        token last."""
        await self.revoke_hash_tree(entry.id_hash)

    async def revoke_hash_tree(self, id_hash: str) -> None:
        order = await self._mark_tree(id_hash)
        for current in reversed(order):
            while children := await self._storage.list(f"parent/{current}/"):
                for child in children:  # only if something bypassed the mark; never left
                    await self.revoke_hash_tree(child.rstrip("/"))
            await self._revoke_one(current)

    async def revoke_orphan(self, entry: TokenEntry) -> None:
        """Revoke one token; its children become orphans (re-listed until none remain)."""
        if not await self._mark_revoking(entry.id_hash):
            return
        while children := await self._storage.list(f"parent/{entry.id_hash}/"):
            for child in children:
                await self._orphan(entry.id_hash, child.rstrip("/"))
        await self._revoke_one(entry.id_hash)

    async def _orphan(self, parent_hash: str, child_hash: str) -> None:
        index = StorageOp(f"parent/{parent_hash}/{child_hash}")

        async def change(raw: bytes | None) -> Swap[TokenEntry | None]:
            if raw is None:
                return Swap(KEEP, None, [index])
            orphaned = replace(TokenEntry.decode(raw), parent_hash="", orphan=True)
            return Swap(orphaned.encode(), orphaned, [index])

        orphaned = await swap(self._storage, "id/" + child_hash, change)
        if orphaned is None:
            self._cache.pop(child_hash, None)
        else:
            self._cache[child_hash] = orphaned

    async def _revoke_one(self, id_hash: str) -> None:
        raw = await self._storage.get("id/" + id_hash)
        if raw is None:
            self._cache.pop(id_hash, None)
            return
        entry = TokenEntry.decode(raw)
        for hook in self._revoke_hooks:
            await hook(entry)
        ops = [
            StorageOp("id/" + id_hash),
            StorageOp(self._accessor_key(entry.accessor)),
            StorageOp(_LEASE_PREFIX + lease_id_of(entry)),
        ]
        if entry.parent_hash:
            ops.append(StorageOp(f"parent/{entry.parent_hash}/{id_hash}"))
        await self._storage.transaction(ops)
        self._cache.pop(id_hash, None)

    async def sweep(self) -> int:
        """Revoke tokens whose expiry has passed (and their trees). Returns how many."""
        now = self._clock.now()
        count = 0
        while self._expiry and self._expiry[0][0] <= now:
            _, id_hash = heapq.heappop(self._expiry)
            entry = await self._entry_by_hash(id_hash)
            if entry is None or not entry.expired(now):
                continue  # revoked already, or renewed (a newer heap item exists)
            await self.revoke_tree(entry)
            count += 1
        return count

    def forget_cache(self) -> None:
        self._cache.clear()

    def cached(self, token: str) -> bool:
        """Whether this process holds ``token``'s entry in its cache (tests, diagnostics)."""
        return self.hash_id(token) in self._cache

    def forget_keys(self, keys: Iterable[str]) -> None:
        """An HA standby drops what these changed keys of the ``sys/token/`` view (relative
        to it) may have made stale: a token's entry (``id/<hash>``, the cache's own key) or
        the batch-token key; the index keys (``accessor/``, ``parent/``, ``lease/``, the
        revocation fence, roles) are read from storage each time and cache nothing. A key
        of any other shape drops the whole cache (correctness before speed)."""
        for key in keys:
            if key.startswith("id/"):
                self._cache.pop(key[3:], None)
            elif key == BATCH_KEY:
                self._batch.forget()
            elif not key.startswith(_UNCACHED) and key != _FENCE_KEY:
                self._cache.clear()
                self._batch.forget()
