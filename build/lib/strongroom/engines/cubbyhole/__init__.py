"""Vault's cubbyhole secrets engine: per-token private key/value storage.

Core calls :func:`destroy_token_storage` with the cubbyhole mount's storage view when a token
is revoked.
"""

from __future__ import annotations

from strongroom.engines.cubbyhole._paths import destroy_token_storage, factory

__all__ = ["destroy_token_storage", "factory"]
