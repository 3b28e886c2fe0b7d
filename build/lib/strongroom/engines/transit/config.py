"""cache-config and config/keys: engine-wide settings.

``cache-config`` stores the key cache size Vault lets operators tune (0, or at least 10
entries). Strongroom's cache is unbounded (it holds one decoded snapshot per key), so the
value is recorded and reported but changes nothing, as Vault's own setting does until the
engine is reloaded. ``config/keys`` holds ``disable_upsert``: when true, encrypt/ no longer
creates missing keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from strongroom.errors import InvalidRequest
from strongroom.framework import Path, get_json, put_json
from strongroom.logical import Operation, Request, Response, Storage

__all__ = ["CACHE_CONFIG_PATH", "KEYS_CONFIG_PATH", "ConfigPaths", "upsert_disabled"]

CACHE_CONFIG_PATH = "config/cache"
KEYS_CONFIG_PATH = "config/keys"
MIN_CACHE_SIZE = 10


@dataclass(frozen=True, slots=True)
class CacheConfigArgs:
    size: int = 0


@dataclass(frozen=True, slots=True)
class KeysConfigArgs:
    disable_upsert: bool | None = None


async def upsert_disabled(storage: Storage) -> bool:
    raw = await get_json(storage, KEYS_CONFIG_PATH)
    return bool(raw and raw.get("disable_upsert"))


class ConfigPaths:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    async def read_cache(self, request: Request, args: CacheConfigArgs) -> Response:
        raw = await get_json(self.storage, CACHE_CONFIG_PATH)
        return Response(data={"size": int(raw["size"]) if raw else 0})

    async def write_cache(self, request: Request, args: CacheConfigArgs) -> Response:
        if args.size < 0:
            raise InvalidRequest("size must be greater or equal to 0")
        if 0 < args.size < MIN_CACHE_SIZE:
            raise InvalidRequest(f"size must be 0 or a value greater or equal to {MIN_CACHE_SIZE}")
        await put_json(self.storage, CACHE_CONFIG_PATH, {"size": args.size})
        return Response(
            data={"size": args.size},
            warnings=["cache configurations will be applied when this backend is restarted"],
        )

    async def read_keys(self, request: Request, args: KeysConfigArgs) -> Response:
        return Response(data={"disable_upsert": await upsert_disabled(self.storage)})

    async def write_keys(self, request: Request, args: KeysConfigArgs) -> Response:
        disable = await upsert_disabled(self.storage)
        if args.disable_upsert is not None:
            disable = args.disable_upsert
            await put_json(self.storage, KEYS_CONFIG_PATH, {"disable_upsert": disable})
        return Response(data={"disable_upsert": disable})

    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=r"cache-config",
                args=CacheConfigArgs,
                operations={
                    Operation.READ: self.read_cache,
                    Operation.UPDATE: self.write_cache,
                },
                synopsis="Configure the key cache size",
                description=_CACHE_HELP,
            ),
            Path(
                pattern=r"config/keys",
                args=KeysConfigArgs,
                operations={Operation.READ: self.read_keys, Operation.UPDATE: self.write_keys},
                synopsis="Configure engine-wide key behaviour",
                description=_KEYS_HELP,
            ),
        ]


_CACHE_HELP = """\
Reads or sets the size of the transit key cache: 0 (unlimited, the default) or at least 10
entries. The value is stored and returned; Strongroom's cache holds one decoded snapshot per
key whatever the setting."""

_KEYS_HELP = """\
disable_upsert (bool): when true, encrypt/ refuses to create a key that does not exist, even
for callers holding the create capability."""
