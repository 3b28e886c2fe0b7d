"""ACME protocol pieces free of storage: problem documents, the nonce pool, rate limits,
and JWS checks (RFC 8555 §6.2, with ``joserfc``).

Nonces live in memory, as in Vault: each is handed out once and consumed once; taking one
is a dict ``pop`` on the event loop, so a burst of requests reusing one nonce lets exactly
one through. They expire after :data:`NONCE_TTL` and a restart forgets them (clients then
get ``badNonce`` and retry with a fresh one, as RFC 8555 expects).
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from dataclasses import dataclass
from typing import Any

import orjson
from joserfc import jws
from joserfc.errors import ExceededSizeError, JoseError
from joserfc.jwk import ECKey, JWKRegistry, OctKey, OKPKey, RSAKey
from joserfc.jws import JWSRegistry
from joserfc.registry import HeaderParameter

__all__ = [
    "ALGORITHMS",
    "AcmeProblem",
    "JWSMessage",
    "NonceStore",
    "RateLimiter",
    "b64url",
    "b64url_decode",
    "parse_jws",
    "thumbprint",
    "verify_jws",
]

ALGORITHMS = ("RS256", "ES256", "ES384", "ES512", "EdDSA")
NONCE_TTL = 15 * 60.0
_NONCE_LIMIT = 100_000

_REGISTRY = JWSRegistry(
    header_registry={
        "url": HeaderParameter("The request URL", "str", True),
        "nonce": HeaderParameter("A server nonce", "str"),
    },
    algorithms=list(ALGORITHMS),
)
# joserfc caps protected headers at 512 bytes; a jwk header of an RSA-4096 key is ~1 KiB
for _registry in (_REGISTRY,):
    _registry.max_header_length = 4096
    _registry.max_signature_length = 2048

# External account binding: an HMAC JWS over the account key (RFC 8555 §7.3.4)
_EAB_REGISTRY = JWSRegistry(
    header_registry={"url": HeaderParameter("The request URL", "str", True)},
    algorithms=["HS256", "HS384", "HS512"],
)

PublicJWK = RSAKey | ECKey | OKPKey


class AcmeProblem(Exception):
    """An RFC 8555 problem: ``urn:ietf:params:acme:error:<kind>`` with an HTTP status."""

    def __init__(self, kind: str, detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.status = status

    def document(self) -> dict[str, Any]:
        return {
            "type": f"urn:ietf:params:acme:error:{self.kind}",
            "detail": self.detail,
            "status": self.status,
        }


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    if not isinstance(text, str) or "=" in text or "+" in text or "/" in text:
        raise AcmeProblem("malformed", "invalid base64url encoding")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise AcmeProblem("malformed", "invalid base64url encoding") from None


class NonceStore:
    """Single-use nonces with an expiry, bounded in number."""

    def __init__(self) -> None:
        self._nonces: dict[str, float] = {}

    def issue(self) -> str:
        if len(self._nonces) >= _NONCE_LIMIT:
            now = time.monotonic()
            for nonce, expiry in list(self._nonces.items()):
                if expiry < now:
                    del self._nonces[nonce]
            while len(self._nonces) >= _NONCE_LIMIT:  # still full: drop the oldest
                del self._nonces[next(iter(self._nonces))]
        nonce = secrets.token_urlsafe(16)
        self._nonces[nonce] = time.monotonic() + NONCE_TTL
        return nonce

    def consume(self, nonce: str) -> bool:
        """True once for a nonce we issued that has not expired; False ever after."""
        expiry = self._nonces.pop(nonce, None)
        return expiry is not None and expiry >= time.monotonic()


class RateLimiter:
    """Token buckets by key (client IP, account): ``rate`` per second, bursts of twice the rate."""

    def __init__(self, limit: int = 65536) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._limit = limit

    def allow(self, key: str, rate: float) -> bool:
        if rate <= 0:
            return True
        now = time.monotonic()
        burst = max(2 * rate, 1.0)
        tokens, last = self._buckets.get(key, (burst, now))
        tokens = min(burst, tokens + (now - last) * rate)
        if len(self._buckets) >= self._limit:
            self._buckets.clear()  # crude bound: a flood of addresses resets everyone
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return False
        self._buckets[key] = (tokens - 1, now)
        return True


@dataclass(frozen=True, slots=True)
class JWSMessage:
    """A flattened JWS as posted, with its decoded protected header."""

    raw: dict[str, str]
    header: dict[str, Any]
    payload_b64: str


def parse_jws(body: Any) -> JWSMessage:
    """Check the shape (RFC 8555 §6.2): flattened JSON, one signature, alg, nonce, url,
    exactly one of jwk and kid. Raises :class:`AcmeProblem`."""
    if not isinstance(body, dict) or set(body) - {"protected", "payload", "signature"}:
        raise AcmeProblem("malformed", "the body must be a flattened JWS object")
    for name in ("protected", "payload", "signature"):
        if not isinstance(body.get(name), str):
            raise AcmeProblem("malformed", f"the JWS has no {name} member")
    try:
        header = orjson.loads(b64url_decode(body["protected"]))
    except orjson.JSONDecodeError:
        raise AcmeProblem("malformed", "the JWS protected header is not JSON") from None
    if not isinstance(header, dict):
        raise AcmeProblem("malformed", "the JWS protected header is not an object")
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise AcmeProblem(
            "badSignatureAlgorithm",
            f"unsupported JWS algorithm; use one of {', '.join(ALGORITHMS)}",
        )
    if ("jwk" in header) == ("kid" in header):
        raise AcmeProblem("malformed", "the JWS header must have exactly one of jwk and kid")
    if not isinstance(header.get("url"), str):
        raise AcmeProblem("malformed", "the JWS header has no url")
    return JWSMessage(
        {k: body[k] for k in ("protected", "payload", "signature")}, header, body["payload"]
    )


def import_jwk(jwk: Any) -> PublicJWK:
    if not isinstance(jwk, dict) or any(k in jwk for k in ("d", "p", "q", "dp", "dq", "qi")):
        raise AcmeProblem("badPublicKey", "the jwk must be a public key")
    try:
        key = JWKRegistry.import_key(jwk)
    except (JoseError, ValueError, TypeError, KeyError):
        raise AcmeProblem("badPublicKey", "the jwk could not be parsed") from None
    if not isinstance(key, RSAKey | ECKey | OKPKey):
        raise AcmeProblem("badPublicKey", "unsupported jwk key type")
    if isinstance(key, RSAKey):
        size = len(b64url_decode(jwk.get("n", ""))) * 8
        if size < 2048:
            raise AcmeProblem("badPublicKey", "RSA account keys must be at least 2048 bits")
    return key


def verify_jws(message: JWSMessage, key: PublicJWK) -> bytes:
    """The verified payload bytes (``b""`` for POST-as-GET)."""
    try:
        result = jws.deserialize_json(message.raw, key, registry=_REGISTRY)  # type: ignore[call-overload]
    except ExceededSizeError:
        raise AcmeProblem("malformed", "the JWS is too large") from None
    except JoseError:
        raise AcmeProblem("unauthorized", "the JWS signature is invalid", 403) from None
    return bytes(result.payload)


def verify_eab(binding: Any, account_jwk: dict[str, Any], url: str, lookup: Any) -> str:
    """Check an externalAccountBinding; returns its key ID. ``lookup(kid)`` gives the
    HMAC key bytes or None."""
    if not isinstance(binding, dict):
        raise AcmeProblem("malformed", "externalAccountBinding must be a JWS object")
    for name in ("protected", "payload", "signature"):
        if not isinstance(binding.get(name), str):
            raise AcmeProblem("malformed", f"externalAccountBinding has no {name}")
    try:
        header = orjson.loads(b64url_decode(binding["protected"]))
        payload = orjson.loads(b64url_decode(binding["payload"]))
    except orjson.JSONDecodeError:
        raise AcmeProblem("malformed", "externalAccountBinding is not JSON") from None
    if not isinstance(header, dict) or not str(header.get("alg", "")).startswith("HS"):
        raise AcmeProblem("badSignatureAlgorithm", "externalAccountBinding must use HMAC")
    if header.get("url") != url:
        raise AcmeProblem("unauthorized", "externalAccountBinding url mismatch", 403)
    if payload != account_jwk:
        raise AcmeProblem("unauthorized", "externalAccountBinding does not bind this key", 403)
    kid = str(header.get("kid", ""))
    secret = lookup(kid)
    if secret is None:
        raise AcmeProblem("unauthorized", "unknown external account binding key ID", 403)
    try:
        jws.deserialize_json(binding, OctKey.import_key(secret), registry=_EAB_REGISTRY)  # type: ignore[call-overload]
    except JoseError:
        raise AcmeProblem(
            "unauthorized", "externalAccountBinding signature is invalid", 403
        ) from None
    return kid


def thumbprint(key: PublicJWK) -> str:
    """RFC 7638 SHA-256 thumbprint, base64url."""
    return str(key.thumbprint())
