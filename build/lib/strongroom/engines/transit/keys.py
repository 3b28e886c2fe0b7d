"""keys/: create, read, list and delete named keys; keys/<name>/config, /rotate and /trim.

A key's settings fixed at creation (type, derived, convergent_encryption) never change;
``exportable`` and ``allow_plaintext_backup`` can only be turned on. Rotation adds a version;
``min_decryption_version`` retires old ciphertexts and signatures; ``trim`` deletes versions
below ``min_available_version`` for good.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from strongroom.engines.transit._crypto import LoadedKey
from strongroom.engines.transit._fields import NAME, optional_b64
from strongroom.engines.transit._policy import (
    HMAC_MAX_KEY_SIZE,
    HMAC_MIN_KEY_SIZE,
    KeyPolicy,
    KeyTypeSpec,
    b64,
    key_type,
)
from strongroom.engines.transit._store import KeyStore, new_version
from strongroom.errors import InvalidRequest
from strongroom.framework import Duration, NoArgs, Path, format_time_ns
from strongroom.logical import Operation, Request, Response

__all__ = ["KeysPaths", "check_key_options", "describe", "require_key"]

MIN_AUTO_ROTATE_PERIOD = 3600


@dataclass(frozen=True, slots=True)
class KeyArgs:
    name: str
    type: str = "aes256-gcm96"
    derived: bool = False
    convergent_encryption: bool = False
    exportable: bool = False
    allow_plaintext_backup: bool = False
    auto_rotate_period: Duration = Duration(0)
    key_size: int = 0
    context: str = ""  # read: the context to derive an ed25519 public key for


@dataclass(frozen=True, slots=True)
class KeyConfigArgs:
    name: str
    min_decryption_version: int | None = None
    min_encryption_version: int | None = None
    deletion_allowed: bool | None = None
    exportable: bool | None = None
    allow_plaintext_backup: bool | None = None
    auto_rotate_period: Duration | None = None


@dataclass(frozen=True, slots=True)
class NameArgs:
    name: str


@dataclass(frozen=True, slots=True)
class TrimArgs:
    name: str
    min_available_version: int | None = None


def check_auto_rotate(period: int) -> None:
    if period != 0 and period < MIN_AUTO_ROTATE_PERIOD:
        raise InvalidRequest("auto rotate period must be 0 to disable or at least an hour")


def check_key_options(spec: KeyTypeSpec, *, derived: bool, convergent: bool) -> None:
    """The combinations Vault's lock manager refuses when it creates a policy."""
    if convergent and not derived:
        raise InvalidRequest("convergent encryption requires derivation to be enabled")
    if spec.family == "ed25519" and convergent:
        raise InvalidRequest(f"convergent encryption not supported for keys of type {spec.name}")
    if spec.family in ("ecdsa", "rsa", "hmac") and (derived or convergent):
        raise InvalidRequest(
            f"key derivation and convergent encryption not supported for keys of type {spec.name}"
        )


def _version_keys(key: LoadedKey, context: bytes) -> dict[str, Any] | None:
    p, spec = key.policy, key.spec
    # Vault's policy holds versions from min_decryption_version up; older ones are archived
    live = sorted(v for v in p.versions if v >= p.min_decryption_version)
    if spec.family == "aead":
        return {str(v): p.versions[v].created_ns // 1_000_000_000 for v in live}
    if spec.family == "hmac":
        return None
    out: dict[str, Any] = {}
    for v in live:
        entry = p.versions[v]
        public_key = entry.public_key
        if spec.family == "ed25519":
            name = "ed25519"
            if p.derived:
                public_key = ""
                if context:
                    derived = key.derived_ed25519(v, context).public_key()
                    public_key = b64(derived.public_bytes_raw())
        elif spec.family == "ecdsa":
            name = spec.curve
        else:
            name = spec.name
        out[str(v)] = {
            "name": name,
            "public_key": public_key,
            "certificate_chain": entry.certificate_chain,
            "creation_time": format_time_ns(entry.created_ns),
        }
    return out


def describe(key: LoadedKey, context: bytes = b"") -> dict[str, Any]:
    """Vault's formatKeyPolicy: what a key read (and create, config, rotate) returns."""
    p, spec = key.policy, key.spec
    data: dict[str, Any] = {
        "name": p.name,
        "type": p.type,
        "derived": p.derived,
        "deletion_allowed": p.deletion_allowed,
        "min_available_version": p.min_available_version,
        "min_decryption_version": p.min_decryption_version,
        "min_encryption_version": p.min_encryption_version,
        "latest_version": p.latest_version,
        "exportable": p.exportable,
        "allow_plaintext_backup": p.allow_plaintext_backup,
        "supports_encryption": spec.supports_encryption,
        "supports_decryption": spec.supports_encryption,
        "supports_signing": spec.supports_signing,
        "supports_derivation": spec.supports_derivation,
        "auto_rotate_period": p.auto_rotate_period,
        "imported_key": p.imported,
    }
    if p.key_size:
        data["key_size"] = p.key_size
    if p.imported:
        data["imported_key_allow_rotation"] = p.allow_imported_key_rotation
    for field_name, stamp in (("backup_info", p.backup_info), ("restore_info", p.restore_info)):
        if stamp is not None:
            data[field_name] = {"time": format_time_ns(stamp.time_ns), "version": stamp.version}
    if p.derived:
        data["kdf"] = "hkdf_sha256" if p.kdf == 1 else "hmac-sha256-counter"
        data["convergent_encryption"] = p.convergent_encryption
        if p.convergent_encryption:
            data["convergent_encryption_version"] = p.convergent_version
    keys = _version_keys(key, context)
    if keys is not None:
        data["keys"] = keys
    return data


def require_key(key: LoadedKey | None, message: str) -> LoadedKey:
    if key is None:
        raise InvalidRequest(message)
    return key


class KeysPaths:
    def __init__(self, store: KeyStore) -> None:
        self.store = store

    async def list_keys(self, request: Request, args: NoArgs) -> Response | None:
        names = await self.store.names()
        return Response(data={"keys": names}) if names else None

    async def create(self, request: Request, args: KeyArgs) -> Response:
        """Vault's pathPolicyWrite: create the key, or answer with the existing one."""
        check_auto_rotate(args.auto_rotate_period)
        if not args.derived and args.convergent_encryption:
            raise InvalidRequest("convergent encryption requires derivation to be enabled")
        spec = key_type(args.type)
        if args.key_size:
            if spec.family != "hmac":
                raise InvalidRequest(f"key_size is not valid for algorithm {spec.name}")
            if not HMAC_MIN_KEY_SIZE <= args.key_size <= HMAC_MAX_KEY_SIZE:
                raise InvalidRequest(f"invalid key_size {args.key_size}")
        check_key_options(spec, derived=args.derived, convergent=args.convergent_encryption)
        async with self.store.locked(args.name) as existing:
            if existing is not None:
                return Response(
                    data=describe(existing), warnings=[f"key {args.name} already existed"]
                )
            convergent = args.convergent_encryption
            key_size = (args.key_size or HMAC_MIN_KEY_SIZE) if spec.family == "hmac" else 0
            policy = KeyPolicy(
                name=args.name,
                type=spec.name,
                derived=args.derived,
                convergent_encryption=convergent,
                convergent_version=-1 if convergent else 0,
                exportable=args.exportable,
                allow_plaintext_backup=args.allow_plaintext_backup,
                auto_rotate_period=args.auto_rotate_period,
                key_size=key_size,
            )
            entry = await new_version(
                spec, self.store.now_ns(), key_size=key_size, convergent=convergent
            )
            key = await self.store.save(policy.with_version(1, entry))
        return Response(data=describe(key))

    async def read(self, request: Request, args: KeyArgs) -> Response | None:
        key = await self.store.get(args.name)
        if key is None:
            return None
        try:
            context = optional_b64(args.context, "context")
        except InvalidRequest:
            raise InvalidRequest("failed to base64-decode context") from None
        return Response(data=describe(key, context))

    async def delete(self, request: Request, args: KeyArgs) -> None:
        async with self.store.locked(args.name) as key:
            if key is None:
                raise InvalidRequest(
                    f"error deleting policy {args.name}: could not delete key; not found"
                )
            if not key.policy.deletion_allowed:
                raise InvalidRequest(
                    f"error deleting policy {args.name}: deletion is not allowed for this policy"
                )
            await self.store.remove(args.name)

    async def configure(self, request: Request, args: KeyConfigArgs) -> Response:
        """Vault's pathKeysConfigWrite."""
        async with self.store.locked(args.name) as key:
            if key is None:
                raise InvalidRequest(f"no existing key named {args.name} could be found")
            p = key.policy
            warnings: list[str] = []
            changes: dict[str, Any] = {}
            if args.min_decryption_version is not None:
                wanted = args.min_decryption_version
                if wanted < 0:
                    raise InvalidRequest("min decryption version cannot be negative")
                if wanted == 0:
                    wanted = 1
                    warnings.append(
                        "since Vault 0.3, transit key numbering starts at 1; forcing minimum to 1"
                    )
                if wanted != p.min_decryption_version:
                    if wanted > p.latest_version:
                        raise InvalidRequest(
                            f"cannot set min decryption version of {wanted}, latest key version "
                            f"is {p.latest_version}"
                        )
                    changes["min_decryption_version"] = wanted
            if args.min_encryption_version is not None:
                wanted = args.min_encryption_version
                if wanted < 0:
                    raise InvalidRequest("min encryption version cannot be negative")
                if wanted != p.min_encryption_version:
                    if wanted > p.latest_version:
                        raise InvalidRequest(
                            f"cannot set min encryption version of {wanted}, latest key version "
                            f"is {p.latest_version}"
                        )
                    changes["min_encryption_version"] = wanted
            min_dec = changes.get("min_decryption_version", p.min_decryption_version)
            min_enc = changes.get("min_encryption_version", p.min_encryption_version)
            if 0 < min_enc < min_dec:
                raise InvalidRequest(
                    "cannot set min encryption/decryption values; min encryption version of "
                    f"{min_enc} must be greater than or equal to min decryption version of "
                    f"{min_dec}"
                )
            if args.deletion_allowed is not None and args.deletion_allowed != p.deletion_allowed:
                changes["deletion_allowed"] = args.deletion_allowed
            # exportable and allow_plaintext_backup can be turned on, never off
            if args.exportable and not p.exportable:
                changes["exportable"] = True
            if args.allow_plaintext_backup and not p.allow_plaintext_backup:
                changes["allow_plaintext_backup"] = True
            if args.auto_rotate_period is not None:
                check_auto_rotate(args.auto_rotate_period)
                if args.auto_rotate_period != p.auto_rotate_period:
                    changes["auto_rotate_period"] = args.auto_rotate_period
            if changes:
                if p.min_available_version > min_enc:
                    raise InvalidRequest(
                        "min encryption version should not be less than min available version"
                    )
                if p.min_available_version > min_dec:
                    raise InvalidRequest(
                        "min decryption version should not be less then min available version"
                    )
                key = await self.store.save(dataclasses.replace(p, **changes))
        return Response(data=describe(key), warnings=warnings)

    async def rotate(self, request: Request, args: NameArgs) -> Response:
        async with self.store.locked(args.name) as key:
            key = require_key(key, "key not found")
            key = await self.store.save(await self.store.rotated(key.policy))
        return Response(data=describe(key))

    async def trim(self, request: Request, args: TrimArgs) -> None:
        """Vault's pathTrimUpdate: permanently delete versions below min_available_version."""
        async with self.store.locked(args.name) as key:
            p = require_key(key, "invalid key name").policy
            wanted = args.min_available_version
            if wanted is None:
                raise InvalidRequest("missing min_available_version")
            if wanted < p.min_available_version:
                raise InvalidRequest("minimum available version cannot be decremented")
            if p.min_encryption_version == 0:
                raise InvalidRequest(
                    "minimum available version cannot be set when minimum encryption version "
                    "is not set"
                )
            if p.min_decryption_version == 0:
                raise InvalidRequest(
                    "minimum available version cannot be set when minimum decryption version "
                    "is not set"
                )
            if wanted > p.min_encryption_version:
                raise InvalidRequest(
                    "minimum available version cannot be greater than minmum encryption version"
                )
            if wanted > p.min_decryption_version:
                raise InvalidRequest(
                    "minimum available version cannot be greater than minimum decryption version"
                )
            if wanted < 0:
                raise InvalidRequest("minimum available version cannot be negative")
            if wanted == 0:
                raise InvalidRequest("minimum available version should be positive")
            versions = {n: v for n, v in p.versions.items() if n >= wanted}
            await self.store.save(
                dataclasses.replace(p, versions=versions, min_available_version=wanted)
            )

    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=r"keys/?",
                operations={Operation.LIST: self.list_keys},
                synopsis="List the named keys",
                description="Returns the names of the keys in this mount (LIST only).",
            ),
            Path(
                pattern=rf"keys/(?P<name>{NAME})",
                args=KeyArgs,
                operations={
                    Operation.UPDATE: self.create,
                    Operation.READ: self.read,
                    Operation.DELETE: self.delete,
                },
                synopsis="Manage named encryption keys",
                description=_KEYS_HELP,
            ),
            Path(
                pattern=rf"keys/(?P<name>{NAME})/config",
                args=KeyConfigArgs,
                operations={Operation.UPDATE: self.configure},
                synopsis="Configure a named encryption key",
                description=_CONFIG_HELP,
            ),
            Path(
                pattern=rf"keys/(?P<name>{NAME})/rotate",
                args=NameArgs,
                operations={Operation.UPDATE: self.rotate},
                synopsis="Rotate named encryption key",
                description=_ROTATE_HELP,
            ),
            Path(
                pattern=rf"keys/(?P<name>{NAME})/trim",
                args=TrimArgs,
                operations={Operation.UPDATE: self.trim},
                synopsis="Trim key versions of a named key",
                description=_TRIM_HELP,
            ),
        ]


_KEYS_HELP = """\
POST creates a named key (type: aes128-gcm96, aes256-gcm96 (default), chacha20-poly1305,
ed25519, ecdsa-p256, ecdsa-p384, ecdsa-p521, rsa-2048, rsa-3072, rsa-4096 or hmac; derived,
convergent_encryption, exportable, allow_plaintext_backup, auto_rotate_period, key_size for
hmac). GET returns its settings and, per version, the creation time or the public key (pass
context to see a derived ed25519 public key). DELETE removes it if deletion_allowed is set."""

_CONFIG_HELP = """\
Sets min_decryption_version, min_encryption_version, deletion_allowed, auto_rotate_period
(0, or at least one hour), and turns on exportable or allow_plaintext_backup (never off)."""

_ROTATE_HELP = """\
Adds a new version of the key: new encryptions and signatures use it; older versions still
decrypt and verify down to min_decryption_version. Use rewrap/ to move ciphertext forward."""

_TRIM_HELP = """\
Permanently deletes versions below min_available_version, which may be at most the lesser
of min_decryption_version and min_encryption_version (both must be set)."""
