"""Response wrapping: a response handed out as a single-use token instead of in clear.

The wrapped response is stored in the wrapping token's own cubbyhole (``response``); the
token has the built-in ``response-wrapping`` policy, which allows nothing but
``sys/wrapping/{unwrap,lookup,rewrap}``, and one use, so unwrapping twice fails and the
token cannot be used for anything else. Secure introduction: only the intended recipient
can unwrap, and a second unwrap attempt (an interceptor's) is visible as a failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from strongroom.core.policy import RESPONSE_WRAPPING_POLICY_NAME
from strongroom.core.tokens import TokenEntry, TokenStore, rfc3339
from strongroom.errors import InvalidRequest
from strongroom.framework import parse_duration
from strongroom.logical import Response, Storage, auth_json

__all__ = [
    "DEFAULT_WRAP_TTL",
    "MAX_WRAP_TTL",
    "WRAPPING_POLICY",
    "WrapResult",
    "envelope_of",
    "parse_wrap_ttl",
    "unwrap_token",
    "wrap_response",
]

WRAPPING_POLICY = RESPONSE_WRAPPING_POLICY_NAME
DEFAULT_WRAP_TTL = 300
MAX_WRAP_TTL = 30 * 24 * 3600
_RESPONSE_KEY = "response"
_META_KEY = "wrapinfo"


def parse_wrap_ttl(raw: str) -> int:
    ttl = int(parse_duration(raw, "X-Vault-Wrap-TTL"))
    if ttl <= 0:
        raise InvalidRequest("X-Vault-Wrap-TTL must be positive")
    if ttl > MAX_WRAP_TTL:
        raise InvalidRequest("X-Vault-Wrap-TTL exceeds the maximum wrapping TTL")
    return ttl


def envelope_of(response: Response, request_id: str) -> dict[str, Any]:
    """The JSON envelope the client would have received, to store in the cubbyhole."""
    secret = response.secret
    return {
        "request_id": request_id,
        "lease_id": response.lease_id,
        "renewable": secret.renewable if secret else False,
        "lease_duration": secret.ttl if secret else 0,
        "data": response.data,
        "wrap_info": None,
        "warnings": response.warnings or None,
        "auth": auth_json(response.auth) if response.auth is not None else None,
        "mount_type": response.mount_type,
    }


@dataclass(frozen=True, slots=True)
class WrapResult:
    token: str
    entry: TokenEntry

    def wrap_info(self, creation_path: str, ttl: int, wrapped_accessor: str = "") -> dict[str, Any]:
        info: dict[str, Any] = {
            "token": self.token,
            "accessor": self.entry.accessor,
            "ttl": ttl,
            "creation_time": rfc3339(self.entry.creation_time),
            "creation_path": creation_path,
        }
        if wrapped_accessor:
            info["wrapped_accessor"] = wrapped_accessor
        return info


async def wrap_response(
    tokens: TokenStore,
    cubbyhole: Storage,
    body: dict[str, Any],
    *,
    ttl: int,
    creation_path: str,
) -> WrapResult:
    """Mint a single-use wrapping token and store ``body`` in its cubbyhole."""
    token, entry = await tokens.create(
        policies=(WRAPPING_POLICY,),
        parent=None,
        display_name="",
        ttl=ttl,
        max_ttl=ttl,
        num_uses=1,
        renewable=False,
        path=creation_path,
    )
    meta = {"creation_path": creation_path, "creation_ttl": ttl}
    await cubbyhole.put(f"{entry.cubbyhole_id}/{_RESPONSE_KEY}", orjson.dumps(body))
    await cubbyhole.put(f"{entry.cubbyhole_id}/{_META_KEY}", orjson.dumps(meta))
    return WrapResult(token=token, entry=entry)


async def wrapping_info(cubbyhole: Storage, entry: TokenEntry) -> dict[str, Any]:
    raw = await cubbyhole.get(f"{entry.cubbyhole_id}/{_META_KEY}")
    if raw is None or WRAPPING_POLICY not in entry.policies:
        raise InvalidRequest("wrapping token is not valid or does not exist")
    meta = orjson.loads(raw)
    return {
        "creation_path": meta["creation_path"],
        "creation_time": rfc3339(entry.creation_time),
        "creation_ttl": meta["creation_ttl"],
    }


async def unwrap_token(cubbyhole: Storage, entry: TokenEntry) -> dict[str, Any]:
    """The wrapped body; the caller revokes the token afterwards (single use)."""
    if WRAPPING_POLICY not in entry.policies:
        raise InvalidRequest("wrapping token is not valid or does not exist")
    raw = await cubbyhole.get(f"{entry.cubbyhole_id}/{_RESPONSE_KEY}")
    if raw is None:
        raise InvalidRequest("wrapping token is not valid or does not exist")
    body: dict[str, Any] = orjson.loads(raw)
    return body
