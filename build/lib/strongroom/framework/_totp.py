"""RFC 6238 time-based one-time passwords, shared by the TOTP engine and login MFA.

The algorithm is pyotp's; this module adds what both users need around it: parameter
checks with Vault's messages, the counter a code matched (for replay protection), otpauth
URLs in both directions and the QR code PNG that Vault returns on key generation.

Key material is bytes in :class:`TotpKey` and never appears in its repr or in an error.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import secrets
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson
import png
import pyotp
import qrcode
import qrcode.constants

from strongroom.errors import InvalidRequest, StorageConflict
from strongroom.framework._storage import KeyLocks
from strongroom.logical import Storage, StorageOp

__all__ = [
    "ALGORITHMS",
    "ParsedUrl",
    "TotpKey",
    "UsedSteps",
    "b32_secret",
    "check_params",
    "decode_b32",
    "parse_otpauth_url",
    "qr_png",
]

ALGORITHMS: dict[str, Callable[..., Any]] = {
    "SHA1": hashlib.sha1,
    "SHA256": hashlib.sha256,
    "SHA512": hashlib.sha512,
}


class _TOTP(pyotp.TOTP):
    # Vault imports keys of any length (RFC 6238's own SHA-1 vector is 160 bits, but
    # authenticator exports of 80 bits are common); new keys are generated at key_size.
    min_secret_length_bits: ClassVar[int] = 8


def b32_secret(raw: bytes) -> str:
    """Base32 without padding, as otpauth URLs and Vault's key field carry it."""
    return base64.b32encode(raw).decode("ascii").rstrip("=")


def decode_b32(text: str) -> bytes:
    """Decode a base32 key (any case, padding optional, spaces ignored); 400 if invalid."""
    cleaned = text.replace(" ", "").upper().rstrip("=")
    try:
        raw = base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
    except (ValueError, TypeError):
        raise InvalidRequest("invalid key value: illegal base32 data") from None
    if not raw:
        raise InvalidRequest("the key value is required")
    return raw


@dataclass(frozen=True, slots=True)
class TotpKey:
    """One TOTP key and its parameters (already validated)."""

    key: bytes = field(repr=False)
    issuer: str = ""
    account_name: str = ""
    period: int = 30
    algorithm: str = "SHA1"
    digits: int = 6
    skew: int = 1

    def __post_init__(self) -> None:
        check_params(self.period, self.algorithm, self.digits, self.skew)

    @classmethod
    def generate(cls, key_size: int, **params: Any) -> TotpKey:
        if key_size <= 0:
            raise InvalidRequest("the key_size value must be greater than zero")
        return cls(key=secrets.token_bytes(key_size), **params)

    def _otp(self) -> _TOTP:
        return _TOTP(
            b32_secret(self.key),
            digits=self.digits,
            digest=ALGORITHMS[self.algorithm],
            interval=self.period,
        )

    def code_at(self, counter: int) -> str:
        return self._otp().generate_otp(counter)

    def counter(self, now: float) -> int:
        return int(now) // self.period

    def now_code(self, now: float) -> str:
        return self.code_at(self.counter(now))

    def match(self, code: str, now: float) -> int | None:
        """The time step (counter) ``code`` is valid for at ``now`` within the skew, or None.

        Every candidate is compared in constant time, and all of them are computed, so the
        time taken does not say which step (if any) matched.
        """
        if len(code) != self.digits or not code.isascii() or not code.isdigit():
            raise InvalidRequest("invalid number of digits for the code")
        otp = self._otp()
        current = self.counter(now)
        found: int | None = None
        for step in range(current - self.skew, current + self.skew + 1):
            if step >= 0 and hmac.compare_digest(otp.generate_otp(step), code):
                found = step if found is None else found
        return found

    def used_until(self, step: int) -> float:
        """When a code of time step ``step`` stops validating (its replay record can go)."""
        return float((step + self.skew + 1) * self.period)

    def url(self) -> str:
        """The otpauth URL, with Vault's parameter order (algorithm, digits, issuer, period)."""
        label = urllib.parse.quote(self.account_name, safe="@")
        if self.issuer:
            label = urllib.parse.quote(self.issuer, safe="") + ":" + label
        query = urllib.parse.urlencode(
            {
                "algorithm": self.algorithm,
                "digits": str(self.digits),
                "issuer": self.issuer,
                "period": str(self.period),
                "secret": b32_secret(self.key),
            },
            quote_via=urllib.parse.quote,
        )
        return f"otpauth://totp/{label}?{query}"


def check_params(period: int, algorithm: str, digits: int, skew: int) -> None:
    """Vault's checks on a key's parameters, with its messages."""
    if period <= 0:
        raise InvalidRequest("the period value must be greater than zero")
    if algorithm not in ALGORITHMS:
        raise InvalidRequest("the algorithm value is not valid")
    if digits not in (6, 8):
        raise InvalidRequest("the digits value can only be 6 or 8")
    if skew not in (0, 1):
        raise InvalidRequest("the skew value must be 0 or 1")


@dataclass(frozen=True, slots=True)
class ParsedUrl:
    """What an otpauth URL sets; ``None`` for parameters it leaves out."""

    key: bytes = field(repr=False)
    issuer: str | None = None
    account_name: str | None = None
    period: int | None = None
    algorithm: str | None = None
    digits: int | None = None


def parse_otpauth_url(url: str) -> ParsedUrl:
    """Parse ``otpauth://totp/Issuer:account?secret=…&…``; 400 with a message if invalid.

    The message never repeats the URL: it carries the secret.
    """
    try:
        parts = urllib.parse.urlsplit(url.strip())
        query = urllib.parse.parse_qs(parts.query, strict_parsing=False)
    except ValueError:
        raise InvalidRequest("an error occurred while parsing url string") from None
    if parts.scheme.lower() != "otpauth" or parts.netloc.lower() != "totp":
        raise InvalidRequest("the url is not a valid otpauth://totp/ url")
    secret = (query.get("secret") or [""])[0]
    if not secret:
        raise InvalidRequest("the key value is required")
    label = urllib.parse.unquote(parts.path.lstrip("/"))
    issuer_from_label, sep, account = label.partition(":")
    if not sep:
        issuer_from_label, account = "", label
    issuer = (query.get("issuer") or [issuer_from_label])[0] or None
    algorithm = (query.get("algorithm") or [""])[0]
    return ParsedUrl(
        key=decode_b32(secret),
        issuer=issuer,
        account_name=account.strip() or None,
        period=_url_int(query, "period"),
        algorithm=algorithm.upper() if algorithm else None,
        digits=_url_int(query, "digits"),
    )


def _url_int(query: dict[str, list[str]], name: str) -> int | None:
    values = query.get(name)
    if not values:
        return None
    try:
        return int(values[0])
    except ValueError:
        raise InvalidRequest(f"the {name} value in the url is not a number") from None


# quiet zone in modules around the code (ISO/IEC 18004 asks for 4)
_QR_BORDER = 4


def qr_png(text: str, size: int) -> bytes:
    """A ``size`` x ``size`` 1-bit greyscale PNG of ``text`` as a QR code (medium ECC).

    CPU-bound (tens of milliseconds): callers run it in a worker thread.
    """
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=_QR_BORDER)
    qr.add_data(text)
    qr.make(fit=True)
    matrix: list[list[bool]] = qr.get_matrix()
    modules = len(matrix)
    # nearest-neighbour scaling to exactly size x size pixels, as Vault's barcode.Scale
    index = [min(modules - 1, (pixel * modules) // size) for pixel in range(size)]
    rows = []
    for y in index:
        row = matrix[y]
        rows.append([0 if row[x] else 1 for x in index])
    out = io.BytesIO()
    png.Writer(size, size, greyscale=True, bitdepth=1).write(out, rows)
    return out.getvalue()


class UsedSteps:
    """Replay protection: each time step of a key validates at most once.

    The record at ``record_key`` maps used steps to the time their code stops validating;
    expired entries are pruned on every claim, so it stays a handful of entries. Claims on
    this node are serialised by a per-key lock; the write is also guarded on the exact
    record read (``StorageOp(check=True)``), so a claim racing another process's fails
    with a conflict, is re-read and then sees the step used.
    """

    _ATTEMPTS = 5

    def __init__(self) -> None:
        self._locks = KeyLocks()

    async def claim(
        self, storage: Storage, record_key: str, step: int, until: float, now: float
    ) -> bool:
        """Mark ``step`` used; False if it already was (the code is a replay)."""
        async with self._locks.hold(record_key):
            for _ in range(self._ATTEMPTS):
                raw = await storage.get(record_key)
                used: dict[str, float] = {} if raw is None else orjson.loads(raw)
                used = {s: t for s, t in used.items() if t > now}
                if str(step) in used:
                    return False
                used[str(step)] = until
                try:
                    await storage.transaction(
                        [
                            StorageOp(record_key, raw, check=True),
                            StorageOp(record_key, orjson.dumps(used)),
                        ]
                    )
                except StorageConflict:
                    continue
                return True
        # another process kept winning the race: refuse rather than risk a double use
        return False
