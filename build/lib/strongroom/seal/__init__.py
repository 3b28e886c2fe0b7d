"""Sealing: Shamir secret sharing and the operator state machines around the barrier.

:mod:`~strongroom.seal.shamir` is pure and constant-time; :class:`SealManager` runs init,
unseal/seal, rotate, generate-root and rekey with Vault's API semantics; every status object
has a ``to_json()`` holding exactly the fields of Vault's answer.
"""

from __future__ import annotations

from strongroom.seal._status import (
    GenerateRootStatus,
    InitResult,
    RekeyResult,
    RekeyStatus,
    RekeyVerificationResult,
    RekeyVerificationStatus,
    SealConfig,
    UnsealProgress,
)
from strongroom.seal.manager import (
    MAX_KEY_LENGTH,
    MIN_KEY_LENGTH,
    REKEY_CANCEL_GRACE,
    SealManager,
)
from strongroom.seal.otp import OTP_LENGTH, decode_root_token, encode_root_token, generate_otp
from strongroom.seal.shamir import combine, split

__all__ = [
    "MAX_KEY_LENGTH",
    "MIN_KEY_LENGTH",
    "OTP_LENGTH",
    "REKEY_CANCEL_GRACE",
    "GenerateRootStatus",
    "InitResult",
    "RekeyResult",
    "RekeyStatus",
    "RekeyVerificationResult",
    "RekeyVerificationStatus",
    "SealConfig",
    "SealManager",
    "UnsealProgress",
    "combine",
    "decode_root_token",
    "encode_root_token",
    "generate_otp",
    "split",
]
