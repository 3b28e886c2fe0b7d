"""Plaintext key backups in Vault's format, so backups move between Vault and Strongroom.

``backup/<name>`` returns base64 of Vault's ``KeyData`` JSON::

    {"policy": {"name": …, "type": <Vault's numeric key type>, "keys": {"<n>": KeyEntry},
                "latest_version": …, "min_decryption_version": …, "auto_rotate_period": <ns>, …},
     "archived_keys": {"keys": [KeyEntry, …]}}

where a ``KeyEntry`` holds ``key`` (base64: AEAD and HMAC keys, Go's 64-byte ed25519 private
key), ``hmac_key``, ``time`` (RFC 3339), ``creation_time`` (Unix seconds), ``public_key``,
``ec_x``/``ec_y``/``ec_d`` (ECDSA, JSON integers) or ``rsa_key``/``rsa_public_key`` (Go's
``rsa.PrivateKey`` JSON: ``N``, ``E``, ``D``, ``Primes``). As in Vault, ``policy.keys`` holds
the versions from ``min_decryption_version`` up and the archive every version from
``min_available_version`` (the archive's index 0 is version ``min_available_version``, or an
empty entry when nothing was trimmed). The big integers need Python's ``json``, not orjson.
"""

from __future__ import annotations

import base64
import datetime
import json
import re
import secrets
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from strongroom.engines.transit._policy import (
    KEY_TYPES,
    KEY_TYPES_BY_CODE,
    KeyPolicy,
    KeyTypeSpec,
    KeyVersion,
    Stamp,
    b64,
    curve_of,
    material_from_private,
    public_of,
)
from strongroom.errors import InternalError, InvalidRequest
from strongroom.framework import format_time_ns

__all__ = ["decode_backup", "encode_backup"]

_NS = 1_000_000_000
_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)")


# ---- encoding --------------------------------------------------------------------------------


def _entry_json(spec: KeyTypeSpec, version: KeyVersion) -> dict[str, Any]:
    out: dict[str, Any] = {
        "key": None,
        "hmac_key": b64(version.hmac_key),
        "time": format_time_ns(version.created_ns),
        "creation_time": version.created_ns // _NS,
    }
    if version.convergent_version:
        out["convergent_version"] = version.convergent_version
    if spec.family in ("aead", "hmac", "ed25519") and version.key is not None:
        out["key"] = b64(version.key)
    if spec.family == "ed25519":
        out["public_key"] = version.public_key
    elif spec.family == "ecdsa":
        public = serialization.load_pem_public_key(version.public_key.encode())
        if not isinstance(public, ec.EllipticCurvePublicKey):
            raise InternalError("transit: stored ECDSA key is not an EC key")
        numbers = public.public_numbers()
        out.update(ec_x=numbers.x, ec_y=numbers.y, public_key=version.public_key)
        if version.key is not None:
            private = serialization.load_der_private_key(version.key, password=None)
            if not isinstance(private, ec.EllipticCurvePrivateKey):
                raise InternalError("transit: stored ECDSA key is not an EC key")
            out["ec_d"] = private.private_numbers().private_value
    elif spec.family == "rsa":
        public_rsa = serialization.load_pem_public_key(version.public_key.encode())
        if not isinstance(public_rsa, rsa.RSAPublicKey):
            raise InternalError("transit: stored RSA key is not an RSA key")
        pub = public_rsa.public_numbers()
        out["rsa_public_key"] = {"N": pub.n, "E": pub.e}
        if version.key is not None:
            private_rsa = serialization.load_der_private_key(version.key, password=None)
            if not isinstance(private_rsa, rsa.RSAPrivateKey):
                raise InternalError("transit: stored RSA key is not an RSA key")
            priv = private_rsa.private_numbers()
            out["rsa_key"] = {
                "N": pub.n,
                "E": pub.e,
                "D": priv.d,
                "Primes": [priv.p, priv.q],
                "Precomputed": {"Dp": priv.dmp1, "Dq": priv.dmq1, "Qinv": priv.iqmp},
            }
    return out


def _stamp_json(stamp: Stamp | None) -> dict[str, Any] | None:
    if stamp is None:
        return None
    return {"time": format_time_ns(stamp.time_ns), "version": stamp.version}


def encode_backup(policy: KeyPolicy) -> str:
    spec = policy.spec
    entries = {n: _entry_json(spec, v) for n, v in sorted(policy.versions.items())}
    start = policy.min_available_version
    archive: list[dict[str, Any]] = []
    for n in range(start, policy.latest_version + 1):
        archive.append(entries.get(n) or {"key": None, "hmac_key": None, "creation_time": 0})
    body: dict[str, Any] = {
        "name": policy.name,
        "keys": {str(n): e for n, e in entries.items() if n >= policy.min_decryption_version},
        "derived": policy.derived,
        "kdf": policy.kdf,
        "convergent_encryption": policy.convergent_encryption,
        "exportable": policy.exportable,
        "min_decryption_version": policy.min_decryption_version,
        "min_encryption_version": policy.min_encryption_version,
        "latest_version": policy.latest_version,
        "archive_version": policy.latest_version,
        "archive_min_version": start,
        "min_available_version": start,
        "deletion_allowed": policy.deletion_allowed,
        "convergent_version": policy.convergent_version,
        "type": spec.vault_code,
        "backup_info": _stamp_json(policy.backup_info),
        "restore_info": _stamp_json(policy.restore_info),
        "allow_plaintext_backup": policy.allow_plaintext_backup,
        "version_template": "",
        "storage_prefix": "",
        "auto_rotate_period": policy.auto_rotate_period * _NS,
        "Imported": policy.imported,
        "AllowImportedKeyRotation": policy.allow_imported_key_rotation,
    }
    if policy.key_size:
        body["key_size"] = policy.key_size
    document = {"policy": body, "archived_keys": {"keys": archive}}
    return b64(json.dumps(document, separators=(",", ":")).encode())


# ---- decoding --------------------------------------------------------------------------------


def _parse_time(value: Any, fallback_seconds: Any) -> int:
    if isinstance(value, str):
        match = _RFC3339.fullmatch(value)
        if match is not None:
            base, fraction, zone = match.groups()
            stamp = datetime.datetime.fromisoformat(base + ("+00:00" if zone == "Z" else zone))
            nanos = int((fraction or "0").ljust(9, "0"))
            if stamp.year > 1:  # Go's zero time marks an unset entry
                return int(stamp.timestamp()) * _NS + nanos
    return int(fallback_seconds or 0) * _NS


def _rsa_private(raw: Mapping[str, Any]) -> rsa.RSAPrivateKey:
    n, e, d = int(raw["N"]), int(raw["E"]), int(raw["D"])
    p, q = (int(x) for x in raw["Primes"][:2])
    numbers = rsa.RSAPrivateNumbers(
        p=p,
        q=q,
        d=d,
        dmp1=rsa.rsa_crt_dmp1(d, p),
        dmq1=rsa.rsa_crt_dmq1(d, q),
        iqmp=rsa.rsa_crt_iqmp(p, q),
        public_numbers=rsa.RSAPublicNumbers(e, n),
    )
    return numbers.private_key()


def _pkcs8(private: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _pem(public: ec.EllipticCurvePublicKey | rsa.RSAPublicKey) -> str:
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def _entry(spec: KeyTypeSpec, raw: Mapping[str, Any]) -> KeyVersion | None:
    created = _parse_time(raw.get("time"), raw.get("creation_time"))
    hmac_key = base64.b64decode(raw["hmac_key"]) if raw.get("hmac_key") else b""
    convergent = int(raw.get("convergent_version") or 0)
    key = base64.b64decode(raw["key"]) if raw.get("key") else None
    public = ""
    if spec.family in ("aead", "hmac"):
        if key is None:
            return None
        hmac_key = key if spec.family == "hmac" else hmac_key
    elif spec.family == "ed25519":
        public = str(raw.get("public_key") or "")
        if key is None and not public:
            return None
        if key is not None and len(key) == 32:  # a bare seed: add the public half
            version = material_from_private(spec, _ed25519_pkcs8(key), created)
            key, public = version.key, version.public_key
    elif spec.family == "ecdsa":
        curve = curve_of(spec)
        if raw.get("ec_d") is not None:
            ec_private = ec.derive_private_key(int(raw["ec_d"]), curve)
            key, public = _pkcs8(ec_private), _pem(ec_private.public_key())
        elif raw.get("ec_x") is not None and raw.get("ec_y") is not None:
            numbers = ec.EllipticCurvePublicNumbers(int(raw["ec_x"]), int(raw["ec_y"]), curve)
            public = _pem(numbers.public_key())
        else:
            return None
    else:
        if raw.get("rsa_key"):
            rsa_private = _rsa_private(raw["rsa_key"])
            key, public = _pkcs8(rsa_private), _pem(rsa_private.public_key())
        elif raw.get("rsa_public_key"):
            pub = raw["rsa_public_key"]
            public = _pem(rsa.RSAPublicNumbers(int(pub["E"]), int(pub["N"])).public_key())
        else:
            return None
        public = public_of(spec, public)  # checks the size matches the type
    if not hmac_key:
        hmac_key = secrets.token_bytes(32)
    return KeyVersion(
        key=key,
        hmac_key=hmac_key,
        created_ns=created,
        public_key=public,
        convergent_version=convergent,
    )


def _ed25519_pkcs8(seed: bytes) -> bytes:
    return ed25519.Ed25519PrivateKey.from_private_bytes(seed).private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _stamp(raw: Any) -> Stamp | None:
    if not isinstance(raw, Mapping):
        return None
    return Stamp(_parse_time(raw.get("time"), 0), int(raw.get("version", 0)))


def decode_backup(backup: str, name: str, now_ns: int) -> KeyPolicy:
    """A policy from a backup (ours or Vault's), renamed to ``name`` when given.

    Raises:
        InvalidRequest: the backup is not base64 JSON of a supported key, or its material
            does not match its type. The message never quotes the backup.
    """
    try:
        document = json.loads(base64.b64decode(backup, validate=True))
        body = document["policy"]
        raw_type = body["type"]
        spec = KEY_TYPES_BY_CODE.get(raw_type) if isinstance(raw_type, int) else None
        spec = spec or KEY_TYPES.get(str(raw_type))
        if spec is None:
            raise InvalidRequest("invalid backup: unsupported key type")
        latest = int(body["latest_version"])
        min_available = int(body.get("min_available_version") or 0)
        raw_entries: dict[int, Mapping[str, Any]] = {}
        archived = (document.get("archived_keys") or {}).get("keys") or []
        for index, raw in enumerate(archived):
            number = index + min_available
            if 1 <= number <= latest:
                raw_entries[number] = raw
        for number_text, raw in (body.get("keys") or {}).items():
            raw_entries[int(number_text)] = raw
        versions: dict[int, KeyVersion] = {}
        for number, raw in raw_entries.items():
            entry = _entry(spec, raw)
            if entry is not None:
                versions[number] = entry
        if latest < 1 or latest not in versions:
            raise InvalidRequest("invalid backup: the latest key version is missing")
        return KeyPolicy(
            name=name or str(body["name"]),
            type=spec.name,
            versions=versions,
            latest_version=latest,
            min_decryption_version=max(1, int(body.get("min_decryption_version") or 1)),
            min_encryption_version=int(body.get("min_encryption_version") or 0),
            min_available_version=min_available,
            derived=bool(body.get("derived")),
            kdf=int(body.get("kdf") or 0),
            convergent_encryption=bool(body.get("convergent_encryption")),
            convergent_version=int(body.get("convergent_version") or 0),
            exportable=bool(body.get("exportable")),
            allow_plaintext_backup=bool(body.get("allow_plaintext_backup")),
            deletion_allowed=bool(body.get("deletion_allowed")),
            auto_rotate_period=int(body.get("auto_rotate_period") or 0) // _NS,
            imported=bool(body.get("Imported")),
            allow_imported_key_rotation=bool(body.get("AllowImportedKeyRotation")),
            key_size=int(body.get("key_size") or 0),
            backup_info=_stamp(body.get("backup_info")),
            restore_info=Stamp(now_ns, latest),
        )
    except InvalidRequest:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, IndexError):
        # never echo the backup: it is key material
        raise InvalidRequest("invalid backup: not a transit key backup") from None
