"""SSH key material: the CA key pair (generated or imported), public keys to sign, and the
key-type/length policy of ``allowed_user_key_lengths``. Built on ``cryptography``'s OpenSSH
serialisation; nothing here parses the wire format by hand.

RSA key generation takes seconds: callers run :func:`generate_key` in a worker thread.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from strongroom.errors import InvalidRequest

__all__ = [
    "CAKey",
    "PrivateKey",
    "PublicKey",
    "check_key_lengths",
    "generate_key",
    "key_name",
    "normalise_key_lengths",
    "parse_public_key",
    "private_key_pem",
    "public_key_hash",
    "public_key_line",
]

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

_CURVES: dict[int, ec.EllipticCurve] = {
    256: ec.SECP256R1(),
    384: ec.SECP384R1(),
    521: ec.SECP521R1(),
}
_KEY_TYPES = {
    "rsa": "rsa",
    "ssh-rsa": "rsa",
    "ec": "ec",
    "ecdsa": "ec",
    "ecdsa-sha2-nistp256": "ec256",
    "ecdsa-sha2-nistp384": "ec384",
    "ecdsa-sha2-nistp521": "ec521",
    "ed25519": "ed25519",
    "ssh-ed25519": "ed25519",
}
MIN_RSA_BITS = 2048


def generate_key(key_type: str, key_bits: int) -> PrivateKey:
    """A new CA (or ``issue/``) key pair, with Vault's defaults: RSA 4096, P-256."""
    kind = _KEY_TYPES.get(key_type.lower())
    if kind is None:
        raise InvalidRequest(f"unknown ssh key pair algorithm: {key_type}")
    if kind == "rsa":
        bits = key_bits or 4096
        if bits < MIN_RSA_BITS:
            raise InvalidRequest(f"refusing to generate weak rsa key: {bits} bits < 2048 bits")
        if bits > 8192:
            raise InvalidRequest(f"refusing to generate rsa key larger than 8192 bits: {bits}")
        return rsa.generate_private_key(public_exponent=65537, key_size=bits)
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    bits = int(kind[2:]) if kind != "ec" else (key_bits or 256)
    curve = _CURVES.get(bits)
    if curve is None:
        raise InvalidRequest(f"invalid ec key bits: {bits} (256, 384 or 521)")
    return ec.generate_private_key(curve)


def key_name(key: PublicKey | PrivateKey) -> str:
    """The OpenSSH key type name: ``ssh-rsa``, ``ecdsa-sha2-nistp256``, ``ssh-ed25519``."""
    public = key.public_key() if not isinstance(key, PublicKey) else key
    return public_key_line(public).split(" ", 1)[0]


def public_key_line(key: PublicKey) -> str:
    """``ssh-ed25519 AAAA…`` followed by a newline, as Vault returns public keys."""
    raw = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return raw.decode("ascii") + "\n"


def parse_public_key(text: str, what: str = "public_key") -> PublicKey:
    """An ``authorized_keys``-style line (type, base64, optional comment); 400 if malformed."""
    parts = text.strip().split()
    if len(parts) < 2:
        raise InvalidRequest(f"failed to parse {what} as SSH key: expected '<type> <base64>'")
    try:
        key = serialization.load_ssh_public_key(f"{parts[0]} {parts[1]}".encode("ascii"))
    except (ValueError, UnsupportedAlgorithm, UnicodeEncodeError):
        raise InvalidRequest(
            f"failed to parse {what} as SSH key: malformed or unsupported key"
        ) from None
    if not isinstance(key, PublicKey):
        raise InvalidRequest(f"failed to parse {what} as SSH key: unsupported key type")
    return key


def _parse_private_key(text: str) -> PrivateKey:
    data = text.strip().encode("ascii", "replace") + b"\n"
    key: Any
    try:
        if b"OPENSSH PRIVATE KEY" in data:
            key = serialization.load_ssh_private_key(data, password=None)
        else:
            key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # the message never repeats the key
        raise InvalidRequest("could not parse private_key provided value") from None
    if not isinstance(key, PrivateKey):
        raise InvalidRequest("private_key: unsupported key type")
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < MIN_RSA_BITS:
        raise InvalidRequest(f"private_key: rsa keys must be at least {MIN_RSA_BITS} bits")
    return key


@dataclass(frozen=True, slots=True)
class CAKey:
    """The engine's signing key pair. Stored as OpenSSH PEM behind the barrier."""

    private_key: PrivateKey = field(repr=False)

    @classmethod
    def imported(cls, private_key: str, public_key: str) -> CAKey:
        key = _parse_private_key(private_key)
        public = parse_public_key(public_key)
        if public_key_line(public) != public_key_line(key.public_key()):
            raise InvalidRequest("public_key does not match private_key")
        return cls(key)

    @classmethod
    def loaded(cls, pem: bytes) -> CAKey:
        key = serialization.load_ssh_private_key(pem, password=None)
        if not isinstance(key, PrivateKey):
            raise InvalidRequest("stored CA key has an unsupported type")
        return cls(key)

    def pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )

    @property
    def public_key(self) -> str:
        return public_key_line(self.private_key.public_key())

    @property
    def is_rsa(self) -> bool:
        return isinstance(self.private_key, rsa.RSAPrivateKey)


def private_key_pem(key: PrivateKey) -> str:
    """What ``issue/`` hands out: OpenSSH format, as ``ssh-keygen`` writes it."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode("ascii")


def public_key_hash(key: PublicKey) -> str:
    """Vault's ``{{public_key_hash}}``: SHA-256 of the key's wire form, hex."""
    line = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return hashlib.sha256(base64.b64decode(line.split(b" ")[1])).hexdigest()


# ---- allowed_user_key_lengths -------------------------------------------------------------

_SHORT_NAMES = {
    "rsa": "ssh-rsa",
    "ec": "ec",
    "ecdsa": "ec",
    "ed25519": "ssh-ed25519",
}


def normalise_key_lengths(value: Mapping[str, Any]) -> dict[str, list[int]]:
    """``{"rsa": [2048, 3072], "ec": 256}`` with values as an int, a list, or "a,b"."""
    out: dict[str, list[int]] = {}
    for name, raw in value.items():
        if isinstance(raw, bool):
            raise InvalidRequest("allowed_user_key_lengths: lengths must be integers")
        if isinstance(raw, int):
            lengths = [raw]
        elif isinstance(raw, str):
            lengths = [_as_int(part) for part in raw.split(",") if part.strip()]
        elif isinstance(raw, Sequence):
            lengths = [_as_int(part) for part in raw]
        else:
            raise InvalidRequest("allowed_user_key_lengths: lengths must be integers")
        out[str(name)] = lengths
    return out


def _as_int(value: Any) -> int:
    try:
        if isinstance(value, bool):
            raise ValueError
        return int(str(value).strip())
    except ValueError:
        raise InvalidRequest("allowed_user_key_lengths: lengths must be integers") from None


def _key_bits(key: PublicKey) -> int:
    if isinstance(key, rsa.RSAPublicKey):
        return key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.curve.key_size
    return 256


def check_key_lengths(allowed: Mapping[str, Sequence[int]], key: PublicKey) -> None:
    """Vault's allowed_user_key_lengths: the key's type must be listed and, for types whose
    size varies (RSA, and "ec" naming every curve), its size too. Empty allows every key."""
    if not allowed:
        return
    name, bits = key_name(key), _key_bits(key)
    for entry, lengths in allowed.items():
        wanted = _SHORT_NAMES.get(entry, entry)
        if wanted == "ec":
            if not name.startswith("ecdsa-"):
                continue
        elif wanted != name:
            continue
        fixed = name == "ssh-ed25519" or (name.startswith("ecdsa-") and wanted != "ec")
        if fixed or bits in lengths:
            return
        raise InvalidRequest(
            f"public_key failed to meet the key requirements: key is of an invalid size: {bits}"
        )
    family = {"ssh-rsa": "rsa", "ssh-ed25519": "ed25519"}.get(name, "ecdsa")
    raise InvalidRequest(
        f"public_key failed to meet the key requirements: key of type {family} is not allowed"
    )


# What ``default`` means for an RSA CA (Vault's choice); the SHA-1 ``ssh-rsa`` is never made.
RSA_SIGNERS = {"rsa-sha2-256": hashes.SHA256, "rsa-sha2-512": hashes.SHA512}
DEFAULT_RSA_SIGNER = "rsa-sha2-256"


def _ssh_string(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def resign_rsa_certificate(line: str, key: rsa.RSAPrivateKey, algorithm: str) -> str:
    """An OpenSSH certificate line signed again by the same RSA CA key with ``algorithm``.

    ``cryptography``'s builder signs RSA certificates with rsa-sha2-512 only. A certificate's
    signature is its last field (PROTOCOL.certkeys), over every byte before it, so the
    blob's head is kept and the signature field replaced: string(string(algorithm) ||
    string(RSASSA-PKCS1-v1_5 signature)) (RFC 8332).
    """
    if algorithm == "rsa-sha2-512":
        return line
    kind, encoded, *_ = line.split()
    blob = base64.b64decode(encoded)
    modulus_bytes = (key.key_size + 7) // 8
    field_len = 4 + 4 + len(b"rsa-sha2-512") + 4 + modulus_bytes
    head, field = blob[:-field_len], blob[-field_len:]
    expected = _ssh_string(b"rsa-sha2-512")
    if int.from_bytes(field[:4], "big") != field_len - 4 or field[4 : 4 + len(expected)] != (
        expected
    ):
        raise ValueError("unexpected certificate signature layout")
    signature = key.sign(head, padding.PKCS1v15(), RSA_SIGNERS[algorithm]())
    signed = head + _ssh_string(_ssh_string(algorithm.encode()) + _ssh_string(signature))
    return f"{kind} {base64.b64encode(signed).decode('ascii')}"
