"""sys/config/cors: which browser origins may call the API (off by default).

The policy is read on every HTTP request by http/cors.py, so it lives on the Core as an
immutable :class:`CorsConfig` (replaced whole on write) and in storage at
``core/cors-config``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from strongroom.core.system._context import SysContext
from strongroom.errors import InvalidRequest
from strongroom.framework import Endpoint
from strongroom.logical import Operation, Request, Response, Storage

__all__ = ["CORS_KEY", "DEFAULT_ALLOWED_HEADERS", "TABLE", "CorsConfig", "load_cors"]

CORS_KEY = "core/cors-config"

# Vault's StdAllowedHeaders: always allowed once CORS is on; allowed_headers add to them.
DEFAULT_ALLOWED_HEADERS = (
    "Content-Type",
    "X-Requested-With",
    "X-Vault-AWS-IAM-Server-ID",
    "X-Vault-MFA",
    "X-Vault-No-Request-Forwarding",
    "X-Vault-Wrap-Format",
    "X-Vault-Wrap-TTL",
    "X-Vault-Policy-Override",
    "Authorization",
    "X-Vault-Token",
)
ALLOWED_METHODS = ("DELETE", "GET", "OPTIONS", "POST", "PUT", "LIST")


@dataclass(frozen=True, slots=True)
class CorsConfig:
    enabled: bool = False
    allowed_origins: tuple[str, ...] = ()
    allowed_headers: tuple[str, ...] = DEFAULT_ALLOWED_HEADERS
    # lower-cased origins for the per-request check
    _origins: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_origins", frozenset(o.lower() for o in self.allowed_origins))

    def allows(self, origin: str) -> bool:
        return "*" in self._origins or origin.lower() in self._origins

    def to_json(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "allowed_origins": list(self.allowed_origins),
            "allowed_headers": list(self.allowed_headers),
        }

    def encode(self) -> bytes:
        return orjson.dumps(self.to_json())


async def load_cors(storage: Storage) -> CorsConfig:
    raw = await storage.get(CORS_KEY)
    if raw is None:
        return CorsConfig()
    doc = orjson.loads(raw)
    return CorsConfig(
        enabled=bool(doc.get("enabled")),
        allowed_origins=tuple(doc.get("allowed_origins") or ()),
        allowed_headers=tuple(doc.get("allowed_headers") or DEFAULT_ALLOWED_HEADERS),
    )


@dataclass(frozen=True, slots=True)
class CorsArgs:
    allowed_origins: list[str] | None = None
    allowed_headers: list[str] | None = None


async def _read(ctx: SysContext, request: Request, args: CorsArgs) -> Response:
    return Response(data=ctx.core.cors_config.to_json())


async def _write(ctx: SysContext, request: Request, args: CorsArgs) -> None:
    origins = [o for o in (args.allowed_origins or []) if o]
    if not origins:
        raise InvalidRequest("at least one origin or the wildcard must be provided")
    if "*" in origins and len(origins) > 1:
        raise InvalidRequest(
            "to allow all origins the '*' must be the only value for allowed_origins"
        )
    headers = list(DEFAULT_ALLOWED_HEADERS)
    known = {h.lower() for h in headers}
    for header in args.allowed_headers or []:
        if header.lower() not in known:
            headers.append(header)
            known.add(header.lower())
    config = CorsConfig(True, tuple(dict.fromkeys(origins)), tuple(headers))
    await ctx.core.barrier.put(CORS_KEY, config.encode())
    ctx.core.cors_config = config


async def _delete(ctx: SysContext, request: Request, args: CorsArgs) -> None:
    await ctx.core.barrier.delete(CORS_KEY)
    ctx.core.cors_config = CorsConfig()


_op = Operation


TABLE: list[Endpoint[SysContext]] = [
    Endpoint(
        r"config/cors",
        {_op.READ: _read, _op.UPDATE: _write, _op.CREATE: _write, _op.DELETE: _delete},
        CorsArgs,
        synopsis="Configure cross-origin requests (CORS)",
        description="allowed_origins (a list, or '*' alone), allowed_headers (added to "
        "Vault's standard ones). Disabled until written; DELETE disables it again.",
    )
]
