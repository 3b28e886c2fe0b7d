"""Shamir over GF(2^8): pure, property-tested."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom import errors
from strongroom.seal import combine, split
from strongroom.seal.shamir import _gf_inv, _gf_mul

# Vault's shamir/tables.go expTable: successive powers of its generator 0xe5.
VAULT_EXP_TABLE_START = [
    0x01, 0xE5, 0x4C, 0xB5, 0xFB, 0x9F, 0xFC, 0x12,
    0x03, 0x34, 0xD4, 0xC4, 0x16, 0xBA, 0x1F, 0x36,
]  # fmt: skip


def _slow_mul(a: int, b: int) -> int:
    """Schoolbook carry-less multiply, then reduce by x^8 + x^4 + x^3 + x + 1."""
    product = 0
    for bit in range(8):
        if (b >> bit) & 1:
            product ^= a << bit
    for bit in range(14, 7, -1):
        if (product >> bit) & 1:
            product ^= 0x11B << (bit - 8)
    return product


def test_field_matches_fips197_and_vault() -> None:
    assert _gf_mul(0x57, 0x83) == 0xC1  # FIPS-197 §4.2
    assert _gf_mul(0x57, 0x13) == 0xFE  # FIPS-197 §4.2.1
    value = 1
    for expected in VAULT_EXP_TABLE_START:
        assert value == expected
        value = _gf_mul(value, 0xE5)


def test_multiplication_is_exhaustively_right() -> None:
    for a in range(256):
        for b in range(256):
            assert _gf_mul(a, b) == _slow_mul(a, b)


def test_inverse() -> None:
    assert _gf_inv(0) == 0
    for a in range(1, 256):
        assert _gf_mul(a, _gf_inv(a)) == 1


def test_known_answer_combine() -> None:
    # secret 0x2a, threshold 2, p(x) = 0x2a + 0x53·x, shares at x = 1, 2, 3 (y || x layout)
    shares = [bytes([0x2A ^ _gf_mul(0x53, x), x]) for x in (1, 2, 3)]
    assert shares == [b"\x79\x01", b"\x8c\x02", b"\xdf\x03"]
    for pair in itertools.combinations(shares, 2):
        assert combine(list(pair)) == b"\x2a"


@settings(max_examples=60, deadline=None)
@given(
    secret=st.binary(min_size=1, max_size=48),
    parts=st.integers(min_value=2, max_value=12),
    data=st.data(),
)
def test_any_threshold_subset_reconstructs(secret: bytes, parts: int, data: st.DataObject) -> None:
    threshold = data.draw(st.integers(min_value=2, max_value=parts), label="threshold")
    shares = split(secret, parts, threshold)
    assert len(shares) == parts
    assert all(len(share) == len(secret) + 1 for share in shares)
    xs = [share[-1] for share in shares]
    assert len(set(xs)) == parts and 0 not in xs
    size = data.draw(st.integers(min_value=threshold, max_value=parts), label="subset size")
    subset = data.draw(st.permutations(shares), label="order")[:size]
    assert combine(subset) == secret


@settings(max_examples=15, deadline=None)
@given(
    secret=st.integers(min_value=0, max_value=255),
    threshold=st.integers(min_value=2, max_value=6),
    data=st.data(),
)
def test_fewer_than_threshold_shares_fit_every_secret(
    secret: int, threshold: int, data: st.DataObject
) -> None:
    """Perfect secrecy, checked exactly: with k-1 shares of a 1-byte secret, every one of the
    256 candidate secrets has exactly one completing k-th share, so k-1 shares rule nothing out.
    """
    shares = data.draw(st.permutations(split(bytes([secret]), 8, threshold)))
    known = shares[: threshold - 1]
    used = {share[-1] for share in known}
    x_new = data.draw(st.sampled_from(sorted(set(range(1, 256)) - used)), label="x_new")
    completions = set()
    for candidate in range(256):
        # The polynomial through (0, candidate) and the known points, evaluated at x_new:
        # shift x by x_new (x -> x + x_new is affine in GF(2^8)) and interpolate at 0.
        shifted = [bytes([s[0], s[-1] ^ x_new]) for s in known] + [bytes([candidate, x_new])]
        y_new = combine(shifted)[0]
        completions.add(y_new)
        assert combine([*known, bytes([y_new, x_new])]) == bytes([candidate])
    assert len(completions) == 256


def test_single_share() -> None:
    [share] = split(b"key material", 1, 1)
    assert len(share) == len(b"key material") + 1
    assert combine([share]) == b"key material"


def test_maximum_parts() -> None:
    secret = bytes(range(32))
    shares = split(secret, 255, 255)
    assert sorted(share[-1] for share in shares) == list(range(1, 256))
    assert combine(shares) == secret


@pytest.mark.parametrize(
    ("secret", "parts", "threshold", "message"),
    [
        (b"s", 2, 3, "parts cannot be less than threshold"),
        (b"s", 256, 3, "parts cannot exceed 255"),
        (b"s", 3, 1, "threshold must be at least 2"),
        (b"s", 3, 0, "threshold must be at least 1"),
        (b"", 3, 2, "cannot split an empty secret"),
    ],
)
def test_split_rejects(secret: bytes, parts: int, threshold: int, message: str) -> None:
    with pytest.raises(errors.InvalidRequest, match=message):
        split(secret, parts, threshold)


def test_combine_rejects() -> None:
    shares = split(b"secret", 3, 2)
    with pytest.raises(errors.InvalidRequest, match="at least one part"):
        combine([])
    with pytest.raises(errors.InvalidRequest, match="at least two bytes"):
        combine([b"\x01", b"\x02"])
    with pytest.raises(errors.InvalidRequest, match="same length"):
        combine([shares[0], shares[1] + b"\x00"])
    with pytest.raises(errors.InvalidRequest, match="duplicate part"):
        combine([shares[0], shares[0]])
    with pytest.raises(errors.InvalidRequest, match="cannot be zero"):
        combine([shares[0], b"secret\x00"])


def test_error_messages_never_echo_shares() -> None:
    shares = split(b"secret", 3, 2)
    with pytest.raises(errors.InvalidRequest) as info:
        combine([shares[0], shares[1] + b"\x00"])
    for share in shares:
        assert share.hex() not in str(info.value)
