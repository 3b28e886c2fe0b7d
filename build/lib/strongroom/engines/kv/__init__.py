"""Vault's key/value secrets engine, version 1 (unversioned) and version 2 (versioned).

Version 2 modules by path family: ``_data`` (data/, subkeys/), ``_metadata`` (metadata/,
config), ``_versions`` (delete/, undelete/, destroy/), over the records and bookkeeping in
``_records``. Version 1 lives in ``_v1``; ``_backend`` picks one from the mount options.
"""

from __future__ import annotations

from strongroom.engines.kv._backend import factory

__all__ = ["factory"]
