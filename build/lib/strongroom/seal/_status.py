"""Records the seal manager hands out: the stored seal config, and one status or result per
operator flow. Each ``to_json()`` returns exactly the fields of Vault's HTTP API for that
response, so the ``sys/`` handlers can return it as-is (adding only server-wide fields such as
``version`` or ``cluster_name`` to the unseal answer).

Key shares, OTPs and encoded tokens are kept out of every ``repr``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import orjson

from strongroom import errors
from strongroom.seal.otp import OTP_LENGTH

__all__ = [
    "GenerateRootStatus",
    "InitResult",
    "RekeyResult",
    "RekeyStatus",
    "RekeyVerificationResult",
    "RekeyVerificationStatus",
    "SealConfig",
    "UnsealProgress",
]


@dataclass(frozen=True, slots=True)
class SealConfig:
    """How the unseal key is split. Stored in plain JSON at ``core/seal-config``."""

    secret_shares: int
    secret_threshold: int

    def validate(self) -> None:
        """Vault's ``SealConfig.Validate`` rules, with its messages.

        Raises:
            errors.InvalidRequest: a rule is broken.
        """
        shares, threshold = self.secret_shares, self.secret_threshold
        if shares < 1:
            raise errors.InvalidRequest("shares must be at least one")
        if threshold < 1:
            raise errors.InvalidRequest("threshold must be at least one")
        if shares > 1 and threshold == 1:
            raise errors.InvalidRequest("threshold must be greater than one for multiple shares")
        if shares > 255:
            raise errors.InvalidRequest("shares must be less than 256")
        if threshold > 255:
            raise errors.InvalidRequest("threshold must be less than 256")
        if threshold > shares:
            raise errors.InvalidRequest("threshold cannot be larger than shares")

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "shamir",
            "secret_shares": self.secret_shares,
            "secret_threshold": self.secret_threshold,
            "stored_shares": 1,
        }

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.to_json())

    @classmethod
    def from_bytes(cls, data: bytes) -> SealConfig:
        """Parse the stored record (untrusted: it lives outside the barrier).

        Raises:
            errors.InternalError: malformed or invalid.
        """
        try:
            record = orjson.loads(data)
            shares, threshold = record["secret_shares"], record["secret_threshold"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise errors.InternalError("seal configuration is malformed") from None
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (shares, threshold)):
            raise errors.InternalError("seal configuration is malformed")
        config = cls(shares, threshold)
        try:
            config.validate()
        except errors.InvalidRequest as exc:
            raise errors.InternalError(f"stored seal configuration is invalid: {exc}") from None
        return config


def _hex(keys: tuple[bytes, ...]) -> list[str]:
    return [key.hex() for key in keys]


def _b64(keys: tuple[bytes, ...]) -> list[str]:
    return [base64.b64encode(key).decode("ascii") for key in keys]


@dataclass(frozen=True, slots=True)
class InitResult:
    """The unseal key shares from ``initialize``, shown once (``PUT sys/init``)."""

    keys: tuple[bytes, ...] = field(repr=False)

    def to_json(self, root_token: str = "") -> dict[str, Any]:
        """``{"keys", "keys_base64", "root_token"}``; core mints and passes the root token."""
        return {"keys": _hex(self.keys), "keys_base64": _b64(self.keys), "root_token": root_token}


@dataclass(frozen=True, slots=True)
class UnsealProgress:
    """``PUT sys/unseal`` / ``GET sys/seal-status``: ``t`` threshold, ``n`` shares."""

    sealed: bool
    t: int
    n: int
    progress: int
    nonce: str

    def to_json(self) -> dict[str, Any]:
        return {
            "sealed": self.sealed,
            "t": self.t,
            "n": self.n,
            "progress": self.progress,
            "nonce": self.nonce,
        }


@dataclass(frozen=True, slots=True)
class GenerateRootStatus:
    """``sys/generate-root/attempt`` and ``sys/generate-root/update``.

    ``otp`` is set only on the answer to the request that started the attempt;
    ``encoded_token`` only on the answer that completed it.
    """

    started: bool
    nonce: str
    progress: int
    required: int
    complete: bool = False
    encoded_token: str = field(default="", repr=False)
    otp: str = field(default="", repr=False)
    otp_length: int = OTP_LENGTH
    pgp_fingerprint: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "nonce": self.nonce,
            "progress": self.progress,
            "required": self.required,
            "complete": self.complete,
            "encoded_token": self.encoded_token,
            "encoded_root_token": self.encoded_token,
            "pgp_fingerprint": self.pgp_fingerprint,
            "otp": self.otp,
            "otp_length": self.otp_length,
        }


@dataclass(frozen=True, slots=True)
class RekeyStatus:
    """``GET``/``PUT sys/rekey/init``, and ``sys/rekey/update`` before the quorum.

    ``t``/``n`` are the new threshold/shares; ``required`` is the current threshold.
    """

    started: bool
    nonce: str
    t: int
    n: int
    progress: int
    required: int
    verification_required: bool = False
    verification_nonce: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "nonce": self.nonce,
            "started": self.started,
            "t": self.t,
            "n": self.n,
            "progress": self.progress,
            "required": self.required,
            "pgp_fingerprints": None,
            "backup": False,
            "verification_required": self.verification_required,
        }
        if self.verification_nonce:  # Go: `json:"verification_nonce,omitempty"`
            out["verification_nonce"] = self.verification_nonce
        return out


@dataclass(frozen=True, slots=True)
class RekeyResult:
    """``sys/rekey/update`` once the quorum is reached: the new shares, shown once.

    With ``verification_required`` the shares are not in force yet: they must be proven
    through ``sys/rekey/verify`` with ``verification_nonce``.
    """

    nonce: str
    keys: tuple[bytes, ...] = field(repr=False)
    verification_required: bool = False
    verification_nonce: str = ""
    complete: bool = True

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "nonce": self.nonce,
            "complete": self.complete,
            "keys": _hex(self.keys),
            "keys_base64": _b64(self.keys),
            "pgp_fingerprints": None,
            "backup": False,
            "verification_required": self.verification_required,
        }
        if self.verification_nonce:
            out["verification_nonce"] = self.verification_nonce
        return out


@dataclass(frozen=True, slots=True)
class RekeyVerificationStatus:
    """``GET``/``DELETE sys/rekey/verify``, and ``PUT`` before the new quorum."""

    started: bool
    nonce: str
    t: int
    n: int
    progress: int

    def to_json(self) -> dict[str, Any]:
        return {
            "nonce": self.nonce,
            "started": self.started,
            "t": self.t,
            "n": self.n,
            "progress": self.progress,
        }


@dataclass(frozen=True, slots=True)
class RekeyVerificationResult:
    """``PUT sys/rekey/verify`` once the new shares were proven and put in force."""

    nonce: str
    complete: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"nonce": self.nonce, "complete": self.complete}
