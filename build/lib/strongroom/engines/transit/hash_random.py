"""hash/ and random/: key-less utilities.

``hash(/<algorithm>)`` returns the sha2-* or sha3-* digest of base64 ``input`` as ``sum``,
hex (default) or base64. ``random(/<source>)(/<bytes>)`` returns ``bytes`` (default 32, at most
128 KiB) random bytes as ``random_bytes``, base64 (default) or hex. All sources (``platform``,
``seal``, ``all``) read the operating system's CSPRNG: Strongroom has no seal-provided entropy.
"""

from __future__ import annotations

import binascii
import secrets
from dataclasses import dataclass

from strongroom.engines.transit._crypto import b64decode, digest, hash_algorithm
from strongroom.engines.transit._policy import b64
from strongroom.errors import InvalidRequest
from strongroom.framework import Path
from strongroom.logical import Operation, Request, Response

__all__ = ["MAX_RANDOM_BYTES", "HashRandomPaths"]

MAX_RANDOM_BYTES = 128 * 1024
_SOURCES = ("platform", "seal", "all")
_HASH_ALGORITHMS = (
    "sha2-224",
    "sha2-256",
    "sha2-384",
    "sha2-512",
    "sha3-224",
    "sha3-256",
    "sha3-384",
    "sha3-512",
)


@dataclass(frozen=True, slots=True)
class HashArgs:
    urlalgorithm: str = ""
    input: str | None = None
    algorithm: str = "sha2-256"
    format: str = "hex"


@dataclass(frozen=True, slots=True)
class RandomArgs:
    urlsource: str = ""
    urlbytes: str = ""
    bytes: int = 32
    format: str = "base64"
    source: str = "platform"


def _encode(data: bytes, fmt: str) -> str:
    return binascii.hexlify(data).decode("ascii") if fmt == "hex" else b64(data)


class HashRandomPaths:
    async def hash(self, request: Request, args: HashArgs) -> Response:
        """Vault's pathHashWrite."""
        if args.input is None:
            raise InvalidRequest("input missing")
        data = b64decode(args.input, "input")
        if args.format not in ("hex", "base64"):
            raise InvalidRequest(
                f'unsupported encoding format {args.format}; must be "hex" or "base64"'
            )
        algorithm = args.urlalgorithm or args.algorithm
        if algorithm not in _HASH_ALGORITHMS:
            raise InvalidRequest(f"unsupported algorithm {algorithm}")
        return Response(data={"sum": _encode(digest(hash_algorithm(algorithm), data), args.format)})

    async def random(self, request: Request, args: RandomArgs) -> Response:
        """Vault's HandleRandomAPI: the URL may name the source, the byte count, or both."""
        source, count = args.source, args.bytes
        if args.urlsource and args.urlbytes:
            source, count = args.urlsource, _url_count(args.urlbytes)
        elif args.urlsource in _SOURCES:
            source = args.urlsource
        elif args.urlsource:
            count = _url_count(args.urlsource)
        if source not in _SOURCES:
            raise InvalidRequest(
                f'unsupported entropy source "{source}"; must be "platform" or "seal", or "all"'
            )
        if count < 1:
            raise InvalidRequest('"bytes" cannot be less than 1')
        if count > MAX_RANDOM_BYTES:
            raise InvalidRequest(f'"bytes" should be less than {MAX_RANDOM_BYTES}')
        if args.format not in ("hex", "base64"):
            raise InvalidRequest(
                f'unsupported encoding format "{args.format}"; must be "hex" or "base64"'
            )
        return Response(data={"random_bytes": _encode(secrets.token_bytes(count), args.format)})

    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=r"hash(?:/(?P<urlalgorithm>[^/]+))?",
                args=HashArgs,
                operations={Operation.UPDATE: self.hash},
                synopsis="Generate a hash sum for input data",
                description=_HASH_HELP,
            ),
            Path(
                pattern=r"random(?:/(?P<urlsource>[^/]+))?(?:/(?P<urlbytes>[^/]+))?",
                args=RandomArgs,
                operations={Operation.UPDATE: self.random},
                synopsis="Generate random bytes",
                description=_RANDOM_HELP,
            ),
        ]


def _url_count(text: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise InvalidRequest("error parsing url-set byte count")
    return int(text)


_HASH_HELP = """\
Returns the hash of the base64 input. Fields: input, algorithm (sha2-224, sha2-256 (default),
sha2-384, sha2-512, sha3-224, sha3-256, sha3-384, sha3-512; also in the URL), format (hex
(default) or base64)."""

_RANDOM_HELP = """\
Returns random bytes from the operating system's CSPRNG. Fields: bytes (default 32, at most
131072; also in the URL), format (base64 (default) or hex), source (platform, seal or all; also
in the URL, which may be random/<source>/<bytes>)."""
