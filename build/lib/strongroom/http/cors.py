"""CORS on the HTTP edge, as Vault does it (http/cors.go's behaviour).

Only requests that carry an ``Origin`` header are concerned, and only while CORS is
enabled (``sys/config/cors``). Then a disallowed origin is refused with 403 and gets no
CORS header; an allowed one gets ``Access-Control-Allow-Origin`` (its own value) and
``Vary: Origin``; a preflight (``OPTIONS``) is answered here with the allowed methods and
headers and never reaches core.
"""

from __future__ import annotations

from dataclasses import dataclass

from strongroom.core.system.cors import ALLOWED_METHODS, CorsConfig

__all__ = ["CorsDecision", "decide"]

_METHODS = ",".join(ALLOWED_METHODS).encode()


@dataclass(frozen=True, slots=True)
class CorsDecision:
    # None: go on with the request (adding ``headers``); else answer with this status
    status: int | None
    headers: tuple[tuple[bytes, bytes], ...] = ()


_PASS = CorsDecision(None)


def decide(config: CorsConfig, origin: str, method: str, requested_method: str) -> CorsDecision:
    if not config.enabled or not origin:
        return _PASS
    if not config.allows(origin):
        return CorsDecision(403)
    if method == "OPTIONS" and requested_method.upper() not in ALLOWED_METHODS:
        return CorsDecision(405)
    headers: tuple[tuple[bytes, bytes], ...] = (
        (b"access-control-allow-origin", origin.encode("latin-1")),
        (b"vary", b"Origin"),
    )
    if method == "OPTIONS":
        return CorsDecision(
            200,
            (
                *headers,
                (b"access-control-allow-methods", _METHODS),
                (b"access-control-allow-headers", ",".join(config.allowed_headers).encode()),
                (b"access-control-max-age", b"300"),
            ),
        )
    return CorsDecision(None, headers)
