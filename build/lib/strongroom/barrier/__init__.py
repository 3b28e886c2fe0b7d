"""Encryption at rest: the versioned keyring, the AES-256-GCM barrier and prefix views.

Everything that reaches physical storage passes :class:`AESGCMBarrier` (keys bound to their
path as AAD), except the seal records it reserves (``core/keyring``, ``core/root-key``,
``core/seal-config``). Each mount sees only a :class:`View` of the barrier.
"""

from __future__ import annotations

from strongroom.barrier.aesgcm import (
    KEYRING_PATH,
    RESERVED_PATHS,
    ROOT_KEY_PATH,
    SEAL_CONFIG_PATH,
    AESGCMBarrier,
    KeyStatus,
    decrypt_blob,
    encrypt_blob,
)
from strongroom.barrier.keyring import KEY_SIZE, Keyring, TermKey
from strongroom.barrier.view import View

__all__ = [
    "KEYRING_PATH",
    "KEY_SIZE",
    "RESERVED_PATHS",
    "ROOT_KEY_PATH",
    "SEAL_CONFIG_PATH",
    "AESGCMBarrier",
    "KeyStatus",
    "Keyring",
    "TermKey",
    "View",
    "decrypt_blob",
    "encrypt_blob",
]
