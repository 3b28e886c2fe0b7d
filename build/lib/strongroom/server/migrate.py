"""``strongroom operator migrate -config=migrate.hcl``: copy a whole store to another backend.

Vault's command and file shape (``storage_source``, ``storage_destination``; flags
``-start`` and ``-reset``). It works offline, directly on physical storage: values are copied
as the ciphertext they are, nothing is decrypted and no unseal key is needed. While it runs,
the source holds a lock record (:data:`~strongroom.storage.bulk.MIGRATION_LOCK`) that keeps a
server from starting on it; ``-reset`` removes a lock a crashed migration left behind.

After the copy both sides are read again and compared by entry count and a SHA-256 over every
(key, value) sorted by key; any difference is an error (exit 2), never a silent success.
The destination must not already be initialized unless ``-start`` resumes an interrupted run.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

import orjson

from strongroom.errors import StrongroomError
from strongroom.logical import StorageOp
from strongroom.server.config import ConfigError, StorageConfig, load_migration_config
from strongroom.server.wiring import open_storage
from strongroom.storage.bulk import MIGRATION_LOCK, digest, entries

__all__ = ["main", "migrate"]

_BATCH = 500
_SEAL_CONFIG = "core/seal-config"

USAGE = """\
Usage: strongroom operator migrate [options]

  Copies all storage entries from storage_source to storage_destination, offline
  (stop every server on the source first). Values are copied as stored (encrypted);
  the copy is verified by entry count and SHA-256 checksum.

      $ strongroom operator migrate -config=migrate.hcl

Options:

  -config=<path>   The migration file (storage_source and storage_destination stanzas).
  -start=<key>     Only copy keys at or after this one (resume an interrupted migration).
  -reset           Remove the migration lock from the source and exit; copy nothing.
"""


class MigrationError(StrongroomError):
    """The migration cannot start or its copy does not verify."""


def _same_store(a: StorageConfig, b: StorageConfig) -> bool:
    if a.type != b.type or a.type == "inmem":
        return False
    if a.type == "sqlite":
        return bool(a.options.get("path") == b.options.get("path"))
    keys = ("connection_url", "table")
    return all(a.options.get(k) == b.options.get(k) for k in keys)


async def migrate(
    source_config: StorageConfig,
    destination_config: StorageConfig,
    *,
    start: str = "",
    reset: bool = False,
    out: TextIO = sys.stdout,
) -> int:
    """Copy and verify; returns the number of entries in the verified destination.

    Raises:
        MigrationError: the same store on both sides, a migration already running, an
            initialized destination, or a copy that does not verify.
        StrongroomError: a backend could not be opened or used.
    """
    if _same_store(source_config, destination_config):
        raise MigrationError("storage_source and storage_destination are the same store")
    source: Any = await open_storage(source_config.type, dict(source_config.options))
    try:
        if reset:
            await source.delete(MIGRATION_LOCK)
            out.write("Success! Migration lock removed.\n")
            return 0
        if await source.get(MIGRATION_LOCK) is not None:
            raise MigrationError(
                "a storage migration is already in progress on the source "
                "(if it crashed, remove its lock with -reset)"
            )
        destination: Any = await open_storage(
            destination_config.type, dict(destination_config.options)
        )
        try:
            if not start and await destination.get(_SEAL_CONFIG) is not None:
                raise MigrationError(
                    "the destination storage is already initialized; migrate into an empty"
                    " store (or resume an interrupted migration with -start)"
                )
            lock = {"start_time": time.time(), "destination": destination_config.type}
            await source.put(MIGRATION_LOCK, orjson.dumps(lock))
            try:
                return await _copy(source, destination, start, out)
            finally:
                await source.delete(MIGRATION_LOCK)
        finally:
            await destination.close()
    finally:
        await source.close()


async def _copy(source: Any, destination: Any, start: str, out: TextIO) -> int:
    copied = 0
    batch: list[StorageOp] = []
    async for key, value in entries(source):
        if key == MIGRATION_LOCK or key < start:
            continue
        batch.append(StorageOp(key, value))
        if len(batch) >= _BATCH:
            await destination.transaction(batch)
            copied += len(batch)
            batch = []
    if batch:
        await destination.transaction(batch)
        copied += len(batch)
    out.write(f"Copied {copied} entries; verifying.\n")
    want = await digest(source, exclude=frozenset({MIGRATION_LOCK}))
    got = await digest(destination)
    if want != got:
        raise MigrationError(
            f"verification failed: the source holds {want.count} entries (sha256 {want.sha256}),"
            f" the destination {got.count} (sha256 {got.sha256})"
        )
    out.write(
        f"Success! All of the keys have been migrated: {got.count} entries, sha256 {got.sha256}.\n"
    )
    return got.count


def _parse(argv: Sequence[str]) -> dict[str, str | bool]:
    values: dict[str, str | bool] = {}
    items = list(argv)
    i = 0
    while i < len(items):
        raw = items[i]
        if not raw.startswith("-"):
            raise ConfigError(f"unexpected argument: {raw}")
        name, sep, value = raw.lstrip("-").partition("=")
        if name in ("h", "help"):
            values["help"] = True
        elif name == "reset":
            values["reset"] = value.lower() not in ("false", "0") if sep else True
        elif name in ("config", "start"):
            if not sep:
                i += 1
                if i >= len(items):
                    raise ConfigError(f"flag -{name} needs a value")
                value = items[i]
            values[name] = value
        else:
            raise ConfigError(f"unknown flag: {raw}")
        i += 1
    return values


def main(argv: Sequence[str], out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """``operator migrate``: 0 success, 1 usage or config error, 2 a migration error."""
    try:
        flags = _parse(argv)
    except ConfigError as exc:
        err.write(f"{exc}\n\n{USAGE}")
        return 1
    if flags.get("help"):
        out.write(USAGE)
        return 0
    path = str(flags.get("config", ""))
    if not path:
        err.write("Error: a migration file must be given with -config\n\n" + USAGE)
        return 1
    try:
        config = load_migration_config(path)
    except ConfigError as exc:
        err.write(f"Error loading migration config: {exc}\n")
        return 1
    try:
        asyncio.run(
            migrate(
                config.source,
                config.destination,
                start=str(flags.get("start", "")),
                reset=bool(flags.get("reset", False)),
                out=out,
            )
        )
    except StrongroomError as exc:
        err.write(f"Error migrating: {exc}\n")
        return 2
    return 0
