"""Vault's TLS certificate auth method.

Modules: ``_verify`` (chain verification with cryptography's X.509 verifier, pinning, name
constraints), ``_certs`` (certs/ and config paths), ``_crls`` (crls/ paths and the in-memory
CRL set loaded at initialize), ``_backend`` (login, the factory, the renewal hook).
"""

from __future__ import annotations

from strongroom.auth.cert._backend import factory

__all__ = ["factory"]
