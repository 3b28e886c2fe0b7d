"""Tokens are leases: what ``sys/leases/*`` sees of the token store.

As in Vault, every service token is a lease under the path that created it:
``auth/userpass/login/alice/h<salted hash>``, ``auth/token/create/h<salted hash>``. The token
store keeps one index key per token (``lease/<lease id>`` → token hash, written in the
token's own creation transaction and deleted with it), so the lease is exactly as durable
as the token and costs a login no extra write. ``sys/leases`` lists, looks up and revokes
token leases through this module; revoking one revokes the token's whole tree and the
leases the tree created. Renewal goes through ``auth/token/renew*``, as in Vault.

Revoke-prefix first records the prefix in the store's fence record: token creation
checks that record and guards it in its own transaction, so no token under the prefix
can be committed while the revocation lists and revokes (a login racing a revoke-prefix
of its mount either lands before the listing, and is revoked, or is refused). The fence
is lifted once the revocation is done.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from strongroom.core.tokens import TokenEntry, TokenStore
from strongroom.framework import Swap, format_time, list_all, swap

__all__ = ["TokenLeases"]

_LEASE_PREFIX = "lease/"
_FENCE_KEY = "fence"
_CONCURRENCY = 16  # token trees revoked at once by a revoke-prefix


class TokenLeases:
    """The token store's leases, for ``sys/leases`` (and mount disabling)."""

    def __init__(self, store: TokenStore) -> None:
        self._store = store

    def _is_token_lease(self, lease_id: str) -> bool:
        leaf = lease_id.rsplit("/", 1)[-1]
        return leaf.startswith("h") and ".." not in lease_id.split("/")

    async def entry(self, lease_id: str) -> TokenEntry | None:
        """The token behind a lease ID, or None (not a token lease, or gone)."""
        if not lease_id or not self._is_token_lease(lease_id) or lease_id.startswith("/"):
            return None
        storage = self._store.storage
        raw = await storage.get(_LEASE_PREFIX + lease_id)
        if raw is None:
            return None
        found = await storage.get("id/" + raw.decode())
        return None if found is None else TokenEntry.decode(found)

    def describe(self, lease_id: str, entry: TokenEntry) -> dict[str, Any]:
        """``sys/leases/lookup`` data for a token lease (Vault's keys)."""
        now = self._store.clock.now()
        return {
            "id": lease_id,
            "issue_time": format_time(entry.creation_time),
            "expire_time": format_time(entry.expire_time) if entry.expire_time else None,
            "last_renewal": format_time(entry.last_renewal) if entry.last_renewal else None,
            "renewable": entry.renewable and entry.expire_time != 0.0,
            "ttl": entry.ttl(now),
        }

    async def list_prefix(self, prefix: str) -> list[str]:
        return await self._store.storage.list(_LEASE_PREFIX + prefix)

    async def ids_with_prefix(self, prefix: str) -> list[str]:
        folder = prefix[: prefix.rfind("/") + 1]
        names = await list_all(self._store.storage, _LEASE_PREFIX + folder)
        return [folder + name for name in names if (folder + name).startswith(prefix)]

    async def count(self) -> int:
        return len(await list_all(self._store.storage, _LEASE_PREFIX))

    async def revoke(self, lease_id: str) -> bool:
        """Revoke the token (and its tree) behind a lease. False: no such token lease."""
        entry = await self.entry(lease_id)
        if entry is None:
            return False
        await self._store.revoke_hash_tree(entry.id_hash)
        return True

    async def revoke_prefix(self, prefix: str) -> int:
        """Revoke every token whose lease ID starts with ``prefix`` (and their trees).

        While it runs, no token under ``prefix`` can be created. Returns how many token
        leases were found and revoked.
        """
        await self._fence(prefix, +1)
        revoked = 0
        try:
            # re-listed until empty: a creation that committed before the fence went up
            # but after a listing is caught by the next one
            while ids := await self.ids_with_prefix(prefix):
                revoked += await self._revoke_all(ids)
        finally:
            await self._fence(prefix, -1)
        return revoked

    async def _revoke_all(self, ids: list[str]) -> int:
        """Revoke the token trees of ``ids``, up to ``_CONCURRENCY`` at once."""
        pending = iter(ids)

        async def worker() -> int:
            done = 0
            for lease_id in pending:  # one shared iterator: each lease once
                raw = await self._store.storage.get(_LEASE_PREFIX + lease_id)
                if raw is not None:
                    await self._store.revoke_hash_tree(raw.decode())
                    done += 1
                await self._store.storage.delete(_LEASE_PREFIX + lease_id)
            return done

        workers = min(_CONCURRENCY, len(ids))
        return sum(await asyncio.gather(*(worker() for _ in range(workers))))

    async def _fence(self, prefix: str, step: int) -> None:
        async def change(raw: bytes | None) -> Swap[None]:
            fences: dict[str, int] = orjson.loads(raw) if raw is not None else {}
            count = fences.get(prefix, 0) + step
            if count > 0:
                fences[prefix] = count
            else:
                fences.pop(prefix, None)
            return Swap(orjson.dumps(fences) if fences else None, None)

        await swap(self._store.storage, _FENCE_KEY, change)
