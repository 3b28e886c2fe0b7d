"""Shamir secret sharing over GF(2^8), share-compatible with Vault's ``shamir`` package.

Each byte of the secret is the constant term of its own random polynomial of degree
``threshold - 1``; a share is the polynomials' values at one x coordinate, laid out as Vault
lays them out: ``y_0 .. y_{n-1} || x`` (so a share is one byte longer than the secret). The
field is GF(2^8) with the AES polynomial x^8 + x^4 + x^3 + x + 1, the field of Vault's tables.

Trusts: nothing. Every argument is checked; errors name the rule, never a share's content.
Promises: any ``threshold`` distinct shares rebuild the secret; fewer say nothing about it
(perfect secrecy: every coefficient above the constant term is uniform, zero included, so we
deliberately do not force a non-zero leading coefficient as old Vault did).

Side channels: arithmetic never branches on, or indexes a table with, a secret value. Field
multiplication is the shift-and-add ("Russian peasant") loop with masks; inversion is
exponentiation (a^254) and is only ever applied to x coordinates, which are public. All bytes
of a secret are processed at once as one packed integer (SWAR), so the running time depends on
the secret's length, the share count and the threshold, not on the secret's bytes. CPython
gives no hard constant-time guarantee: its integers are variable-length, so an intermediate
value with leading zero bytes may be a machine digit (30 bits) shorter and marginally faster.
That residue is far below what the network shows for an operator API called a handful of
times; what this design removes is the real leak, the cache timing of log/exp tables.
"""

from __future__ import annotations

import secrets

from strongroom import errors

__all__ = ["MAX_PARTS", "SHARE_OVERHEAD", "combine", "split"]

SHARE_OVERHEAD = 1
"""Bytes a share adds to the secret: the trailing x coordinate."""

MAX_PARTS = 255

_REDUCE = 0x1B  # x^8 reduced modulo x^8 + x^4 + x^3 + x + 1


def _ones(width: int) -> int:
    """0x0101…01 with ``width`` bytes: the low bit of every packed byte."""
    return int.from_bytes(b"\x01" * width, "big")


def _xtime(v: int, ones: int) -> int:
    """Multiply every packed byte of ``v`` by x (i.e. by 2), reducing each byte on its own."""
    hi = (v >> 7) & ones  # top bit of every byte, moved to that byte's bit 0
    # hi * 0x1B puts 0x1B in exactly the bytes that overflowed; no carries cross bytes.
    return ((v << 1) & (ones * 0xFE)) ^ (hi * _REDUCE)


def _mul(v: int, scalar: int, ones: int) -> int:
    """Multiply every packed byte of ``v`` by the field element ``scalar``.

    Eight rounds, always: bit k of ``scalar`` becomes an all-ones or all-zeros mask
    (``-(s & 1)``), so neither operand steers a branch or an index.
    """
    out = 0
    for _ in range(8):
        out ^= v & -(scalar & 1)
        v = _xtime(v, ones)
        scalar >>= 1
    return out


def _gf_mul(a: int, b: int) -> int:
    """Multiply two field elements (single bytes)."""
    return _mul(a, b, 1)


def _gf_inv(a: int) -> int:
    """a^-1 = a^254 (Fermat); 0 maps to 0. The exponent is public, so its bits may branch."""
    result, base, exponent = 1, a, 254
    while exponent:
        if exponent & 1:
            result = _gf_mul(result, base)
        base = _gf_mul(base, base)
        exponent >>= 1
    return result


def _evaluate(coefficients: list[int], x: int, ones: int) -> int:
    """Horner's rule on packed coefficients (constant term first) at public ``x``."""
    out = coefficients[-1]
    for coefficient in reversed(coefficients[:-1]):
        out = _mul(out, x, ones) ^ coefficient
    return out


def split(secret: bytes, parts: int, threshold: int) -> list[bytes]:
    """Split ``secret`` into ``parts`` shares, any ``threshold`` of which rebuild it.

    Args:
        secret: at least one byte.
        parts: 1..255 shares to produce.
        threshold: 2..parts shares needed to rebuild; 1 only when ``parts`` is 1 (a single
            share that is the secret plus its x coordinate).

    Returns:
        ``parts`` shares of ``len(secret) + 1`` bytes, each ``y-bytes || x``, with distinct
        x coordinates drawn at random from 1..255 (as current Vault does).

    Raises:
        errors.InvalidRequest: the arguments break one of the rules above.
    """
    if parts < threshold:
        raise errors.InvalidRequest("parts cannot be less than threshold")
    if parts > MAX_PARTS:
        raise errors.InvalidRequest("parts cannot exceed 255")
    if threshold < 1:
        raise errors.InvalidRequest("threshold must be at least 1")
    if threshold < 2 and parts != 1:
        raise errors.InvalidRequest("threshold must be at least 2")
    if len(secret) == 0:
        raise errors.InvalidRequest("cannot split an empty secret")

    width = len(secret)
    ones = _ones(width)
    # One packed polynomial for all bytes: coefficient k holds byte i's k-th coefficient at
    # byte position i. Coefficients above the constant term are uniformly random.
    coefficients = [int.from_bytes(secret, "big")]
    coefficients += [
        int.from_bytes(secrets.token_bytes(width), "big") for _ in range(threshold - 1)
    ]
    # x coordinates are public; drawing them at random matches Vault and costs nothing.
    xs = secrets.SystemRandom().sample(range(1, 256), parts)
    shares = [_evaluate(coefficients, x, ones).to_bytes(width, "big") + bytes([x]) for x in xs]
    coefficients.clear()
    return shares


def combine(parts: list[bytes]) -> bytes:
    """Rebuild a secret from shares made by :func:`split` (or by Vault).

    Given at least the threshold number of distinct shares of one split, this returns the
    secret; given fewer, or shares of different splits, it returns unrelated bytes (Shamir
    cannot tell; callers verify the result, e.g. by decrypting with it).

    Raises:
        errors.InvalidRequest: no shares, shares shorter than two bytes or of different
            lengths, a zero or repeated x coordinate.
    """
    if not parts:
        raise errors.InvalidRequest("at least one part is required to reconstruct the secret")
    length = len(parts[0])
    if length < 2:
        raise errors.InvalidRequest("parts must be at least two bytes")
    if any(len(part) != length for part in parts):
        raise errors.InvalidRequest("all parts must be the same length")
    xs = [part[-1] for part in parts]
    if 0 in xs:
        raise errors.InvalidRequest("invalid part: x coordinate cannot be zero")
    if len(set(xs)) != len(xs):
        raise errors.InvalidRequest("duplicate part detected")

    width = length - 1
    ones = _ones(width)
    secret = 0
    for i, part in enumerate(parts):
        # Lagrange basis polynomial i evaluated at 0: prod_j x_j / (x_i + x_j). It depends
        # only on the public x coordinates, so it is computed once, not per byte.
        numerator, denominator = 1, 1
        for j, x_j in enumerate(xs):
            if j != i:
                numerator = _gf_mul(numerator, x_j)
                denominator = _gf_mul(denominator, xs[i] ^ x_j)
        basis = _gf_mul(numerator, _gf_inv(denominator))
        secret ^= _mul(int.from_bytes(part[:width], "big"), basis, ones)
    return secret.to_bytes(width, "big")
