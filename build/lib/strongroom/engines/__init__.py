"""Secrets engines: one package per engine, each exporting an async ``factory``.

Every engine is a :class:`strongroom.framework.FrameworkBackend` built from a path table, and sees
only the barrier-encrypted :class:`strongroom.logical.Storage` view of its own mount. Engines
import only :mod:`strongroom.framework`, :mod:`strongroom.logical` and :mod:`strongroom.errors`
(an import-linter contract enforces it); core receives their factories from ``builtin.py``.

- ``kv``: Vault's key/value engine, version 1 (unversioned) and version 2 (versioned).
- ``cubbyhole``: per-token private storage, destroyed with the token.
"""
