"""Batch tokens: Vault's lightweight tokens, encrypted blobs that storage never holds.

A batch token is ``hvb.`` followed by base64url(nonce || AES-256-GCM(entry)): everything the
token grants (policies, metadata, entity, expiry, parent) travels inside it, sealed under a
key kept behind the barrier (``sys/token/batch-key``, made once, shared by every node and
worker process that reads the same storage). Minting one writes nothing, so it costs no
storage commit; the price is Vault's: a batch token cannot be renewed, revoked on its own,
given uses, a period or an explicit max TTL, or create tokens; it has no accessor and no
cubbyhole. It dies at its expiry, or with its parent: a batch token with a parent works only
while the parent is live (checked on every use), so revoking the parent revokes it.

Security decisions: a tampered, truncated or foreign blob fails authentication and is
treated as an unknown token; the associated data binds blobs to this purpose (a ciphertext
made by this key for anything else never opens as a token). Batch tokens are not secret
from their holder (they carry their own policies) but are from everyone else, as any token.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.errors import StorageConflict
from strongroom.framework import nonce_bytes
from strongroom.logical import Storage, StorageOp

__all__ = ["BATCH_PREFIX", "BatchClaims", "BatchSealer"]

BATCH_PREFIX = "hvb."
BATCH_KEY = "batch-key"  # in the sys/token/ view
_KEY = BATCH_KEY
_AAD = b"strongroom batch token v1"
_NONCE = 12
_MAX_LENGTH = 4096


@dataclass(frozen=True, slots=True)
class BatchClaims:
    """What a batch token carries."""

    policies: tuple[str, ...]
    parent_hash: str
    meta: dict[str, str]
    display_name: str
    creation_time: float
    creation_ttl: int
    expire_time: float
    path: str
    entity_id: str
    internal: dict[str, Any]

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "p": list(self.policies),
                "ph": self.parent_hash,
                "m": self.meta,
                "dn": self.display_name,
                "ct": self.creation_time,
                "ttl": self.creation_ttl,
                "et": self.expire_time,
                "path": self.path,
                "e": self.entity_id,
                "i": self.internal,
            }
        )

    @classmethod
    def decode(cls, raw: bytes) -> BatchClaims:
        doc = orjson.loads(raw)
        return cls(
            policies=tuple(doc["p"]),
            parent_hash=doc["ph"],
            meta=dict(doc["m"]),
            display_name=doc["dn"],
            creation_time=float(doc["ct"]),
            creation_ttl=int(doc["ttl"]),
            expire_time=float(doc["et"]),
            path=doc["path"],
            entity_id=doc["e"],
            internal=dict(doc["i"]),
        )


class BatchSealer:
    """Seals and opens batch tokens with the key stored in the token store's view."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._aead: AESGCM | None = None

    def forget(self) -> None:
        self._aead = None

    async def _cipher(self) -> AESGCM:
        if self._aead is not None:
            return self._aead
        raw = await self._storage.get(_KEY)
        if raw is None:
            candidate = secrets.token_bytes(32)
            try:  # first use: whichever node or process stores the key first wins
                await self._storage.transaction(
                    [StorageOp(_KEY, None, check=True), StorageOp(_KEY, candidate)]
                )
                raw = candidate
            except StorageConflict:
                raw = await self._storage.get(_KEY)
        if raw is None or len(raw) != 32:
            raise StorageConflict("batch token key unavailable; try again")
        self._aead = AESGCM(raw)
        return self._aead

    async def seal(self, claims: BatchClaims) -> str:
        aead = await self._cipher()
        nonce = nonce_bytes(_NONCE)
        blob = nonce + aead.encrypt(nonce, claims.encode(), _AAD)
        return BATCH_PREFIX + base64.urlsafe_b64encode(blob).rstrip(b"=").decode()

    async def open(self, token: str) -> BatchClaims | None:
        """The claims of a batch token, or None if it is not one of ours (any failure)."""
        if not token.startswith(BATCH_PREFIX) or len(token) > _MAX_LENGTH:
            return None
        body = token[len(BATCH_PREFIX) :]
        try:
            blob = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            return None
        if len(blob) <= _NONCE:
            return None
        aead = await self._cipher()
        try:
            plain = aead.decrypt(blob[:_NONCE], blob[_NONCE:], _AAD)
        except InvalidTag:
            return None
        return BatchClaims.decode(plain)
