"""Physical storage backends: untrusted by design, they only ever see ciphertexts.

Every backend implements :class:`strongroom.logical.Storage` (``get``, ``put``, ``delete``,
``list``, ``transaction``) plus ``close``:

- :class:`MemoryStorage`: a dict with a children index, for tests and ``storage "inmem"``;
- :class:`SQLiteStorage`: the default, one WAL-mode file written by one group-commit thread;
- :class:`PostgreSQLStorage`: ``storage "postgresql"``, one table shared by every node;
- :class:`CachedStorage`: an LRU read cache in front of any of them.
"""

from __future__ import annotations

from strongroom.storage.cache import DEFAULT_MAX_ENTRIES, CachedStorage
from strongroom.storage.memory import MemoryStorage, PhysicalStorage
from strongroom.storage.postgresql import PostgreSQLStorage
from strongroom.storage.sqlite import SQLiteStorage

__all__ = [
    "DEFAULT_MAX_ENTRIES",
    "CachedStorage",
    "MemoryStorage",
    "PhysicalStorage",
    "PostgreSQLStorage",
    "SQLiteStorage",
]
