"""sys/tools/random[/:source][/:bytes], sys/tools/hash[/:algorithm] and sys/decode-token."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass

from strongroom.core.system._context import SysContext
from strongroom.errors import InvalidRequest
from strongroom.framework import Endpoint
from strongroom.logical import Operation, Request, Response
from strongroom.seal.otp import decode_root_token

__all__ = ["TABLE"]

_MAX_RANDOM_BYTES = 128 * 1024
_SOURCES = ("platform", "seal", "all")
_HASHES = {
    "sha2-224": hashlib.sha224,
    "sha2-256": hashlib.sha256,
    "sha2-384": hashlib.sha384,
    "sha2-512": hashlib.sha512,
    "sha3-224": hashlib.sha3_224,
    "sha3-256": hashlib.sha3_256,
    "sha3-384": hashlib.sha3_384,
    "sha3-512": hashlib.sha3_512,
}


@dataclass(frozen=True, slots=True)
class RandomArgs:
    bytes: int = 32
    format: str = "base64"
    source: str = "platform"
    url_bytes: str = ""
    url_source: str = ""


@dataclass(frozen=True, slots=True)
class HashArgs:
    input: str = ""
    algorithm: str = "sha2-256"
    format: str = "hex"
    url_algorithm: str = ""


@dataclass(frozen=True, slots=True)
class DecodeTokenArgs:
    encoded_token: str = ""
    otp: str = ""


def _encode(raw: bytes, fmt: str) -> str:
    if fmt == "hex":
        return raw.hex()
    if fmt == "base64":
        return base64.b64encode(raw).decode("ascii")
    raise InvalidRequest(f'unsupported encoding format "{fmt}"; must be "hex" or "base64"')


async def _random(ctx: SysContext, request: Request, args: RandomArgs) -> Response:
    count = args.bytes
    if args.url_bytes:
        if not args.url_bytes.isdigit():
            raise InvalidRequest(f"error parsing url-set byte count: {args.url_bytes[:20]!r}")
        count = int(args.url_bytes)
    source = args.url_source or args.source
    if source not in _SOURCES:
        raise InvalidRequest(
            f'unsupported entropy source "{source[:40]}"; must be "platform" or "seal", or "all"'
        )
    if count < 1:
        raise InvalidRequest("'bytes' cannot be less than 1")
    if count > _MAX_RANDOM_BYTES:
        raise InvalidRequest(f"'bytes' should be less than {_MAX_RANDOM_BYTES}")
    fmt = args.format
    _encode(b"", fmt)  # refuse an unknown format before drawing
    # The Shamir seal has no entropy source of its own: "seal" and "all" use the OS
    # CSPRNG, which is what "platform" is (Vault warns the same way).
    warnings = (
        ["no seal/entropy augmentation available, using platform entropy source"]
        if source == "seal"
        else []
    )
    return Response(data={"random_bytes": _encode(os.urandom(count), fmt)}, warnings=warnings)


async def _hash_input(ctx: SysContext, request: Request, args: HashArgs) -> Response:
    algorithm = args.url_algorithm or args.algorithm
    digest = _HASHES.get(algorithm)
    if digest is None:
        raise InvalidRequest(f"unsupported algorithm {algorithm[:40]}")
    if args.format not in ("hex", "base64"):
        raise InvalidRequest(
            f"unsupported encoding format {args.format[:20]}; must be hex or base64"
        )
    try:
        data = base64.b64decode(args.input, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("unable to decode input as base64") from None
    return Response(data={"sum": _encode(digest(data).digest(), args.format)})


async def _decode_token(ctx: SysContext, request: Request, args: DecodeTokenArgs) -> Response:
    if not args.encoded_token:
        raise InvalidRequest("encoded_token is required")
    if not args.otp:
        raise InvalidRequest("otp is required")
    return Response(data={"token": decode_root_token(args.encoded_token, args.otp)})


_update = Operation.UPDATE


_SOURCE = r"(?P<url_source>platform|seal|all|[^/0-9][^/]*)"


TABLE: list[Endpoint[SysContext]] = [
    Endpoint(
        r"tools/random(?:/" + _SOURCE + r")?(?:/(?P<url_bytes>[^/]+))?",
        {_update: _random},
        RandomArgs,
        synopsis="Random bytes",
        description="Bytes from the OS CSPRNG, base64 or hex.",
    ),
    Endpoint(
        r"tools/hash(?:/(?P<url_algorithm>[^/]+))?",
        {_update: _hash_input},
        HashArgs,
        synopsis="Hash data (SHA-2, SHA-3)",
    ),
    Endpoint(
        r"decode-token",
        {_update: _decode_token},
        DecodeTokenArgs,
        synopsis="Decode an encoded root token with its OTP",
    ),
]
