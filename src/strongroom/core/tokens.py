"""The token store: minting, lookup, renewal and revocation of service tokens.

Security decisions:
- A token ID is ``hvs.`` plus 24 base62 characters from :mod:`secrets` (~143 bits).
- Storage never holds a token ID: records are keyed by HMAC-SHA256(salt, ID), the salt
  lives behind the barrier, so a copy of the database yields no usable token.
- Expiry is checked on every lookup against the clock, so an expired token stops
  working at once; the sweeper only reclaims storage and revokes child trees.
- Revocation removes the whole child tree (children first), each token atomically.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import secrets
import string
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import orjson

from strongroom.clock import Clock
from strongroom.errors import InvalidRequest
from strongroom.framework import format_time, remember
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
        )

    def encode(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def decode(cls, raw: bytes) -> TokenEntry:
        doc = orjson.loads(raw)
        doc["policies"] = tuple(doc["policies"])
        return cls(**doc)


def rfc3339(ts: float) -> str:
    """Vault's time format (RFC 3339 in UTC, nanosecond precision)."""
    return format_time(ts)


RevokeHook = Callable[[TokenEntry], Awaitable[None]]


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
        """Rebuild the in-memory expiry schedule (called at unseal)."""
        self._cache.clear()
        self._expiry = []
        for name in await self._storage.list("id/"):
            raw = await self._storage.get("id/" + name)
            if raw is None:
                continue
            entry = TokenEntry.decode(raw)
            if entry.expire_time:
                self._expiry.append((entry.expire_time, entry.id_hash))
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
    ) -> tuple[str, TokenEntry]:
        """Mint a token. ``ttl`` 0 means no expiry (callers apply defaults first).

        ``max_ttl`` bounds renewals from the creation time (0: none). Returns the token ID,
        which exists only in this return value and the client's hands.
        """
        now = self._clock.now()
        token = token_id or new_token_id()
        id_hash = self.hash_id(token)
        if await self._storage.get("id/" + id_hash) is not None:
            raise InvalidRequest("cannot create a token with a duplicate ID")
        limits = [v for v in (explicit_max_ttl, max_ttl) if v > 0]
        max_deadline = now + min(limits) if limits else 0.0
        expire_time = now + ttl if ttl > 0 else 0.0
        if max_deadline and (expire_time == 0.0 or expire_time > max_deadline):
            expire_time = max_deadline
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
        ops = [
            StorageOp("id/" + id_hash, entry.encode()),
            StorageOp(
                self._accessor_key(entry.accessor),
                orjson.dumps({"hash": id_hash, "accessor": entry.accessor}),
            ),
        ]
        if parent is not None:
            ops.append(StorageOp(f"parent/{parent.id_hash}/{id_hash}", b""))
        await self._storage.transaction(ops)
        self._remember(entry)
        return token, entry

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
        if not token or len(token) > 256:
            return None
        entry = await self._entry_by_hash(self.hash_id(token))
        if entry is None or entry.expired(self._clock.now()):
            return None
        if entry.num_uses < 0 and not in_last_use:
            return None
        return entry

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
        if entry is None or entry.expired(self._clock.now()):
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
        """Count one use of a limited-use token. Returns the entry to revoke once the
        request is done (its last use), else None."""
        if entry.num_uses <= 0:
            return None
        remaining = entry.num_uses - 1
        if remaining == 0:
            updated = replace(entry, num_uses=-1)  # -1: in its last request
            await self._storage.put("id/" + entry.id_hash, updated.encode())
            self._cache[entry.id_hash] = updated
            return updated
        updated = replace(entry, num_uses=remaining)
        await self._storage.put("id/" + entry.id_hash, updated.encode())
        self._cache[entry.id_hash] = updated
        return None

    async def renew(self, entry: TokenEntry, increment: int) -> tuple[TokenEntry, list[str]]:
        """Extend a token's TTL within its bounds. Returns the new entry and warnings."""
        if not entry.renewable:
            raise InvalidRequest("lease is not renewable")
        if entry.expire_time == 0.0:
            return entry, []
        now = self._clock.now()
        warnings: list[str] = []
        if entry.period:
            ttl = entry.period
        else:
            ttl = increment if increment > 0 else entry.creation_ttl
        expire = now + ttl
        if entry.max_deadline and expire > entry.max_deadline:
            expire = entry.max_deadline
            warnings.append(
                f"TTL of {ttl}s exceeded the effective max_ttl of "
                f"{int(entry.max_deadline - now)}s; TTL value is capped accordingly"
            )
        updated = replace(entry, expire_time=expire)
        await self._storage.put("id/" + entry.id_hash, updated.encode())
        self._remember(updated)
        return updated, warnings

    # ----- revoke ------------------------------------------------------------------
    async def revoke_tree(self, entry: TokenEntry) -> None:
        """Revoke a token and every descendant, deepest first."""
        order: list[str] = []
        stack = [entry.id_hash]
        while stack:
            current = stack.pop()
            order.append(current)
            for child in await self._storage.list(f"parent/{current}/"):
                stack.append(child.rstrip("/"))
        for id_hash in reversed(order):
            await self._revoke_one(id_hash)

    async def revoke_orphan(self, entry: TokenEntry) -> None:
        """Revoke one token; its children become orphans."""
        children = await self._storage.list(f"parent/{entry.id_hash}/")
        for child in children:
            child_entry = await self._entry_by_hash(child)
            if child_entry is not None:
                orphaned = replace(child_entry, parent_hash="", orphan=True)
                await self._storage.put("id/" + child, orphaned.encode())
                self._cache[child] = orphaned
        await self._storage.transaction(
            [StorageOp(f"parent/{entry.id_hash}/{child}") for child in children]
        )
        await self._revoke_one(entry.id_hash)

    async def _revoke_one(self, id_hash: str) -> None:
        raw = await self._storage.get("id/" + id_hash)
        self._cache.pop(id_hash, None)
        if raw is None:
            return
        entry = TokenEntry.decode(raw)
        for hook in self._revoke_hooks:
            await hook(entry)
        ops = [StorageOp("id/" + id_hash), StorageOp(self._accessor_key(entry.accessor))]
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
