"""Attempt records and share helpers shared by the seal manager's state machines.

The attempt records are frozen; the manager swaps in a new record at each step. Shares and
keys are excluded from every ``repr``.
"""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass, field

from strongroom import errors
from strongroom.barrier import KEY_SIZE
from strongroom.seal import shamir
from strongroom.seal._status import SealConfig

__all__ = [
    "MAX_KEY_LENGTH",
    "MIN_KEY_LENGTH",
    "REKEY_CANCEL_GRACE",
    "GenerateRootAttempt",
    "RekeyAttempt",
    "UnsealAttempt",
    "check_key_length",
    "combine_parts",
    "contains",
    "new_nonce",
    "nonce_matches",
    "split_key",
]

MIN_KEY_LENGTH = 16
"""Shortest key share accepted (Vault: the barrier's minimum key length)."""
MAX_KEY_LENGTH = KEY_SIZE + shamir.SHARE_OVERHEAD
"""Longest key share accepted: a 32-byte key plus the x coordinate."""
REKEY_CANCEL_GRACE = 600.0
"""Seconds after ``rekey_init`` during which cancelling needs the nonce (Vault: 10 minutes)."""


def new_nonce() -> str:
    return str(uuid.uuid4())


def nonce_matches(expected: str, given: str) -> bool:
    # Nonces gate unauthenticated operations (e.g. cancelling a rekey): compare in constant time.
    return hmac.compare_digest(expected.encode(), given.encode())


def check_key_length(key: bytes) -> None:
    if len(key) < MIN_KEY_LENGTH:
        raise errors.InvalidRequest(f"key is shorter than minimum {MIN_KEY_LENGTH} bytes")
    if len(key) > MAX_KEY_LENGTH:
        raise errors.InvalidRequest(f"key is longer than maximum {MAX_KEY_LENGTH} bytes")


def contains(parts: tuple[bytes, ...], key: bytes) -> bool:
    found = False
    for part in parts:  # no early exit: the time does not depend on which part matched
        found |= hmac.compare_digest(part, key)
    return found


def combine_parts(parts: tuple[bytes, ...], threshold: int) -> bytes:
    """The unseal key from ``threshold`` parts (with one share the part *is* the key)."""
    if threshold == 1:
        return parts[0]
    try:
        return shamir.combine(list(parts))
    except errors.InvalidRequest as exc:  # shamir's messages name rules, never bytes
        raise errors.InvalidRequest(f"failed to compute combined key: {exc}") from None


def split_key(unseal_key: bytes, config: SealConfig) -> tuple[bytes, ...]:
    if config.secret_shares == 1:
        return (unseal_key,)  # as Vault does: a single share is the unseal key itself
    return tuple(shamir.split(unseal_key, config.secret_shares, config.secret_threshold))


@dataclass(frozen=True, slots=True)
class UnsealAttempt:
    nonce: str
    parts: tuple[bytes, ...] = field(default=(), repr=False)


@dataclass(frozen=True, slots=True)
class GenerateRootAttempt:
    nonce: str
    otp: str = field(repr=False)
    return_otp: bool  # the server generated the OTP, so the init answer carries it
    parts: tuple[bytes, ...] = field(default=(), repr=False)


@dataclass(frozen=True, slots=True)
class RekeyAttempt:
    nonce: str
    config: SealConfig
    verification_required: bool
    created: float  # clock.monotonic()
    parts: tuple[bytes, ...] = field(default=(), repr=False)
    # set once the old quorum is reached and verification is required:
    verification_key: bytes | None = field(default=None, repr=False)
    verification_nonce: str = ""
    verification_parts: tuple[bytes, ...] = field(default=(), repr=False)
