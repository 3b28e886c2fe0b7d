"""The transit factory: the path table over one key store, and the rotation task.

Path families, hottest first (the framework tries patterns in order): ``encrypt``
(encrypt/decrypt/rewrap/datakey), ``sign`` (sign/verify/hmac), ``keys``
(keys/ and keys/<name>/config, rotate, trim), ``import_export`` (export/, backup/, restore/,
wrapping_key, keys/<name>/import, import_version), ``hash_random`` (hash/, random/) and
``config`` (cache-config, config/keys).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from strongroom.engines.transit._store import KeyStore
from strongroom.engines.transit.certificates import CertificatePaths
from strongroom.engines.transit.config import ConfigPaths
from strongroom.engines.transit.encrypt import EncryptPaths
from strongroom.engines.transit.hash_random import HashRandomPaths
from strongroom.engines.transit.import_export import ImportExportPaths
from strongroom.engines.transit.keys import KeysPaths
from strongroom.engines.transit.sign import SignPaths
from strongroom.framework import FrameworkBackend
from strongroom.logical import Backend, BackendConfig, BackendKind

__all__ = ["ROTATION_INTERVAL", "TransitBackend", "factory"]

log = logging.getLogger("strongroom.engines.transit")

# how often the background task looks for keys due for automatic rotation (seconds); a key in
# use is also rotated by the first request that finds it due
ROTATION_INTERVAL = 60.0


class TransitBackend(FrameworkBackend):
    """The transit engine of one mount. ``store`` is exposed for tests and the rotation task."""

    def __init__(self, config: BackendConfig, *, rotation_interval: float = ROTATION_INTERVAL):
        self.store = KeyStore(config.storage, config.system)
        self.rotation_interval = rotation_interval
        self._task: asyncio.Task[None] | None = None
        paths = [
            *EncryptPaths(self.store).paths(),
            *SignPaths(self.store).paths(),
            *KeysPaths(self.store).paths(),
            *ImportExportPaths(self.store).paths(),
            *CertificatePaths(self.store).paths(),
            *HashRandomPaths().paths(),
            *ConfigPaths(config.storage).paths(),
        ]
        super().__init__(
            kind=BackendKind.SECRET,
            paths=paths,
            help=_HELP,
            initialize=self._start,
            cleanup=self._stop,
        )

    def invalidate(self, key: str) -> None:
        """HA standby: the active changed ``key`` in this mount's storage (a key rotated,
        configured or deleted): drop the decoded copy, the next use reloads it."""
        self.store.forget(key)

    async def _start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._rotation_loop())

    async def _stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _rotation_loop(self) -> None:
        while True:
            await asyncio.sleep(self.rotation_interval)
            try:
                rotated = await self.store.rotate_due_keys()
            except Exception as exc:
                # the exception names a class, never key material
                log.warning("transit: automatic key rotation failed: %s", type(exc).__name__)
                continue
            if rotated:
                log.info("transit: rotated %d key(s) on schedule", len(rotated))


async def factory(config: BackendConfig) -> Backend:
    """Build a transit backend for a mount.

    Args:
        config: the mount's configuration; ``storage`` is its barrier-encrypted view and
            ``system.now()`` the clock used for key creation times and automatic rotation.

    Returns:
        The backend; ``initialize()`` starts the automatic-rotation task, ``cleanup()`` stops it.
    """
    return TransitBackend(config)


_HELP = """\
The transit secrets engine handles cryptographic functions on data in transit: encryption and
decryption, signing and verification, HMACs, hashes, random bytes and data keys, with named
keys that never leave the engine unless they are marked exportable. Paths: keys/, encrypt/,
decrypt/, rewrap/, datakey/, sign/, verify/, hmac/, hash/, random/, export/, backup/,
restore/, wrapping_key, cache-config, config/keys."""
