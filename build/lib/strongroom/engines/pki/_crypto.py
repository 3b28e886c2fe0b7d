"""Key generation, key and certificate encodings, and the small helpers every path uses.

Everything here is pure (no storage, no clock): keys in, bytes out. RSA key generation is
slow (tens to hundreds of milliseconds), so :func:`generate_key` runs it in a worker
thread; the event loop never waits on it.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import secrets
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import NameOID

from strongroom.errors import InvalidRequest

__all__ = [
    "CURVES",
    "KeySpec",
    "PrivateKey",
    "PublicKey",
    "cert_der",
    "cert_pem",
    "der_b64",
    "encode_private_key",
    "format_serial",
    "generate_key",
    "key_bits_of",
    "key_spec",
    "key_type_of",
    "load_cert",
    "load_certs",
    "load_private_key",
    "new_serial",
    "normalize_serial",
    "private_pkcs8_pem",
    "sign_padding",
    "signature_hash",
    "subject_key_id",
    "utf8_other_name",
]

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

CURVES: dict[int, ec.EllipticCurve] = {
    224: ec.SECP224R1(),
    256: ec.SECP256R1(),
    384: ec.SECP384R1(),
    521: ec.SECP521R1(),
}
_RSA_BITS = (2048, 3072, 4096, 8192)


@dataclass(frozen=True, slots=True)
class KeySpec:
    """A validated key type and size: ``rsa`` 2048+, ``ec`` 224/256/384/521, ``ed25519``."""

    type: str
    bits: int


def key_spec(key_type: str, key_bits: int, *, allow_any: bool = False) -> KeySpec:
    """Vault's defaults and checks (``certutil.ValidateKeyTypeLength``)."""
    if key_type == "any" and allow_any:
        return KeySpec("any", 0)
    if key_type == "rsa":
        bits = key_bits or 2048
        if bits < 2048:
            raise InvalidRequest(f"RSA keys < 2048 bits are unsafe and not supported: got {bits}")
        if bits not in _RSA_BITS:
            raise InvalidRequest(f"unsupported bit length for RSA key: {bits}")
        return KeySpec("rsa", bits)
    if key_type == "ec":
        bits = key_bits or 256
        if bits not in CURVES:
            raise InvalidRequest(f"unsupported bit length for EC key: {bits}")
        return KeySpec("ec", bits)
    if key_type == "ed25519":
        return KeySpec("ed25519", 0)
    raise InvalidRequest(f"unknown key type: {key_type}")


def _generate(spec: KeySpec) -> PrivateKey:
    if spec.type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=spec.bits)
    if spec.type == "ec":
        return ec.generate_private_key(CURVES[spec.bits])
    return ed25519.Ed25519PrivateKey.generate()


async def generate_key(spec: KeySpec) -> PrivateKey:
    """A new private key; RSA in a worker thread (it takes 50-500 ms)."""
    if spec.type == "rsa":
        return await asyncio.to_thread(_generate, spec)
    return _generate(spec)


def key_type_of(key: PrivateKey | PublicKey | Any) -> str:
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return "rsa"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return "ec"
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "ed25519"
    raise InvalidRequest("unsupported key type")


def key_bits_of(key: PrivateKey | PublicKey | Any) -> int:
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return int(key.key_size)
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return int(key.curve.key_size)
    return 0


def signature_hash(key: PrivateKey, signature_bits: int = 0) -> hashes.HashAlgorithm | None:
    """The digest to sign with: ``None`` for Ed25519; by curve for EC unless asked."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    bits = signature_bits
    if not bits:
        bits = 256
        if isinstance(key, ec.EllipticCurvePrivateKey):
            bits = {384: 384, 521: 512}.get(key.curve.key_size, 256)
    if bits == 256:
        return hashes.SHA256()
    if bits == 384:
        return hashes.SHA384()
    if bits == 512:
        return hashes.SHA512()
    raise InvalidRequest(f"unsupported signature_bits: {signature_bits}")


def sign_padding(key: PrivateKey, use_pss: bool) -> padding.AsymmetricPadding | None:
    if use_pss and isinstance(key, rsa.RSAPrivateKey):
        return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
    return None


def private_pkcs8_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def encode_private_key(key: PrivateKey, fmt: str, private_key_format: str) -> str:
    """Vault's encodings: PKCS#1 (RSA) / SEC1 (EC) unless ``pkcs8``; Ed25519 is PKCS#8."""
    pkcs8 = private_key_format == "pkcs8" or isinstance(key, ed25519.Ed25519PrivateKey)
    form = (
        serialization.PrivateFormat.PKCS8
        if pkcs8
        else serialization.PrivateFormat.TraditionalOpenSSL
    )
    if fmt == "der" or private_key_format == "der":
        raw = key.private_bytes(serialization.Encoding.DER, form, serialization.NoEncryption())
        return base64.b64encode(raw).decode()
    return (
        key.private_bytes(serialization.Encoding.PEM, form, serialization.NoEncryption())
        .decode()
        .strip()
    )


def load_private_key(data: bytes) -> PrivateKey:
    """A PEM private key (PKCS#1, SEC1 or PKCS#8). The error never quotes the input."""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise InvalidRequest("could not parse the private key") from None
    if not isinstance(
        key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    ):
        raise InvalidRequest("unsupported private key type")
    return key


def load_cert(data: bytes | str) -> x509.Certificate:
    """One certificate from PEM (the first block) or DER."""
    raw = data.encode() if isinstance(data, str) else data
    try:
        if raw.lstrip().startswith(b"-----"):
            return x509.load_pem_x509_certificate(raw)
        return x509.load_der_x509_certificate(raw)
    except ValueError:
        raise InvalidRequest("could not parse the certificate") from None


def load_certs(pem: str) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle (private keys and other blocks are skipped)."""
    try:
        return x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        return []


def cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode().strip()


def cert_der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def der_b64(cert: x509.Certificate) -> str:
    return base64.b64encode(cert_der(cert)).decode()


def new_serial() -> int:
    """A random positive 159-bit serial (RFC 5280: at most 20 octets, positive)."""
    return secrets.randbits(159) | (1 << 64)


def format_serial(serial: int) -> str:
    """Vault's colon-separated lower-case hex (``17:67:16:b0:…``)."""
    raw = serial.to_bytes(max(1, (serial.bit_length() + 7) // 8), "big")
    return ":".join(f"{b:02x}" for b in raw)


def normalize_serial(text: str) -> str:
    """A serial as given by clients (``aa:bb``, ``aa-bb``, ``AABB``) → ``aa:bb``."""
    cleaned = text.strip().lower().replace("-", ":")
    if ":" not in cleaned and len(cleaned) > 2:
        if len(cleaned) % 2:
            cleaned = "0" + cleaned
        cleaned = ":".join(cleaned[i : i + 2] for i in range(0, len(cleaned), 2))
    parts = cleaned.split(":")
    if not all(len(p) == 2 and all(c in "0123456789abcdef" for c in p) for p in parts):
        raise InvalidRequest("invalid serial number")
    return cleaned


def subject_key_id(public_key: PublicKey) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(public_key)


def _der_length(size: int) -> bytes:
    if size < 0x80:
        return bytes([size])
    raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def utf8_other_name(oid: str, value: str) -> x509.OtherName:
    """An otherName SAN holding a UTF8String (Vault's ``<oid>;UTF8:<value>``)."""
    raw = value.encode()
    try:
        type_id = x509.ObjectIdentifier(oid)
    except ValueError:
        raise InvalidRequest(f"invalid other_sans OID: {oid}") from None
    return x509.OtherName(type_id, b"\x0c" + _der_length(len(raw)) + raw)


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def common_name_of(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else ""
