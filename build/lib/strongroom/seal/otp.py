"""One-time pads for ``sys/generate-root``: how the new root token travels, and how to unwrap it.

Vault ≥ 1.10 semantics: the server generates a base62 OTP as long as a root token (28
characters: ``hvs.`` plus 24), returns it once, and on completion answers with
``encoded_token = base64.RawStdEncoding(token XOR otp)``. The CLI's
``operator generate-root -decode`` reverses it with :func:`decode_root_token`.

Pure. Errors never quote the token, the OTP or the encoded value.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import string

from strongroom import errors

__all__ = ["OTP_LENGTH", "decode_root_token", "encode_root_token", "generate_otp"]

OTP_LENGTH = 28
"""Length of our root tokens ("hvs." + 24 base62 characters), hence of every OTP."""

_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


def generate_otp(length: int = OTP_LENGTH) -> str:
    """A uniformly random base62 string of ``length`` characters."""
    if length < 1:
        raise errors.InvalidRequest("OTP length must be positive")
    return "".join(secrets.choice(_BASE62) for _ in range(length))


def _xor(a: bytes, b: bytes) -> bytes:
    if len(a) != len(b):
        raise errors.InvalidRequest(
            f"length of byte slices is not equivalent: {len(a)} != {len(b)}"
        )
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def encode_root_token(token: str, otp: str) -> str:
    """``base64`` (standard alphabet, no padding) of ``token XOR otp``.

    Raises:
        errors.InvalidRequest: empty token or OTP, or their lengths differ.
    """
    if not token:
        raise errors.InvalidRequest("no token provided")
    if not otp:
        raise errors.InvalidRequest("no otp provided")
    mixed = _xor(otp.encode(), token.encode())
    return base64.b64encode(mixed).decode("ascii").rstrip("=")


def decode_root_token(encoded: str, otp: str) -> str:
    """Recover the root token from ``encoded_token`` and the OTP given at ``init``.

    Accepts the value with or without ``=`` padding.

    Raises:
        errors.InvalidRequest: not base64, or not the OTP's length, or not text.
    """
    stripped = encoded.strip().rstrip("=")
    try:
        raw = base64.b64decode(stripped + "=" * (-len(stripped) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise errors.InvalidRequest("error decoding base64'd token") from None
    try:
        return _xor(raw, otp.encode()).decode("utf-8")
    except UnicodeDecodeError:
        raise errors.InvalidRequest("decoded token is not valid text") from None
