"""Signing keys for identity tokens: generation, JWK form, signing and verification (joserfc).

A key's private half is a JWK dict that lives only in the identity storage view (behind
the barrier) and in memory; nothing here returns it to a caller. Verification pins the
algorithm to the one recorded for the key that the token's ``kid`` names, so a token can
never choose its own algorithm (no ``none``, no RSA/HMAC confusion).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import uuid
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from joserfc import jwk, jwt
from joserfc.errors import JoseError, SecurityWarning

from strongroom.errors import InvalidRequest

__all__ = [
    "ALGORITHMS",
    "PublicKey",
    "SigningKey",
    "TokenError",
    "generate",
    "peek_kid",
    "public_jwk",
    "sign",
    "verify",
]

# Vault's algorithms, and how each key is made.
ALGORITHMS: Final[Mapping[str, tuple[str, str | int]]] = {
    "RS256": ("RSA", 2048),
    "RS384": ("RSA", 2048),
    "RS512": ("RSA", 2048),
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
    "EdDSA": ("OKP", "Ed25519"),
}
_MAX_TOKEN: Final = 16 * 1024
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


class TokenError(Exception):
    """A token failed verification. The message is generic on purpose."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    algorithm: str
    private_jwk: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A retired signing key's public half, kept for verification until ``expires``."""

    kid: str
    algorithm: str
    jwk: Mapping[str, Any]
    expires: float


@contextlib.contextmanager
def _eddsa_allowed() -> Iterator[None]:
    # joserfc warns that "EdDSA" is deprecated by RFC 9864 in favour of "Ed25519". Vault
    # and its verifiers use "EdDSA", so we keep that name; the signature is the same.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=SecurityWarning, message=".*EdDSA.*")
        yield


def generate(algorithm: str) -> SigningKey:
    """A new key pair for ``algorithm`` (slow for RSA: run it in a thread)."""
    spec = ALGORITHMS.get(algorithm)
    if spec is None:
        raise InvalidRequest(f"unsupported algorithm; use one of {', '.join(ALGORITHMS)}")
    kid = str(uuid.uuid4())
    params: jwk.KeyParameters = {"kid": kid, "alg": algorithm, "use": "sig"}
    kty, size = spec
    key: jwk.Key
    if kty == "RSA":
        key = jwk.RSAKey.generate_key(int(size), params, private=True)
    elif kty == "EC":
        key = jwk.ECKey.generate_key(str(size), params, private=True)
    else:
        key = jwk.OKPKey.generate_key("Ed25519", params, private=True)
    return SigningKey(kid=kid, algorithm=algorithm, private_jwk=key.as_dict(private=True))


def public_jwk(key: SigningKey) -> dict[str, Any]:
    """The public JWK (``use``, ``kid``, ``alg`` set) of a signing key."""
    public = {k: v for k, v in key.private_jwk.items() if k not in _PRIVATE_MEMBERS}
    public.update({"use": "sig", "kid": key.kid, "alg": key.algorithm})
    return public


def sign(key: SigningKey, claims: Mapping[str, Any], cache: dict[str, Any]) -> str:
    """A compact JWS of ``claims``; ``cache`` keeps imported keys by kid."""
    loaded = cache.get(key.kid)
    if loaded is None:
        loaded = cache[key.kid] = jwk.import_key(dict(key.private_jwk))
    with _eddsa_allowed():
        return jwt.encode(
            {"alg": key.algorithm, "kid": key.kid},
            dict(claims),
            loaded,
            algorithms=[key.algorithm],
        )


def peek_kid(token: str) -> str | None:
    """The ``kid`` of a compact JWS header, unverified (only to pick the key)."""
    if not isinstance(token, str) or len(token) > _MAX_TOKEN or token.count(".") != 2:
        return None
    head = token.split(".", 1)[0]
    try:
        header = orjson.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        return None
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) else None


def verify(token: str, public: Mapping[str, Any], algorithm: str) -> dict[str, Any]:
    """The claims of ``token`` if its signature verifies with ``public`` under exactly
    ``algorithm``.

    Raises:
        TokenError: anything wrong (the reason is not disclosed).
    """
    if len(token) > _MAX_TOKEN:
        raise TokenError("invalid token")
    try:
        key = jwk.import_key(dict(public))
        with _eddsa_allowed():
            decoded = jwt.decode(token, key, algorithms=[algorithm])
    except (JoseError, ValueError, TypeError, KeyError):
        raise TokenError("invalid token") from None
    if decoded.header.get("alg") != algorithm:
        raise TokenError("invalid token")
    return dict(decoded.claims)
