"""Root-token OTP encoding (Vault ≥ 1.10: base62 OTP, RawStdEncoding of token XOR otp)."""

from __future__ import annotations

import base64
import string

import pytest

from strongroom import errors
from strongroom.seal import OTP_LENGTH, decode_root_token, encode_root_token, generate_otp

TOKEN = "hvs." + "A" * 24


def test_generate_otp_is_base62_of_token_length() -> None:
    otp = generate_otp()
    assert len(otp) == OTP_LENGTH == len(TOKEN) == 28
    assert set(otp) <= set(string.ascii_letters + string.digits)
    assert generate_otp() != otp
    with pytest.raises(errors.InvalidRequest):
        generate_otp(0)


def test_known_answer() -> None:
    otp = "B" * 28
    encoded = encode_root_token(TOKEN, otp)
    expected = bytes(a ^ b for a, b in zip(TOKEN.encode(), otp.encode(), strict=True))
    assert encoded == base64.b64encode(expected).decode().rstrip("=")
    assert "=" not in encoded  # RawStdEncoding: no padding
    assert decode_root_token(encoded, otp) == TOKEN


def test_round_trip_and_padding_tolerated() -> None:
    otp = generate_otp()
    encoded = encode_root_token(TOKEN, otp)
    assert decode_root_token(encoded, otp) == TOKEN
    padded = encoded + "=" * (-len(encoded) % 4)
    assert decode_root_token(padded, otp) == TOKEN


def test_errors() -> None:
    otp = generate_otp()
    with pytest.raises(errors.InvalidRequest, match="no token"):
        encode_root_token("", otp)
    with pytest.raises(errors.InvalidRequest, match="no otp"):
        encode_root_token(TOKEN, "")
    with pytest.raises(errors.InvalidRequest, match="not equivalent"):
        encode_root_token(TOKEN, otp[:-1])
    with pytest.raises(errors.InvalidRequest, match="base64"):
        decode_root_token("not base64 !!", otp)
    encoded = encode_root_token(TOKEN, otp)
    with pytest.raises(errors.InvalidRequest) as info:
        decode_root_token(encoded, otp[:-1])
    assert otp not in str(info.value) and encoded not in str(info.value)
