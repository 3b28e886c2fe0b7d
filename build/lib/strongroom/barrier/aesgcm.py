"""The encryption barrier: a :class:`~strongroom.logical.Storage` that encrypts every value.

Physical layout (the physical backend is untrusted: it may read, drop, replay or move values):

``core/keyring``
    The :class:`~strongroom.barrier.keyring.Keyring` (data keys and the root key), encrypted
    under the root key with AAD ``core/keyring``. Written only by this module.
``core/root-key``
    The root key, encrypted under the unseal key with AAD ``core/root-key``. Written only by
    the seal manager (``strongroom.seal``).
``core/seal-config``
    The Shamir parameters in plain JSON (they are not secret). Written only by the seal manager.
everything else
    ``term (4 bytes, big-endian) || nonce (12 random bytes) || AES-256-GCM(ct || tag)`` under
    the keyring key of that term, with the storage key path as associated data: a value moved
    or copied to another path no longer decrypts.

The three ``core/`` records above are reserved: the barrier's own get/put/delete/transaction
refuse them (:class:`~strongroom.errors.InvalidPath`) and ``list`` never shows them.

Random 96-bit nonces are safe for about 2^32 encryptions per key (NIST SP 800-38D);
:meth:`AESGCMBarrier.key_status` counts encryptions so operators know when to ``rotate``.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom import errors
from strongroom.barrier.keyring import KEY_SIZE, Keyring, TermKey
from strongroom.clock import Clock, SystemClock
from strongroom.framework import format_time, nonce_bytes
from strongroom.logical import Storage, StorageOp

__all__ = [
    "KEYRING_PATH",
    "RESERVED_PATHS",
    "ROOT_KEY_PATH",
    "SEAL_CONFIG_PATH",
    "AESGCMBarrier",
    "KeyStatus",
    "decrypt_blob",
    "encrypt_blob",
]

KEYRING_PATH = "core/keyring"
SEAL_CONFIG_PATH = "core/seal-config"
ROOT_KEY_PATH = "core/root-key"
RESERVED_PATHS = frozenset({KEYRING_PATH, SEAL_CONFIG_PATH, ROOT_KEY_PATH})

_TERM_SIZE = 4
_NONCE_SIZE = 12
_TAG_SIZE = 16
_OVERHEAD = _TERM_SIZE + _NONCE_SIZE + _TAG_SIZE
# Term 0 never names a keyring key; blobs sealed directly under a root or unseal key use it.
_DIRECT_TERM = 0
# Flat on purpose: a failure never says which key, byte or share was wrong.
_AUTH_FAILED = "cipher: message authentication failed"


def _seal_with(aead: AESGCM, term: int, aad: str, plaintext: bytes) -> bytes:
    nonce = nonce_bytes(_NONCE_SIZE)
    return term.to_bytes(_TERM_SIZE, "big") + nonce + aead.encrypt(nonce, plaintext, aad.encode())


def _open_with(aead: AESGCM, aad: str, blob: bytes) -> bytes:
    nonce = blob[_TERM_SIZE : _TERM_SIZE + _NONCE_SIZE]
    try:
        return aead.decrypt(nonce, blob[_TERM_SIZE + _NONCE_SIZE :], aad.encode())
    except InvalidTag:
        raise errors.CryptoError(_AUTH_FAILED) from None


def encrypt_blob(key: bytes, aad: str, plaintext: bytes) -> bytes:
    """Encrypt ``plaintext`` directly under a 32-byte ``key`` (root or unseal key).

    Same layout as barrier values, with term 0. ``aad`` binds the blob to its storage path.
    """
    if len(key) != KEY_SIZE:
        raise errors.InternalError("encryption key must be 32 bytes")
    return _seal_with(AESGCM(key), _DIRECT_TERM, aad, plaintext)


def decrypt_blob(key: bytes, aad: str, blob: bytes) -> bytes:
    """Reverse :func:`encrypt_blob`.

    Raises:
        errors.CryptoError: wrong key (of any length), wrong ``aad``, or a tampered blob;
            always the same flat message.
    """
    if (
        len(key) != KEY_SIZE
        or len(blob) < _OVERHEAD
        or int.from_bytes(blob[:_TERM_SIZE], "big") != _DIRECT_TERM
    ):
        raise errors.CryptoError(_AUTH_FAILED)
    return _open_with(AESGCM(key), aad, blob)


@dataclass(frozen=True, slots=True)
class KeyStatus:
    """The active data key, as ``GET sys/key-status`` reports it.

    ``encryptions`` counts encryptions made under ``term`` by this process since it unsealed
    (Vault's figure is likewise an estimate).
    """

    term: int
    install_time: float
    encryptions: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "term": self.term,
            "install_time": format_time(self.install_time),
            "encryptions": self.encryptions,
        }


class AESGCMBarrier:
    """Encrypts values on their way to the physical storage, decrypts them on the way back.

    Trusts: nothing read from ``physical`` (every value is authenticated before use); the
    ``extra_ops`` handed to :meth:`initialize` and :meth:`rekey_root_key` (only the seal
    manager passes them, for its reserved records).
    Promises: while sealed it holds no key material and every data method raises
    :class:`~strongroom.errors.Sealed`; a value only decrypts at the path it was written to;
    keyring changes are written before they are used, so a crash never loses a term.
    """

    def __init__(self, physical: Storage, clock: Clock | None = None) -> None:
        self._physical = physical
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._keyring: Keyring | None = None
        self._aeads: dict[int, AESGCM] = {}
        self._encryptions: dict[int, int] = {}
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"AESGCMBarrier(sealed={self.sealed})"

    @property
    def physical(self) -> Storage:
        """The storage under the barrier (ciphertext only), for whole-store snapshots."""
        return self._physical

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def sealed(self) -> bool:
        return self._keyring is None

    async def initialized(self) -> bool:
        """Whether a keyring exists in the physical storage."""
        return await self._physical.get(KEYRING_PATH) is not None

    async def initialize(self, root_key: bytes, *, extra_ops: Sequence[StorageOp] = ()) -> None:
        """Create the keyring (term 1) sealed by ``root_key`` and leave the barrier unsealed.

        ``extra_ops`` are applied in the same physical transaction (the seal manager stores
        its encrypted root key and seal config with them, so initialization is all-or-nothing).

        Raises:
            errors.InvalidRequest: already initialized.
        """
        async with self._lock:
            if await self.initialized():
                raise errors.InvalidRequest("Vault is already initialized")
            keyring = Keyring.new(root_key, secrets.token_bytes(KEY_SIZE), self._clock.now())
            await self._physical.transaction([self._keyring_op(keyring), *extra_ops])
            self._install(keyring)

    async def unseal(self, root_key: bytes) -> None:
        """Load the keyring with ``root_key``. A no-op when already unsealed.

        Raises:
            errors.InvalidRequest: not initialized.
            errors.CryptoError: ``root_key`` does not open the keyring (flat message).
        """
        async with self._lock:
            if self._keyring is not None:
                return
            self._install(await self._load_keyring(root_key))

    def seal(self) -> None:
        """Forget every key. Data methods raise :class:`~strongroom.errors.Sealed` from now on."""
        self._keyring = None
        self._aeads.clear()
        self._encryptions.clear()

    async def reload_keyring(self) -> None:
        """Re-read the keyring (after another node rotated it). Requires unsealed."""
        async with self._lock:
            current = self._require_keyring()
            keyring = await self._load_keyring(current.root_key)
            if self._keyring is not None:
                self._install(keyring)

    async def rotate(self) -> int:
        """Install a new data key as the active term; older terms keep decrypting.

        Returns:
            The new term.
        """
        async with self._lock:
            keyring = self._require_keyring().rotated(
                secrets.token_bytes(KEY_SIZE), self._clock.now()
            )
            await self._physical.put(KEYRING_PATH, _keyring_blob(keyring))
            if self._keyring is not None:  # sealed meanwhile: stored, but stay sealed
                self._install(keyring)
            return keyring.active_term

    async def rekey_root_key(
        self, new_root_key: bytes, *, extra_ops: Sequence[StorageOp] = ()
    ) -> None:
        """Re-encrypt the keyring under ``new_root_key``, with ``extra_ops``, atomically."""
        async with self._lock:
            keyring = self._require_keyring().with_root_key(new_root_key)
            await self._physical.transaction([self._keyring_op(keyring), *extra_ops])
            if self._keyring is not None:
                self._install(keyring)

    def key_status(self) -> KeyStatus:
        active = self._require_keyring().active
        return KeyStatus(active.term, active.install_time, self._encryptions.get(active.term, 0))

    @property
    def root_key(self) -> bytes:
        """The root key (for the seal manager only). Raises Sealed when sealed."""
        return self._require_keyring().root_key

    def verify_root_key(self, candidate: bytes) -> bool:
        """Whether ``candidate`` is the root key, compared in constant time."""
        return hmac.compare_digest(self._require_keyring().root_key, candidate)

    # --- Storage --------------------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        keyring = self._require_keyring()
        _check_key(key)
        blob = await self._physical.get(key)
        if blob is None:
            return None
        return self._decrypt(keyring, key, blob)

    async def put(self, key: str, value: bytes) -> None:
        keyring = self._require_keyring()
        _check_key(key)
        await self._physical.put(key, self._encrypt(keyring.active, key, value))

    async def delete(self, key: str) -> None:
        self._require_keyring()
        _check_key(key)
        await self._physical.delete(key)

    async def list(self, prefix: str) -> list[str]:
        self._require_keyring()
        children = await self._physical.list(prefix)
        hidden = _HIDDEN_CHILDREN.get(prefix)
        if hidden:
            children = [child for child in children if child not in hidden]
        if prefix == "" and "core/" in children and not await self.list("core/"):
            # core/ holds nothing but reserved records: do not show an empty folder.
            children.remove("core/")
        return children

    async def transaction(self, ops: Sequence[StorageOp]) -> None:
        """Encrypt the writes; turn each plaintext guard into a guard on the exact ciphertext.

        A guard ``StorageOp(key, plaintext, check=True)`` reads the key's current
        ciphertext, decrypts it and compares it with ``plaintext``; if they match, the
        physical transaction carries a guard on that ciphertext, so a value rewritten by
        anyone in between (even to the same plaintext) fails it there.

        Raises:
            errors.StorageConflict: a guard did not match; nothing was written.
        """
        keyring = self._require_keyring()
        for op in ops:
            _check_key(op.key)
        encrypted: list[StorageOp] = []
        for op in ops:
            if op.check:
                encrypted.append(await self._guard(keyring, op))
                continue
            value = None if op.value is None else self._encrypt(keyring.active, op.key, op.value)
            encrypted.append(StorageOp(op.key, value))
        await self._physical.transaction(encrypted)

    async def _guard(self, keyring: Keyring, op: StorageOp) -> StorageOp:
        if op.value is None:
            return op  # "absent" is the same in plaintext and ciphertext
        blob = await self._physical.get(op.key)
        if blob is None or not hmac.compare_digest(self._decrypt(keyring, op.key, blob), op.value):
            raise errors.StorageConflict("storage guard failed: the value changed")
        return StorageOp(op.key, blob, check=True)

    # --- internals ------------------------------------------------------------------------

    def _require_keyring(self) -> Keyring:
        if self._keyring is None:
            raise errors.Sealed()
        return self._keyring

    def _install(self, keyring: Keyring) -> None:
        self._keyring = keyring
        self._aeads = {key.term: AESGCM(key.value) for key in keyring.keys}

    async def _load_keyring(self, root_key: bytes) -> Keyring:
        blob = await self._physical.get(KEYRING_PATH)
        if blob is None:
            raise errors.InvalidRequest("Vault is not initialized")
        keyring = Keyring.from_bytes(decrypt_blob(root_key, KEYRING_PATH, blob))
        if not hmac.compare_digest(keyring.root_key, root_key):
            raise errors.InternalError("keyring does not match its root key")
        return keyring

    def _keyring_op(self, keyring: Keyring) -> StorageOp:
        return StorageOp(KEYRING_PATH, _keyring_blob(keyring))

    def _encrypt(self, active: TermKey, path: str, plaintext: bytes) -> bytes:
        blob = _seal_with(self._aeads[active.term], active.term, path, plaintext)
        self._encryptions[active.term] = self._encryptions.get(active.term, 0) + 1
        return blob

    def _decrypt(self, keyring: Keyring, path: str, blob: bytes) -> bytes:
        if len(blob) < _OVERHEAD:
            raise errors.CryptoError(_AUTH_FAILED)
        term = int.from_bytes(blob[:_TERM_SIZE], "big")
        aead = self._aeads.get(term)
        if aead is None:
            # The term is public metadata (the first four bytes of the value); naming it
            # helps diagnose a stale keyring on a standby.
            raise errors.CryptoError(f"no decryption key available for term {term}")
        return _open_with(aead, path, blob)


def _keyring_blob(keyring: Keyring) -> bytes:
    return encrypt_blob(keyring.root_key, KEYRING_PATH, keyring.to_bytes())


def _hidden_children() -> dict[str, frozenset[str]]:
    """{list prefix: reserved leaf names under it}, e.g. {"core/": {"keyring", ...}}."""
    hidden: dict[str, frozenset[str]] = {}
    for path in RESERVED_PATHS:
        parent, _, leaf = path.rpartition("/")
        prefix = parent + "/" if parent else ""
        hidden[prefix] = hidden.get(prefix, frozenset()) | {leaf}
    return hidden


_HIDDEN_CHILDREN = _hidden_children()


def _check_key(key: str) -> None:
    if not key:
        raise errors.InvalidPath("empty storage key")
    if key in RESERVED_PATHS:
        raise errors.InvalidPath(f"cannot access reserved path {key!r}")
