"""Vault's transit secrets engine: encryption as a service with named, versioned keys.

Modules by path family: ``keys`` (keys/, config, rotate, trim), ``encrypt`` (encrypt/,
decrypt/, rewrap/, datakey/), ``sign`` (sign/, verify/, hmac/), ``hash_random`` (hash/,
random/), ``import_export`` (export/, backup/, restore/, wrapping_key, import), ``config``
(cache-config, config/keys); over the key records (``_policy``), the cryptography on a loaded
key (``_crypto``), the cached key store (``_store``) and Vault-format backups (``_backup``).
"""

from __future__ import annotations

from strongroom.engines.transit._backend import TransitBackend, factory

__all__ = ["TransitBackend", "factory"]
