"""Transit key records: key types, versions, the stored policy, and key generation.

A named key is one JSON record at ``policy/<name>`` in the mount's (barrier-encrypted) storage
view, as Vault names it. The record holds the settings and every retained version; version
material is base64 inside::

    {"name": "orders", "type": "aes256-gcm96", "derived": false, ...,
     "keys": {"1": {"key": "<b64>", "hmac_key": "<b64>", "time": <ns>, "public_key": "",
                    "convergent_version": 0}}}

Material per type (``key``): raw bytes for AEAD and HMAC keys; for ed25519 the 64 bytes
``seed || public`` that Go (and so Vault) uses, which key derivation and export depend on;
PKCS#8 DER for ECDSA and RSA. ``key`` is ``null`` for a version imported as a public key only.
Every version except those of ``hmac`` keys carries its own random 32-byte ``hmac_key`` (for
``transit/hmac``); an ``hmac`` key's ``hmac_key`` is its key.

Versions below ``min_available_version`` (``trim``) are deleted from the record. Vault also
keeps an ``archive/<name>`` record to bound load time with thousands of versions; we keep one
record and decode it once into the in-memory cache (``_store``).

Nothing here prints key material: records keep it out of ``repr``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from strongroom.errors import InternalError, InvalidRequest

__all__ = [
    "CURRENT_CONVERGENT_VERSION",
    "HMAC_MAX_KEY_SIZE",
    "HMAC_MIN_KEY_SIZE",
    "KDF_HKDF_SHA256",
    "KEY_TYPES",
    "KEY_TYPES_BY_CODE",
    "POLICY_PREFIX",
    "KeyPolicy",
    "KeyTypeSpec",
    "KeyVersion",
    "Stamp",
    "b64",
    "curve_of",
    "generate_version",
    "key_type",
    "material_from_private",
    "material_from_public_pem",
    "material_from_raw",
    "policy_key",
    "public_of",
]

POLICY_PREFIX = "policy/"
HMAC_MIN_KEY_SIZE = 32
HMAC_MAX_KEY_SIZE = 512
CURRENT_CONVERGENT_VERSION = 3
KDF_HKDF_SHA256 = 1

Family = Literal["aead", "ed25519", "ecdsa", "rsa", "hmac"]


@dataclass(frozen=True, slots=True)
class KeyTypeSpec:
    """What a key type is and what it supports (Vault's ``KeyType`` methods)."""

    name: str
    vault_code: int  # Vault's numeric KeyType, used in backups
    family: Family
    key_bytes: int = 0  # AEAD key size
    curve: str = ""  # ECDSA curve name as Go prints it
    rsa_bits: int = 0

    @property
    def supports_encryption(self) -> bool:
        return self.family in ("aead", "rsa")

    @property
    def supports_signing(self) -> bool:
        return self.family in ("ed25519", "ecdsa", "rsa")

    @property
    def supports_derivation(self) -> bool:
        return self.family in ("aead", "ed25519")

    @property
    def asymmetric(self) -> bool:
        return self.family in ("ed25519", "ecdsa", "rsa")


KEY_TYPES: dict[str, KeyTypeSpec] = {
    spec.name: spec
    for spec in (
        KeyTypeSpec("aes256-gcm96", 0, "aead", key_bytes=32),
        KeyTypeSpec("ecdsa-p256", 1, "ecdsa", curve="P-256"),
        KeyTypeSpec("ed25519", 2, "ed25519"),
        KeyTypeSpec("rsa-2048", 3, "rsa", rsa_bits=2048),
        KeyTypeSpec("rsa-4096", 4, "rsa", rsa_bits=4096),
        KeyTypeSpec("chacha20-poly1305", 5, "aead", key_bytes=32),
        KeyTypeSpec("ecdsa-p384", 6, "ecdsa", curve="P-384"),
        KeyTypeSpec("ecdsa-p521", 7, "ecdsa", curve="P-521"),
        KeyTypeSpec("aes128-gcm96", 8, "aead", key_bytes=16),
        KeyTypeSpec("rsa-3072", 9, "rsa", rsa_bits=3072),
        KeyTypeSpec("hmac", 11, "hmac"),
    )
}
KEY_TYPES_BY_CODE = {spec.vault_code: spec for spec in KEY_TYPES.values()}

_CURVES: dict[str, ec.EllipticCurve] = {
    "P-256": ec.SECP256R1(),
    "P-384": ec.SECP384R1(),
    "P-521": ec.SECP521R1(),
}


def key_type(name: str) -> KeyTypeSpec:
    spec = KEY_TYPES.get(name.lower())
    if spec is None:
        raise InvalidRequest(f"unknown key type {name}")
    return spec


def curve_of(spec: KeyTypeSpec) -> ec.EllipticCurve:
    return _CURVES[spec.curve]


def policy_key(name: str) -> str:
    return POLICY_PREFIX + name


def b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def _unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


# ---- records ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyVersion:
    """One version of a key. ``key`` is None for a version imported as a public key only."""

    key: bytes | None = field(repr=False)
    hmac_key: bytes = field(repr=False)
    created_ns: int
    public_key: str = ""  # PEM (ECDSA, RSA) or base64 (ed25519)
    convergent_version: int = 0
    certificate_chain: str = ""  # PEM, leaf first (keys/:name/set-certificate)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "key": None if self.key is None else b64(self.key),
            "hmac_key": b64(self.hmac_key),
            "time": self.created_ns,
            "public_key": self.public_key,
            "convergent_version": self.convergent_version,
        }
        if self.certificate_chain:
            out["certificate_chain"] = self.certificate_chain
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> KeyVersion:
        return cls(
            key=_unb64(raw.get("key")),
            hmac_key=_unb64(raw.get("hmac_key")) or b"",
            created_ns=int(raw["time"]),
            public_key=str(raw.get("public_key") or ""),
            convergent_version=int(raw.get("convergent_version") or 0),
            certificate_chain=str(raw.get("certificate_chain") or ""),
        )


@dataclass(frozen=True, slots=True)
class Stamp:
    """``backup_info`` / ``restore_info``: when, and the latest version at the time."""

    time_ns: int
    version: int

    def to_json(self) -> dict[str, int]:
        return {"time": self.time_ns, "version": self.version}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any] | None) -> Stamp | None:
        return None if raw is None else cls(int(raw["time"]), int(raw["version"]))


@dataclass(frozen=True, slots=True)
class KeyPolicy:
    """The stored record of a named key (Vault's ``keysutil.Policy``)."""

    name: str
    type: str
    versions: Mapping[int, KeyVersion] = field(default_factory=dict, repr=False)
    latest_version: int = 0
    min_decryption_version: int = 1
    min_encryption_version: int = 0
    min_available_version: int = 0
    derived: bool = False
    kdf: int = KDF_HKDF_SHA256
    convergent_encryption: bool = False
    # Vault stores -1 on keys created since convergent version 3 (the version is per key
    # version); 1 or 2 only on restored legacy keys
    convergent_version: int = 0
    exportable: bool = False
    allow_plaintext_backup: bool = False
    deletion_allowed: bool = False
    auto_rotate_period: int = 0  # seconds
    imported: bool = False
    allow_imported_key_rotation: bool = False
    key_size: int = 0  # HMAC keys only
    backup_info: Stamp | None = None
    restore_info: Stamp | None = None

    @property
    def spec(self) -> KeyTypeSpec:
        return KEY_TYPES[self.type]

    def with_version(self, version: int, entry: KeyVersion) -> KeyPolicy:
        return dataclasses.replace(
            self,
            versions={**self.versions, version: entry},
            latest_version=max(self.latest_version, version),
            min_decryption_version=self.min_decryption_version or 1,
        )

    def effective_convergent_version(self, version: int) -> int:
        """Vault's ``convergentVersion(ver)``: 0 when not convergent."""
        if not self.convergent_encryption:
            return 0
        found = self.versions.get(version)
        if found is not None and found.convergent_version:
            return found.convergent_version
        return self.convergent_version if self.convergent_version > 0 else 1

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "keys": {str(n): v.to_json() for n, v in sorted(self.versions.items())},
            "latest_version": self.latest_version,
            "min_decryption_version": self.min_decryption_version,
            "min_encryption_version": self.min_encryption_version,
            "min_available_version": self.min_available_version,
            "derived": self.derived,
            "kdf": self.kdf,
            "convergent_encryption": self.convergent_encryption,
            "convergent_version": self.convergent_version,
            "exportable": self.exportable,
            "allow_plaintext_backup": self.allow_plaintext_backup,
            "deletion_allowed": self.deletion_allowed,
            "auto_rotate_period": self.auto_rotate_period,
            "imported": self.imported,
            "allow_imported_key_rotation": self.allow_imported_key_rotation,
            "key_size": self.key_size,
            "backup_info": None if self.backup_info is None else self.backup_info.to_json(),
            "restore_info": None if self.restore_info is None else self.restore_info.to_json(),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> KeyPolicy:
        if raw.get("type") not in KEY_TYPES:
            raise InternalError("transit: stored key has an unknown type")
        return cls(
            name=str(raw["name"]),
            type=str(raw["type"]),
            versions={int(n): KeyVersion.from_json(v) for n, v in raw["keys"].items()},
            latest_version=int(raw["latest_version"]),
            min_decryption_version=int(raw.get("min_decryption_version", 1)),
            min_encryption_version=int(raw.get("min_encryption_version", 0)),
            min_available_version=int(raw.get("min_available_version", 0)),
            derived=bool(raw.get("derived", False)),
            kdf=int(raw.get("kdf", KDF_HKDF_SHA256)),
            convergent_encryption=bool(raw.get("convergent_encryption", False)),
            convergent_version=int(raw.get("convergent_version", 0)),
            exportable=bool(raw.get("exportable", False)),
            allow_plaintext_backup=bool(raw.get("allow_plaintext_backup", False)),
            deletion_allowed=bool(raw.get("deletion_allowed", False)),
            auto_rotate_period=int(raw.get("auto_rotate_period", 0)),
            imported=bool(raw.get("imported", False)),
            allow_imported_key_rotation=bool(raw.get("allow_imported_key_rotation", False)),
            key_size=int(raw.get("key_size", 0)),
            backup_info=Stamp.from_json(raw.get("backup_info")),
            restore_info=Stamp.from_json(raw.get("restore_info")),
        )


# ---- material --------------------------------------------------------------------------------


def _pem_public(public: Any) -> str:
    return str(
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")
    )


def _pkcs8(private: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _ed25519_material(private: ed25519.Ed25519PrivateKey) -> tuple[bytes, str]:
    public = private.public_key().public_bytes_raw()
    return private.private_bytes_raw() + public, b64(public)


def generate_version(
    spec: KeyTypeSpec, created_ns: int, *, key_size: int = 0, convergent: bool = False
) -> KeyVersion:
    """Fresh random material for one version. RSA generation is slow: call it in a thread."""
    public = ""
    match spec.family:
        case "aead":
            key = secrets.token_bytes(spec.key_bytes)
        case "hmac":
            key = secrets.token_bytes(key_size or HMAC_MIN_KEY_SIZE)
        case "ed25519":
            key, public = _ed25519_material(ed25519.Ed25519PrivateKey.generate())
        case "ecdsa":
            ec_private = ec.generate_private_key(curve_of(spec))
            key, public = _pkcs8(ec_private), _pem_public(ec_private.public_key())
        case "rsa":
            rsa_private = rsa.generate_private_key(65537, spec.rsa_bits)
            key, public = _pkcs8(rsa_private), _pem_public(rsa_private.public_key())
    return KeyVersion(
        key=key,
        hmac_key=key if spec.family == "hmac" else secrets.token_bytes(32),
        created_ns=created_ns,
        public_key=public,
        convergent_version=CURRENT_CONVERGENT_VERSION if convergent else 0,
    )


def material_from_raw(spec: KeyTypeSpec, raw: bytes, created_ns: int) -> KeyVersion:
    """A symmetric or HMAC version from imported raw bytes (sizes as Vault checks them)."""
    if spec.family == "aead" and len(raw) != spec.key_bytes:
        raise InvalidRequest(f"invalid key size {len(raw)} bytes for key type {spec.name}")
    if spec.family == "hmac" and not HMAC_MIN_KEY_SIZE <= len(raw) <= HMAC_MAX_KEY_SIZE:
        raise InvalidRequest(f"invalid key size {len(raw)} bytes for key type {spec.name}")
    return KeyVersion(
        key=raw,
        hmac_key=raw if spec.family == "hmac" else secrets.token_bytes(32),
        created_ns=created_ns,
    )


def _check_private(spec: KeyTypeSpec, private: Any) -> tuple[bytes, str]:
    if spec.family == "ed25519" and isinstance(private, ed25519.Ed25519PrivateKey):
        return _ed25519_material(private)
    if spec.family == "ecdsa" and isinstance(private, ec.EllipticCurvePrivateKey):
        if private.curve.name != curve_of(spec).name:
            raise InvalidRequest(f"invalid curve: expected {spec.curve}")
        return _pkcs8(private), _pem_public(private.public_key())
    if spec.family == "rsa" and isinstance(private, rsa.RSAPrivateKey):
        if private.key_size != spec.rsa_bits:
            raise InvalidRequest(f"invalid key size: expected {spec.rsa_bits // 8} bytes")
        return _pkcs8(private), _pem_public(private.public_key())
    raise InvalidRequest(f"invalid key type: expected {spec.name}")


def material_from_private(spec: KeyTypeSpec, der: bytes, created_ns: int) -> KeyVersion:
    """An asymmetric version from an imported PKCS#8 DER private key."""
    try:
        private = serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError):
        # the parser's message may quote the input: say nothing about it
        raise InvalidRequest("error parsing asymmetric key: not a PKCS#8 private key") from None
    key, public = _check_private(spec, private)
    return KeyVersion(
        key=key, hmac_key=secrets.token_bytes(32), created_ns=created_ns, public_key=public
    )


def public_of(spec: KeyTypeSpec, public_pem: str) -> str:
    """Parse an imported PEM public key and return it as we store it."""
    try:
        public = serialization.load_pem_public_key(public_pem.encode())
    except (ValueError, TypeError, UnicodeError):
        raise InvalidRequest("error parsing public key: not in PEM format") from None
    if spec.family == "ed25519" and isinstance(public, ed25519.Ed25519PublicKey):
        return b64(public.public_bytes_raw())
    if spec.family == "ecdsa" and isinstance(public, ec.EllipticCurvePublicKey):
        if public.curve.name != curve_of(spec).name:
            raise InvalidRequest(f"invalid curve: expected {spec.curve}")
        return _pem_public(public)
    if spec.family == "rsa" and isinstance(public, rsa.RSAPublicKey):
        if public.key_size != spec.rsa_bits:
            raise InvalidRequest(f"invalid key size: expected {spec.rsa_bits // 8} bytes")
        return _pem_public(public)
    raise InvalidRequest(f"invalid key type: expected {spec.name}")


def material_from_public_pem(spec: KeyTypeSpec, public_pem: str, created_ns: int) -> KeyVersion:
    """A version holding only a public key (verification and RSA encryption only)."""
    return KeyVersion(
        key=None,
        hmac_key=secrets.token_bytes(32),
        created_ns=created_ns,
        public_key=public_of(spec, public_pem),
    )
