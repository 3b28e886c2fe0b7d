"""Verifying JWS-signed JWTs (the jwt and kubernetes methods), with keys from configuration only.

What this module refuses, and why:

- ``alg: none`` and every HMAC algorithm (HS256/384/512), always: our keys are public keys,
  and a verifier that let a token pick HMAC could be fooled into using a public key as the
  HMAC secret (algorithm confusion). Only the asymmetric algorithms in
  :data:`ASYMMETRIC_ALGS` exist here, and each key is only ever tried with algorithms of its
  own type and curve (an EC P-256 key with ES256, never with RS256 or ES384).
- ``jwk``, ``jku``, ``x5u`` and ``x5c`` headers are never read: a key named by the token is a
  key chosen by the attacker. Keys come from ``jwt_validation_pubkeys``/``pem_keys`` or from the
  JWKS URL the operator configured, and the ``kid`` header only selects among those.
- JWE (five-part tokens), unencoded payloads (``b64: false``) and any ``crit`` header.

Errors say what failed (signature, audience, expiry…) and never include the token or a key.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from joserfc import jws
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import ECKey, OKPKey, RSAKey, import_key

from strongroom.errors import InvalidRequest

__all__ = [
    "ASYMMETRIC_ALGS",
    "JWSHeader",
    "Leeways",
    "VerifyKey",
    "audiences",
    "cached_pem_keys",
    "candidates",
    "check_times",
    "keys_from_jwks",
    "load_pem_keys",
    "read_header",
    "unverified_claims",
    "verify_signature",
]

VerifyKey = RSAKey | ECKey | OKPKey

ASYMMETRIC_ALGS: tuple[str, ...] = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
_EC_CURVE = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----\s*(.*?)\s*-----END \1-----", re.DOTALL)
_MAX_TOKEN = 64 * 1024
_DEFAULT_LEEWAY = 150  # cap's DefaultLeewaySeconds (exp and nbf)
_DEFAULT_CLOCK_SKEW = 60  # go-jose's DefaultLeeway


def _b64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


@dataclass(frozen=True, slots=True)
class JWSHeader:
    alg: str
    kid: str | None


def read_header(token: str) -> JWSHeader:
    """The protected header of a compact JWS, checked for what we refuse outright.

    Raises:
        InvalidRequest: not a three-part compact JWS, or a header we do not accept.
    """
    if not isinstance(token, str) or len(token) > _MAX_TOKEN or token.count(".") != 2:
        raise InvalidRequest("malformed JWT: expected a compact JWS")
    try:
        header = orjson.loads(_b64url(token.split(".", 1)[0]))
    except (binascii.Error, ValueError):
        raise InvalidRequest("malformed JWT: bad header") from None
    if not isinstance(header, dict) or not isinstance(header.get("alg"), str):
        raise InvalidRequest("malformed JWT: bad header")
    if "crit" in header or header.get("b64", True) is not True:
        raise InvalidRequest("malformed JWT: unsupported critical header")
    kid = header.get("kid")
    return JWSHeader(alg=header["alg"], kid=kid if isinstance(kid, str) else None)


def unverified_claims(token: str) -> dict[str, Any]:
    """The payload of a compact JWS *without* checking the signature. Only for tokens an
    authority (Kubernetes' TokenReview) vouches for, and only to cross-check its answer."""
    read_header(token)
    try:
        claims = orjson.loads(_b64url(token.split(".")[1]))
    except (binascii.Error, ValueError):
        raise InvalidRequest("malformed JWT: bad payload") from None
    if not isinstance(claims, dict):
        raise InvalidRequest("malformed JWT: bad payload")
    return claims


def _public_key_pem(block: str, label: str) -> tuple[bytes, Literal["RSA", "EC", "OKP"]]:
    data = block.encode()
    public: object
    if label == "CERTIFICATE":
        public = x509.load_pem_x509_certificate(data).public_key()
    elif label in ("PUBLIC KEY", "RSA PUBLIC KEY"):
        public = serialization.load_pem_public_key(data)
    else:
        raise ValueError("not a public key")
    kty: Literal["RSA", "EC", "OKP"]
    if isinstance(public, rsa.RSAPublicKey):
        kty = "RSA"
    elif isinstance(public, ec.EllipticCurvePublicKey):
        kty = "EC"
    elif isinstance(public, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        kty = "OKP"
    else:
        raise ValueError("unsupported key type")
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, kty


def load_pem_keys(pems: Iterable[str], name: str) -> list[VerifyKey]:
    """PEM public keys or certificates (their public key is used), several blocks per string
    allowed.

    Raises:
        InvalidRequest: a block that is not an RSA, EC or EdDSA public key or certificate
            (private keys are refused: they do not belong in configuration that is read back).
    """
    keys: list[VerifyKey] = []
    for text in pems:
        blocks = list(_PEM_BLOCK.finditer(text))
        if not blocks:
            raise InvalidRequest(f"{name}: expected PEM-encoded public keys or certificates")
        for block in blocks:
            try:
                pem, kty = _public_key_pem(block.group(0), block.group(1))
                key = import_key(pem, kty)
            except (ValueError, TypeError, JoseError):
                raise InvalidRequest(
                    f"{name}: expected PEM-encoded public keys or certificates"
                ) from None
            if isinstance(key, RSAKey | ECKey | OKPKey):
                keys.append(key)
    return keys


@functools.lru_cache(maxsize=64)
def cached_pem_keys(pems: tuple[str, ...], name: str) -> tuple[VerifyKey, ...]:
    """:func:`load_pem_keys`, parsed once per distinct configuration (logins reuse it)."""
    return tuple(load_pem_keys(pems, name))


def keys_from_jwks(document: Any) -> list[VerifyKey]:
    """The signature keys of a JWK Set: symmetric keys, encryption keys and anything we
    cannot import are skipped; private members are dropped before import."""
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise InvalidRequest("JWKS: expected an object with a 'keys' list")
    keys: list[VerifyKey] = []
    for entry in document["keys"]:
        if not isinstance(entry, Mapping) or entry.get("kty") not in ("RSA", "EC", "OKP"):
            continue
        if entry.get("use", "sig") != "sig":
            continue
        public = {k: v for k, v in entry.items() if k not in _PRIVATE_MEMBERS}
        try:
            key = import_key(public, entry["kty"])
        except (ValueError, TypeError, JoseError):
            continue
        if isinstance(key, RSAKey | ECKey | OKPKey):
            keys.append(key)
    return keys


def _fits(key: VerifyKey, alg: str) -> bool:
    declared = key.get("alg")
    if declared is not None and declared != alg:
        return False
    if alg.startswith(("RS", "PS")):
        return isinstance(key, RSAKey)
    if alg in _EC_CURVE:
        return isinstance(key, ECKey) and key.curve_name == _EC_CURVE[alg]
    if alg == "EdDSA":
        return isinstance(key, OKPKey) and key.curve_name in ("Ed25519", "Ed448")
    return False


def _registry(alg: str) -> jws.JWSRegistry:
    # this one algorithm only; header members we do not know (identity providers add their
    # own, e.g. "nonce") are tolerated, as go-jose does: none of them is acted on
    return jws.JWSRegistry(algorithms=[alg], strict_check_header=False)


def candidates(keys: Sequence[VerifyKey], header: JWSHeader) -> list[VerifyKey]:
    """The configured keys that may have signed a token with this header: of the right type
    and curve, and (when the token names a ``kid``) with that kid or none at all."""
    return [
        key
        for key in keys
        if _fits(key, header.alg) and (header.kid is None or key.kid in (None, header.kid))
    ]


def verify_signature(
    token: str, header: JWSHeader, keys: Sequence[VerifyKey], allowed_algs: Sequence[str]
) -> dict[str, Any]:
    """The claims of ``token`` if one of ``keys`` verifies its signature.

    Raises:
        InvalidRequest: an algorithm outside ``allowed_algs`` (or not asymmetric), no key
            verifies the signature, or the payload is not a JSON object.
    """
    if header.alg not in allowed_algs or header.alg not in ASYMMETRIC_ALGS:
        raise InvalidRequest("token signed with unexpected algorithm")
    for key in candidates(keys, header):
        try:
            with warnings.catch_warnings():
                # "EdDSA" is the algorithm name Vault (hashicorp/cap) accepts; RFC 9864 now
                # prefers "Ed25519"/"Ed448" and joserfc warns about the old name. The
                # signature check is the same.
                warnings.simplefilter("ignore", SecurityWarning)
                signature = jws.deserialize_compact(token, key, registry=_registry(header.alg))
        except (JoseError, ValueError, TypeError):
            continue
        try:
            claims = orjson.loads(signature.payload)
        except ValueError:
            raise InvalidRequest("malformed JWT: bad payload") from None
        if not isinstance(claims, dict):
            raise InvalidRequest("malformed JWT: bad payload")
        return claims
    raise InvalidRequest("error verifying token signature")


def audiences(claims: Mapping[str, Any]) -> list[str]:
    """``aud`` as a list: a single string is exactly a one-element list (RFC 7519 4.1.3)."""
    aud = claims.get("aud")
    if aud is None:
        return []
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list) and all(isinstance(item, str) for item in aud):
        return list(aud)
    raise InvalidRequest("invalid audience (aud) claim")


@dataclass(frozen=True, slots=True)
class Leeways:
    """Seconds; 0 means "the default" and a negative value means "none" (Vault's rule)."""

    clock_skew: int = 0
    expiration: int = 0
    not_before: int = 0


def _effective(value: int, default: int) -> int:
    return 0 if value < 0 else value or default


def _numeric(claims: Mapping[str, Any], name: str) -> float:
    value = claims.get(name)
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequest(f"invalid {name} claim")
    return float(value)


def check_times(
    claims: Mapping[str, Any], now: float, leeways: Leeways, *, allow_missing: bool = False
) -> None:
    """Validate ``exp``, ``nbf`` and ``iat`` as hashicorp/cap's jwt.Validator does.

    At least one of them must be present (unless ``allow_missing``). A missing ``exp`` is the
    later of ``iat``/``nbf`` plus the expiration leeway; a missing ``nbf`` is ``iat``, else
    ``exp`` minus the not-before leeway. Then, with the clock-skew leeway: ``now`` must not be
    before ``nbf`` nor after ``exp``, and ``iat`` must not be in the future.

    Raises:
        InvalidRequest: expired, not yet valid, issued in the future, or no time claims.
    """
    iat, exp, nbf = (_numeric(claims, name) for name in ("iat", "exp", "nbf"))
    if not (iat or exp or nbf):
        if allow_missing:
            return
        raise InvalidRequest(
            "no issued at (iat), not before (nbf), or expiration time (exp) claims in token"
        )
    if not exp:
        exp = max(iat, nbf) + _effective(leeways.expiration, _DEFAULT_LEEWAY)
    if not nbf:
        nbf = iat or exp - _effective(leeways.not_before, _DEFAULT_LEEWAY)
    skew = _effective(leeways.clock_skew, _DEFAULT_CLOCK_SKEW)
    if now + skew < nbf:
        raise InvalidRequest("invalid not before (nbf) claim: token not yet valid")
    if now - skew > exp:
        raise InvalidRequest("invalid expiration time (exp) claim: token is expired")
    if iat and now + skew < iat:
        raise InvalidRequest("invalid issued at (iat) claim: token issued in the future")
