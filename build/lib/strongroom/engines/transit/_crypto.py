"""Cryptographic operations on a loaded key: encrypt, decrypt, sign, verify, HMAC.

A :class:`LoadedKey` wraps one immutable :class:`~._policy.KeyPolicy` snapshot and keeps the
objects ``cryptography`` needs (an ``AESGCM`` per version, parsed private and public keys)
so a request does no decoding of the stored record. Changes to a key build a new
``LoadedKey``; nothing here mutates the policy.

Formats follow Vault: ciphertexts, signatures and HMACs are ``vault:v<N>:<base64>``; an AEAD
ciphertext's payload is ``nonce(12) || ciphertext || tag``; ECDSA signatures are ASN.1 DER,
or ``r || s`` in URL-safe base64 without padding for ``marshaling_algorithm=jws``.

Key derivation (``derived=true``) is HKDF-SHA256 with the version's key as input keying
material, no salt and the request context as ``info``. For convergent encryption (version
3, the only one new keys get) the derivation yields the encryption key followed by a 32-byte
nonce key, and the nonce is ``HMAC-SHA256(nonce key, plaintext)[:12]``, so the same
plaintext and context always give the same ciphertext. Derived ed25519 keys use the first 32
derived bytes (HKDF over Go's 64-byte private key) as the seed.

Errors say what was wrong with the request, never anything about plaintext, ciphertext or
key material. Past the public ``vault:v<N>:`` prefix, every decryption failure (bad base64,
tampering, truncation, a wrong context or associated data) is the same flat
:class:`~strongroom.errors.CryptoError`; the decision is the AEAD's own constant-time tag
check, with nothing compared before it.
"""

from __future__ import annotations

import binascii
import math
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, utils
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from strongroom.engines.transit._policy import (
    KDF_HKDF_SHA256,
    KeyPolicy,
    KeyVersion,
    b64,
)
from strongroom.errors import CryptoError, InternalError, InvalidRequest
from strongroom.framework import nonce_bytes

__all__ = [
    "AUTH_FAILED",
    "HASHES",
    "MISSING_CONTEXT",
    "TOO_OLD",
    "LoadedKey",
    "b64decode",
    "digest",
    "hash_algorithm",
    "hmac_sum",
    "split_versioned",
]

AUTH_FAILED = "cipher: message authentication failed"
TOO_OLD = "ciphertext or signature version is disallowed by policy (too old)"
MISSING_CONTEXT = (
    "missing 'context' for key derivation; the key was created using a derived key, which "
    "means additional, per-request information must be included in order to perform "
    "operations with the key"
)
NONCE_SIZE = 12

HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha2-224": hashes.SHA224,
    "sha2-256": hashes.SHA256,
    "sha2-384": hashes.SHA384,
    "sha2-512": hashes.SHA512,
    "sha3-224": hashes.SHA3_224,
    "sha3-256": hashes.SHA3_256,
    "sha3-384": hashes.SHA3_384,
    "sha3-512": hashes.SHA3_512,
}
# a prehashed ECDSA input names no hash: any hash of the input's length signs the same way
_BY_DIGEST_SIZE: dict[int, type[hashes.HashAlgorithm]] = {
    20: hashes.SHA1,
    28: hashes.SHA224,
    32: hashes.SHA256,
    48: hashes.SHA384,
    64: hashes.SHA512,
}
_CURVE_BYTES = {"P-256": 32, "P-384": 48, "P-521": 66}
_PREFIX = "vault:v"

Aead = AESGCM | ChaCha20Poly1305


def b64decode(value: str, what: str) -> bytes:
    """Strict standard base64 (as Go's ``StdEncoding``); the message never quotes the value."""
    try:
        return binascii.a2b_base64(value.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError):
        raise InvalidRequest(f"unable to decode {what} as base64") from None


def _urlsafe_b64decode(value: str) -> bytes:
    text = value.replace("-", "+").replace("_", "/")
    return b64decode(text + "=" * (-len(text) % 4), "signature")


def hash_algorithm(name: str) -> hashes.HashAlgorithm:
    cls = HASHES.get(name)
    if cls is None:
        raise InvalidRequest(f"unsupported algorithm {name}")
    return cls()


def digest(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    h = hashes.Hash(algorithm)
    h.update(data)
    return h.finalize()


def hmac_sum(key: bytes, algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    mac = crypto_hmac.HMAC(key, algorithm)
    mac.update(data)
    return mac.finalize()


def split_versioned(value: str, what: str) -> tuple[int, str]:
    """``vault:v<N>:<payload>`` → (N, payload). Only the public prefix is examined."""
    if not value.startswith(_PREFIX):
        raise InvalidRequest(f"invalid {what}: no prefix")
    number, sep, payload = value[len(_PREFIX) :].partition(":")
    if not sep:
        raise InvalidRequest(f"invalid {what}: wrong number of fields")
    if not number.isascii() or not number.lstrip("+-").isdigit() or len(number) > 18:
        raise InvalidRequest(f"invalid {what}: version number could not be decoded")
    return int(number), payload


def _hkdf(ikm: bytes, context: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=context).derive(ikm)


def _new_aead(family_key_bytes: int, name: str, key: bytes) -> Aead:
    if len(key) != family_key_bytes:
        raise InternalError("transit: derived key has the wrong length")
    return ChaCha20Poly1305(key) if name == "chacha20-poly1305" else AESGCM(key)


def _rsa_padding(scheme: str) -> padding.AsymmetricPadding:
    if scheme in ("", "oaep"):
        return padding.OAEP(
            mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None
        )
    if scheme == "pkcs1v15":
        return padding.PKCS1v15()
    raise InvalidRequest(f"unknown padding scheme: {scheme}")


class LoadedKey:
    """A policy snapshot plus ready-to-use cryptographic objects. Never prints material."""

    __slots__ = ("_aeads", "_prefixes", "_privates", "_publics", "policy", "rotate_at", "spec")

    def __init__(self, policy: KeyPolicy) -> None:
        self.policy = policy
        self.spec = policy.spec
        self._aeads: dict[int, Aead] = {}
        self._privates: dict[int, Any] = {}
        self._publics: dict[int, Any] = {}
        self._prefixes: dict[int, str] = {}
        # when the engine must rotate this key (Unix seconds); inf when never
        self.rotate_at = math.inf
        if policy.auto_rotate_period > 0 and (
            not policy.imported or policy.allow_imported_key_rotation
        ):
            latest = policy.versions.get(policy.latest_version)
            if latest is not None:
                self.rotate_at = latest.created_ns / 1e9 + policy.auto_rotate_period

    def __repr__(self) -> str:
        p = self.policy
        return f"LoadedKey(name={p.name!r}, type={p.type!r}, latest_version={p.latest_version})"

    # ---- versions and material -------------------------------------------------------------

    def entry(self, version: int) -> KeyVersion:
        found = self.policy.versions.get(version)
        if found is None:
            raise InvalidRequest("no such key version")
        return found

    def _current_version(self, requested: int, action: str, *, check_min: bool) -> int:
        p = self.policy
        if requested == 0:
            return p.latest_version
        if requested < 0:
            raise InvalidRequest(f"requested version for {action} is negative")
        if requested > p.latest_version:
            raise InvalidRequest(
                f"requested version for {action} is higher than the latest key version"
            )
        if check_min and p.min_encryption_version > 0 and requested < p.min_encryption_version:
            raise InvalidRequest(
                f"requested version for {action} is less than the minimum encryption key version"
            )
        return requested

    def _verification_version(self, value: str, what: str) -> tuple[int, str]:
        version, payload = split_versioned(value, what)
        if version == 0 and what == "ciphertext":
            version = 1  # Vault: ciphertexts from when key versions started at 0
        if version > self.policy.latest_version:
            raise InvalidRequest(f"invalid {what}: version is too new")
        if version < self.policy.min_decryption_version:
            raise InvalidRequest(TOO_OLD)
        return version, payload

    def _derive(self, version: int, context: bytes, length: int) -> bytes:
        if self.policy.kdf != KDF_HKDF_SHA256:
            raise InvalidRequest("unsupported key derivation mode")
        if not context:
            raise InvalidRequest(MISSING_CONTEXT)
        material = self.entry(version).key
        if material is None:
            raise InvalidRequest("key version has no private part to derive from")
        return _hkdf(material, context, length)

    def _aead(self, version: int) -> Aead:
        aead = self._aeads.get(version)
        if aead is None:
            material = self.entry(version).key
            if material is None:
                raise InternalError("transit: symmetric key version without material")
            aead = self._aeads[version] = _new_aead(len(material), self.spec.name, material)
        return aead

    def _private(self, version: int) -> Any:
        key = self._privates.get(version)
        if key is None:
            material = self.entry(version).key
            if material is None:
                raise InvalidRequest("requested version does not contain a private part")
            if self.spec.family == "ed25519":
                key = ed25519.Ed25519PrivateKey.from_private_bytes(material[:32])
            else:
                key = serialization.load_der_private_key(material, password=None)
            self._privates[version] = key
        return key

    def public(self, version: int) -> Any:
        key = self._publics.get(version)
        if key is None:
            entry = self.entry(version)
            if self.spec.family == "ed25519":
                key = ed25519.Ed25519PublicKey.from_public_bytes(
                    b64decode(entry.public_key, "public key")
                )
            else:
                key = serialization.load_pem_public_key(entry.public_key.encode())
            self._publics[version] = key
        return key

    def derived_ed25519(self, version: int, context: bytes) -> ed25519.Ed25519PrivateKey:
        return ed25519.Ed25519PrivateKey.from_private_bytes(self._derive(version, context, 32))

    def prefix(self, version: int) -> str:
        prefix = self._prefixes.get(version)
        if prefix is None:
            prefix = self._prefixes[version] = f"{_PREFIX}{version}:"
        return prefix

    # ---- encryption ------------------------------------------------------------------------

    def plain_sealer(self) -> Callable[[bytes], str] | None:
        """For a non-derived AEAD key: seal with the latest version, no options (the batch
        hot path, equivalent to ``encrypt(plaintext)``); None for other keys."""
        p = self.policy
        if self.spec.family != "aead" or p.derived:
            return None
        aead, prefix = self._aead(p.latest_version), self.prefix(p.latest_version)

        def seal(plaintext: bytes) -> str:
            nonce = nonce_bytes(NONCE_SIZE)
            return prefix + b64(nonce + aead.encrypt(nonce, plaintext, None))

        return seal

    def encrypt(
        self,
        plaintext: bytes,
        *,
        version: int = 0,
        context: bytes = b"",
        nonce: bytes = b"",
        associated_data: bytes | None = None,
        padding_scheme: str = "",
    ) -> tuple[str, int]:
        """Returns (``vault:v<N>:…``, N)."""
        spec, p = self.spec, self.policy
        if not spec.supports_encryption:
            raise InvalidRequest(f"message encryption not supported for key type {spec.name}")
        ver = self._current_version(version, "encryption", check_min=True)
        if spec.family == "rsa":
            public = self.public(ver)
            out = public.encrypt(plaintext, _rsa_padding(padding_scheme))
            return self.prefix(ver) + b64(out), ver
        convergent = p.effective_convergent_version(ver)
        if nonce and convergent != 1:
            raise InvalidRequest("provided nonce not allowed for this key")
        size = spec.key_bytes
        nonce_key = context
        if p.derived:
            material = self._derive(ver, context, size + (32 if convergent >= 3 else 0))
            aead = _new_aead(size, spec.name, material[:size])
            if convergent >= 3:
                nonce_key = material[size:]
        else:
            aead = self._aead(ver)
        if convergent == 1:
            if len(nonce) != NONCE_SIZE:
                raise InvalidRequest(
                    "base64-decoded nonce must be 12 bytes long when using convergent "
                    "encryption with this key"
                )
            sealed = aead.encrypt(nonce, plaintext, associated_data)
        else:
            if convergent:
                nonce = hmac_sum(nonce_key, hashes.SHA256(), plaintext)[:NONCE_SIZE]
            else:
                nonce = nonce_bytes(NONCE_SIZE)
            sealed = nonce + aead.encrypt(nonce, plaintext, associated_data)
        return self.prefix(ver) + b64(sealed), ver

    def decrypt(
        self,
        ciphertext: str,
        *,
        context: bytes = b"",
        nonce: bytes = b"",
        associated_data: bytes | None = None,
        padding_scheme: str = "",
    ) -> tuple[bytes, int]:
        """Returns (plaintext, the version that encrypted it)."""
        spec, p = self.spec, self.policy
        if not spec.supports_encryption:
            raise InvalidRequest(f"message decryption not supported for key type {spec.name}")
        ver, payload = self._verification_version(ciphertext, "ciphertext")
        convergent = p.effective_convergent_version(ver)
        if convergent == 1 and not nonce:
            raise InvalidRequest("invalid convergent nonce supplied")
        try:
            data = binascii.a2b_base64(payload.encode("ascii"), strict_mode=True)
        except (binascii.Error, UnicodeEncodeError):
            # past the version prefix every failure reads the same (Vault would say
            # "invalid ciphertext: could not decode base64")
            raise CryptoError(AUTH_FAILED) from None
        if spec.family == "rsa":
            private = self._private(ver)
            try:
                return private.decrypt(data, _rsa_padding(padding_scheme)), ver
            except ValueError:
                raise CryptoError("crypto/rsa: decryption error") from None
        if p.derived:
            aead = _new_aead(spec.key_bytes, spec.name, self._derive(ver, context, spec.key_bytes))
        else:
            aead = self._aead(ver)
        if convergent == 1:
            iv, body = nonce, data
        else:
            iv, body = data[:NONCE_SIZE], data[NONCE_SIZE:]
        if len(iv) != NONCE_SIZE:
            raise CryptoError(AUTH_FAILED)
        try:
            return aead.decrypt(iv, body, associated_data), ver
        except InvalidTag:
            raise CryptoError(AUTH_FAILED) from None

    # ---- signatures ------------------------------------------------------------------------

    def sign(
        self,
        data: bytes,
        *,
        version: int = 0,
        context: bytes = b"",
        hash_name: str = "sha2-256",
        prehashed: bool = False,
        signature_algorithm: str = "",
        marshaling: str = "asn1",
        salt_length: int = 0,
    ) -> tuple[str, int, bytes | None]:
        """Returns (``vault:v<N>:…``, N, the derived public key for derived ed25519 keys)."""
        spec, p = self.spec, self.policy
        ver = self._current_version(version, "signing", check_min=True)
        if self.entry(ver).key is None:
            raise InvalidRequest("requested version for signing does not contain a private part")
        public_key: bytes | None = None
        if spec.family == "ed25519":
            if p.derived:
                private = self.derived_ed25519(ver, context)
                public_key = private.public_key().public_bytes_raw()
            else:
                private = self._private(ver)
            signature = private.sign(data)
        elif spec.family == "ecdsa":
            algorithm = _ecdsa_algorithm(hash_name, data, prehashed)
            signature = self._private(ver).sign(data, ec.ECDSA(algorithm))
            if marshaling == "jws":
                signature = _der_to_jws(signature, _CURVE_BYTES[spec.curve])
        else:
            hash_alg = hash_algorithm(hash_name)
            pad = self._rsa_signature_padding(
                ver, hash_alg, signature_algorithm, salt_length, signing=True
            )
            signature = self._private(ver).sign(
                data, pad, _maybe_prehashed(hash_alg, data, prehashed)
            )
        if marshaling == "jws":
            encoded = b64(signature).rstrip("=").replace("+", "-").replace("/", "_")
        else:
            encoded = b64(signature)
        return self.prefix(ver) + encoded, ver, public_key

    def verify(
        self,
        data: bytes,
        signature: str,
        *,
        context: bytes = b"",
        hash_name: str = "sha2-256",
        prehashed: bool = False,
        signature_algorithm: str = "",
        marshaling: str = "asn1",
        salt_length: int = 0,
    ) -> bool:
        spec, p = self.spec, self.policy
        ver, payload = self._verification_version(signature, "signature")
        try:
            raw = _urlsafe_b64decode(payload) if marshaling == "jws" else b64decode(payload, "")
        except InvalidRequest:
            raise InvalidRequest("invalid base64 signature value") from None
        try:
            if spec.family == "ed25519":
                if p.derived:
                    public = self.derived_ed25519(ver, context).public_key()
                else:
                    public = self.public(ver)
                public.verify(raw, data)
            elif spec.family == "ecdsa":
                if marshaling == "jws":
                    half = len(raw) // 2
                    raw = utils.encode_dss_signature(
                        int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
                    )
                else:
                    try:
                        utils.decode_dss_signature(raw)
                    except ValueError:
                        raise InvalidRequest("supplied signature is invalid") from None
                algorithm = _ecdsa_algorithm(hash_name, data, prehashed)
                self.public(ver).verify(raw, data, ec.ECDSA(algorithm))
            else:
                hash_alg = hash_algorithm(hash_name)
                pad = self._rsa_signature_padding(
                    ver, hash_alg, signature_algorithm, salt_length, signing=False
                )
                self.public(ver).verify(raw, data, pad, _maybe_prehashed(hash_alg, data, prehashed))
        except InvalidSignature:
            return False
        return True

    def _rsa_signature_padding(
        self,
        version: int,
        hash_alg: hashes.HashAlgorithm,
        signature_algorithm: str,
        salt_length: int,
        *,
        signing: bool,
    ) -> padding.AsymmetricPadding:
        if signature_algorithm == "pkcs1v15":
            return padding.PKCS1v15()
        if signature_algorithm not in ("", "pss"):
            raise InvalidRequest(f"unsupported rsa signature algorithm {signature_algorithm}")
        bits = self.public(version).key_size
        # Go's rules: -1 is the hash length, 0 is "auto", anything else the exact length
        largest = (bits - 1 + 7) // 8 - 2 - hash_alg.digest_size
        if not -1 <= salt_length <= largest:
            raise InvalidRequest(f"requested salt length {salt_length} is invalid")
        mgf = padding.MGF1(hash_alg)
        if salt_length == -1:
            return padding.PSS(mgf=mgf, salt_length=padding.PSS.DIGEST_LENGTH)
        if salt_length == 0:
            auto = padding.PSS.MAX_LENGTH if signing else padding.PSS.AUTO
            return padding.PSS(mgf=mgf, salt_length=auto)
        return padding.PSS(mgf=mgf, salt_length=salt_length)

    # ---- HMAC ------------------------------------------------------------------------------

    def hmac_key(self, version: int) -> bytes:
        p = self.policy
        if version < 0:
            raise InvalidRequest("key version does not exist (cannot be negative)")
        if version > p.latest_version:
            raise InvalidRequest(
                f"key version does not exist; latest key version is {p.latest_version}"
            )
        entry = self.entry(version)
        if not entry.hmac_key:
            raise InvalidRequest("no HMAC key exists for that key version")
        return entry.hmac_key

    def hmac(
        self, data: bytes, *, version: int = 0, algorithm: str = "sha2-256"
    ) -> tuple[str, int]:
        p = self.policy
        ver = version or p.latest_version
        if ver != p.latest_version and 0 < ver < p.min_encryption_version:
            raise InvalidRequest("cannot generate HMAC: version is too old (disallowed by policy)")
        mac = hmac_sum(self.hmac_key(ver), hash_algorithm(algorithm), data)
        return self.prefix(ver) + b64(mac), ver

    def hmac_verify(self, data: bytes, value: str, *, algorithm: str = "sha2-256") -> bool:
        if not value.startswith(_PREFIX):
            raise InvalidRequest("invalid HMAC to verify: no prefix")
        version, payload = split_versioned(value, "HMAC")
        expected = b64decode(payload, "verification HMAC")
        if version > self.policy.latest_version:
            raise InvalidRequest("invalid HMAC: version is too new")
        if version < self.policy.min_decryption_version:
            raise InvalidRequest("cannot verify HMAC: version is too old (disallowed by policy)")
        mac = crypto_hmac.HMAC(self.hmac_key(version), hash_algorithm(algorithm))
        mac.update(data)
        try:
            mac.verify(expected)  # constant-time comparison
        except InvalidSignature:
            return False
        return True


def _ecdsa_algorithm(
    hash_name: str, data: bytes, prehashed: bool
) -> hashes.HashAlgorithm | utils.Prehashed:
    if not prehashed:
        return hash_algorithm(hash_name)
    cls = _BY_DIGEST_SIZE.get(len(data))
    if cls is None:
        raise InvalidRequest("prehashed input has an unsupported digest length")
    return utils.Prehashed(cls())


def _maybe_prehashed(
    hash_alg: hashes.HashAlgorithm, data: bytes, prehashed: bool
) -> hashes.HashAlgorithm | utils.Prehashed:
    if not prehashed:
        return hash_alg
    if len(data) != hash_alg.digest_size:
        raise InvalidRequest("prehashed input length does not match the hash algorithm")
    return utils.Prehashed(hash_alg)


def _der_to_jws(der: bytes, size: int) -> bytes:
    r, s = utils.decode_dss_signature(der)
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")
