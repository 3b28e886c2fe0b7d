"""Key records (``key/<name>``) and their replay records (``used/<name>``)."""

from __future__ import annotations

import orjson

from strongroom.errors import InternalError
from strongroom.framework import TotpKey, b32_secret, decode_b32
from strongroom.logical import Request, Storage

__all__ = ["KEY_PREFIX", "USED_PREFIX", "load_key", "save_key", "storage_of"]

KEY_PREFIX = "key/"
USED_PREFIX = "used/"


def storage_of(request: Request) -> Storage:
    if request.storage is None:
        raise InternalError("request carries no storage view")
    return request.storage


async def load_key(storage: Storage, name: str) -> TotpKey | None:
    raw = await storage.get(KEY_PREFIX + name)
    if raw is None:
        return None
    record = orjson.loads(raw)
    return TotpKey(
        key=decode_b32(record["key"]),
        issuer=record["issuer"],
        account_name=record["account_name"],
        period=record["period"],
        algorithm=record["algorithm"],
        digits=record["digits"],
        skew=record["skew"],
    )


async def save_key(storage: Storage, name: str, key: TotpKey) -> None:
    record = {
        "key": b32_secret(key.key),
        "issuer": key.issuer,
        "account_name": key.account_name,
        "period": key.period,
        "algorithm": key.algorithm,
        "digits": key.digits,
        "skew": key.skew,
    }
    await storage.put(KEY_PREFIX + name, orjson.dumps(record))
