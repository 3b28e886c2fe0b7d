"""Key material in and out: export/, backup/, restore/, wrapping_key and keys/<name>/import.

Material leaves the engine only here, and only as the key allows: ``export/`` needs
``exportable`` (public keys excepted), ``backup/`` needs ``exportable`` and
``allow_plaintext_backup``.

Bring your own key (Vault's BYOK): ``GET wrapping_key`` returns the mount's RSA-4096 public
key (PEM), generated once. The caller wraps a fresh 256-bit AES key with RSA-OAEP
(``hash_function``, default SHA256, for both OAEP's hash and MGF1), wraps the target key with
AES key wrap with padding (RFC 5649, KWP) under that AES key, and sends
``base64(oaep_wrapped_aes_key(512 bytes) || kwp_wrapped_target)`` as ``ciphertext``. The target
is the raw key for AEAD and HMAC keys and a PKCS#8 DER private key for asymmetric ones.
``public_key`` (PEM) imports an asymmetric key without its private part (verify and RSA
encrypt only), which ``import_version`` can supply later.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap_with_padding

from strongroom.engines.transit._backup import decode_backup, encode_backup
from strongroom.engines.transit._crypto import LoadedKey, b64decode
from strongroom.engines.transit._fields import NAME
from strongroom.engines.transit._policy import (
    KeyPolicy,
    KeyTypeSpec,
    KeyVersion,
    Stamp,
    b64,
    key_type,
    material_from_private,
    material_from_public_pem,
    material_from_raw,
)
from strongroom.engines.transit._store import KeyStore
from strongroom.engines.transit.keys import check_auto_rotate, check_key_options, require_key
from strongroom.errors import CryptoError, InvalidRequest
from strongroom.framework import Duration, NoArgs, Path
from strongroom.logical import Operation, Request, Response

__all__ = ["ImportExportPaths", "unwrap_import"]

WRAPPED_AES_KEY_BYTES = 512  # an RSA-4096 OAEP block
_OAEP_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "SHA1": hashes.SHA1,
    "SHA224": hashes.SHA224,
    "SHA256": hashes.SHA256,
    "SHA384": hashes.SHA384,
    "SHA512": hashes.SHA512,
}
_EXPORT_KINDS = ("encryption-key", "signing-key", "hmac-key", "public-key")
_NAME_RE = re.compile(NAME)


@dataclass(frozen=True, slots=True)
class ExportArgs:
    kind: str
    name: str
    version: str = ""


@dataclass(frozen=True, slots=True)
class BackupArgs:
    name: str


@dataclass(frozen=True, slots=True)
class RestoreArgs:
    name: str = ""
    backup: str = ""
    force: bool = False


@dataclass(frozen=True, slots=True)
class ImportArgs:
    name: str
    type: str = "aes256-gcm96"
    ciphertext: str | None = None
    public_key: str | None = None
    hash_function: str = "SHA256"
    allow_rotation: bool = False
    derived: bool = False
    exportable: bool = False
    allow_plaintext_backup: bool = False
    auto_rotate_period: Duration = Duration(0)
    context: str = ""


@dataclass(frozen=True, slots=True)
class ImportVersionArgs:
    name: str
    ciphertext: str | None = None
    public_key: str | None = None
    hash_function: str = "SHA256"
    version: int | None = None


def unwrap_import(wrapping_key: rsa.RSAPrivateKey, ciphertext: str, hash_function: str) -> bytes:
    """Recover the target key material from a BYOK ``ciphertext``.

    Raises:
        InvalidRequest: malformed input or an unknown hash function.
        CryptoError: the blob does not unwrap under this mount's wrapping key. The message is
            the same whichever layer failed.
    """
    hash_cls = _OAEP_HASHES.get(hash_function.upper())
    if hash_cls is None:
        raise InvalidRequest(f"unknown hash function: {hash_function}")
    blob = b64decode(ciphertext, "ciphertext")
    if len(blob) <= WRAPPED_AES_KEY_BYTES:
        raise InvalidRequest("provided ciphertext is too short")
    oaep = padding.OAEP(mgf=padding.MGF1(hash_cls()), algorithm=hash_cls(), label=None)
    try:
        ephemeral = wrapping_key.decrypt(blob[:WRAPPED_AES_KEY_BYTES], oaep)
        if len(ephemeral) != 32:
            raise ValueError("ephemeral key must be 256-bit")
        return aes_key_unwrap_with_padding(ephemeral, blob[WRAPPED_AES_KEY_BYTES:])
    except (ValueError, InvalidUnwrap):
        raise CryptoError("failed to unwrap the imported key") from None


def _export_value(key: LoadedKey, version: int, kind: str) -> str:
    spec, entry = key.spec, key.entry(version)
    if kind == "hmac-key":
        return b64(entry.hmac_key)
    private = entry.key
    if kind == "encryption-key":
        if spec.family == "aead":
            return b64(entry.key or b"")
        if spec.family == "rsa":
            return "" if private is None else _pkcs1_pem(private)
    elif kind == "signing-key":
        if spec.family == "ed25519":
            return "" if private is None else b64(private)
        if spec.family == "ecdsa":
            return "" if private is None else _sec1_pem(private).strip()
        if spec.family == "rsa":
            return "" if private is None else _pkcs1_pem(private)
    elif kind == "public-key":
        if spec.family == "ed25519":
            return entry.public_key
        if spec.family == "ecdsa":
            return entry.public_key.strip()
        if spec.family == "rsa":
            return entry.public_key
    raise InvalidRequest(f"unknown key type {spec.name} for export type {kind}")


def _pkcs1_pem(der: bytes) -> str:
    private = serialization.load_der_private_key(der, password=None)
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,  # "RSA PRIVATE KEY", as Vault
        serialization.NoEncryption(),
    ).decode("ascii")


def _sec1_pem(der: bytes) -> str:
    private = serialization.load_der_private_key(der, password=None)
    if not isinstance(private, ec.EllipticCurvePrivateKey):
        raise InvalidRequest("stored key is not an EC key")
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,  # "EC PRIVATE KEY", as Vault
        serialization.NoEncryption(),
    ).decode("ascii")


class ImportExportPaths:
    def __init__(self, store: KeyStore) -> None:
        self.store = store

    # ---- export ------------------------------------------------------------------------------

    async def export(self, request: Request, args: ExportArgs) -> Response | None:
        """Vault's pathPolicyExportRead."""
        if args.kind not in _EXPORT_KINDS:
            raise InvalidRequest(f"invalid export type: {args.kind}")
        key = await self.store.get(args.name)
        if key is None:
            return None
        p, spec = key.policy, key.spec
        if not p.exportable and args.kind != "public-key":
            raise InvalidRequest("private key material is not exportable")
        if args.kind == "encryption-key" and not spec.supports_encryption:
            raise InvalidRequest("encryption not supported for the key")
        if args.kind == "signing-key" and not spec.supports_signing:
            raise InvalidRequest("signing not supported for the key")
        if not args.version:
            versions = [v for v in sorted(p.versions) if v >= p.min_decryption_version]
        else:
            if args.version == "latest":
                wanted = p.latest_version
            else:
                text = args.version.removeprefix("v")
                if not text.isascii() or not text.isdigit() or len(text) > 18:
                    raise InvalidRequest("invalid key version")
                wanted = int(text)
            if wanted < p.min_decryption_version:
                raise InvalidRequest("version for export is below minimum decryption version")
            if wanted not in p.versions:
                raise InvalidRequest("version does not exist or cannot be found")
            versions = [wanted]
        keys = {str(v): _export_value(key, v, args.kind) for v in versions}
        return Response(data={"name": p.name, "type": p.type, "keys": keys})

    # ---- backup and restore ------------------------------------------------------------------

    async def backup(self, request: Request, args: BackupArgs) -> Response:
        async with self.store.locked(args.name) as key:
            p = require_key(key, f'key "{args.name}" not found').policy
            if not p.exportable:
                raise InvalidRequest("exporting is disallowed on the policy")
            if not p.allow_plaintext_backup:
                raise InvalidRequest("plaintext backup is disallowed on the policy")
            p = dataclasses.replace(p, backup_info=Stamp(self.store.now_ns(), p.latest_version))
            await self.store.save(p)
        return Response(data={"backup": encode_backup(p)})

    async def restore(self, request: Request, args: RestoreArgs) -> None:
        if not args.backup:
            raise InvalidRequest("'backup' must be supplied")
        policy = decode_backup(args.backup, args.name, self.store.now_ns())
        if not _NAME_RE.fullmatch(policy.name):
            raise InvalidRequest("invalid key name in backup")
        async with self.store.locked(policy.name) as existing:
            if existing is not None and not args.force:
                raise InvalidRequest(f'key "{policy.name}" already exists')
            await self.store.save(policy)

    # ---- BYOK --------------------------------------------------------------------------------

    async def wrapping_key(self, request: Request, args: NoArgs) -> Response:
        public = (await self.store.wrapping_key()).public_key()
        pem = public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")
        return Response(data={"public_key": pem})

    async def _material(
        self, spec: KeyTypeSpec, ciphertext: str | None, public_key: str | None, hash_fn: str
    ) -> KeyVersion:
        created = self.store.now_ns()
        if ciphertext is not None:
            raw = unwrap_import(await self.store.wrapping_key(), ciphertext, hash_fn)
            if spec.asymmetric:
                return material_from_private(spec, raw, created)
            return material_from_raw(spec, raw, created)
        if not spec.asymmetric:
            raise InvalidRequest("provided type does not support public_key import")
        return material_from_public_pem(spec, public_key or "", created)

    async def import_key(self, request: Request, args: ImportArgs) -> None:
        """Vault's pathImportWrite: a new key from external material."""
        if "convergent_encryption" in request.data:
            raise InvalidRequest("import cannot be used on keys with convergent encryption enabled")
        check_auto_rotate(args.auto_rotate_period)
        if args.auto_rotate_period > 0 and not args.allow_rotation:
            raise InvalidRequest("allow_rotation must be set to true if auto-rotation is enabled")
        if args.ciphertext is not None and args.public_key is not None:
            raise InvalidRequest(
                "only one of the following fields, ciphertext and public_key, can be set"
            )
        spec = key_type(args.type)
        check_key_options(spec, derived=args.derived, convergent=False)
        async with self.store.locked(args.name) as existing:
            if existing is not None:
                raise InvalidRequest(
                    "the import path cannot be used with an existing key; use import-version "
                    "to rotate an existing imported key"
                )
            entry = await self._material(spec, args.ciphertext, args.public_key, args.hash_function)
            if spec.family == "ed25519" and args.derived and entry.key is None:
                raise InvalidRequest(
                    "unable to import only public key for derived Ed25519 key: imported key "
                    "should not be an Ed25519 key pair but is instead an HKDF key"
                )
            policy = KeyPolicy(
                name=args.name,
                type=spec.name,
                derived=args.derived,
                exportable=args.exportable,
                allow_plaintext_backup=args.allow_plaintext_backup,
                auto_rotate_period=args.auto_rotate_period,
                imported=True,
                allow_imported_key_rotation=args.allow_rotation,
                key_size=len(entry.key or b"") if spec.family == "hmac" else 0,
            )
            await self.store.save(policy.with_version(1, entry))

    async def import_version(self, request: Request, args: ImportVersionArgs) -> None:
        """Vault's pathImportVersionWrite: a new version, or a private half for a version."""
        async with self.store.locked(args.name) as key:
            if key is None:
                raise InvalidRequest(
                    f"no key found with name {args.name}; to import a new key, use the import/ "
                    "endpoint"
                )
            p, spec = key.policy, key.spec
            if not p.imported:
                raise InvalidRequest(
                    "the import_version endpoint can only be used with an imported key"
                )
            if p.convergent_encryption:
                raise InvalidRequest(
                    "import_version cannot be used on keys with convergent encryption enabled"
                )
            entry = await self._material(spec, args.ciphertext, args.public_key, args.hash_function)
            if args.version is not None:
                p = _complete_version(p, args.version, entry)
            else:
                latest = p.versions[p.latest_version]
                if (
                    spec.asymmetric
                    and latest.key is None
                    and entry.key is not None
                    and latest.public_key == entry.public_key
                ):
                    p = _complete_version(p, p.latest_version, entry)
                else:
                    p = p.with_version(p.latest_version + 1, entry)
                    if spec.family == "hmac":
                        p = dataclasses.replace(p, key_size=len(entry.key or b""))
            await self.store.save(p)

    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=rf"export/(?P<kind>[^/]+)/(?P<name>{NAME})(?:/(?P<version>[^/]+))?",
                args=ExportArgs,
                operations={Operation.READ: self.export},
                synopsis="Export named encryption or signing key",
                description=_EXPORT_HELP,
            ),
            Path(
                pattern=rf"backup/(?P<name>{NAME})",
                args=BackupArgs,
                operations={Operation.READ: self.backup},
                synopsis="Backup the named key",
                description=_BACKUP_HELP,
            ),
            Path(
                pattern=rf"restore(?:/(?P<name>{NAME}))?",
                args=RestoreArgs,
                operations={Operation.UPDATE: self.restore},
                synopsis="Restore the named key",
                description=_RESTORE_HELP,
            ),
            Path(
                pattern=r"wrapping_key",
                operations={Operation.READ: self.wrapping_key},
                synopsis="Returns the public key to use for wrapping imported keys",
                description=_WRAPPING_HELP,
            ),
            Path(
                pattern=rf"keys/(?P<name>{NAME})/import",
                args=ImportArgs,
                operations={Operation.UPDATE: self.import_key},
                synopsis="Imports an externally-generated key into a new transit key",
                description=_IMPORT_HELP,
            ),
            Path(
                pattern=rf"keys/(?P<name>{NAME})/import_version",
                args=ImportVersionArgs,
                operations={Operation.UPDATE: self.import_version},
                synopsis="Imports an externally-generated key into an existing imported key",
                description=_IMPORT_VERSION_HELP,
            ),
        ]


def _complete_version(p: KeyPolicy, version: int, entry: KeyVersion) -> KeyPolicy:
    """Give a public-only version its private half (Vault's ImportPrivateKeyForVersion)."""
    target = p.versions.get(version)
    if target is None:
        raise InvalidRequest("no such key version")
    if not p.spec.asymmetric:
        raise InvalidRequest("provided type does not support importing key versions")
    if target.key is not None:
        raise InvalidRequest("private key imported, key version cannot be updated")
    if entry.key is None:
        raise InvalidRequest(
            "cannot add a public key to a key version that already has a public key set"
        )
    if entry.public_key != target.public_key:
        raise InvalidRequest("cannot import key, key pair does not match")
    return dataclasses.replace(
        p, versions={**p.versions, version: dataclasses.replace(target, key=entry.key)}
    )


_EXPORT_HELP = """\
GET export/<kind>/<name>(/<version>|/latest) returns key material by version: kind is
encryption-key, signing-key, hmac-key (the key must be exportable) or public-key (any
asymmetric key). Versions below min_decryption_version are not exported."""

_BACKUP_HELP = """\
Returns a plaintext backup (base64 JSON in Vault's format) of every version of the key and its
settings. The key must be exportable and allow_plaintext_backup."""

_RESTORE_HELP = """\
Restores a backup from backup/ (Strongroom's or Vault's), under the name in the URL or body,
or the backed-up name. Refuses to replace an existing key unless force is true."""

_WRAPPING_HELP = """\
Returns this mount's RSA-4096 wrapping public key (PEM) for bring-your-own-key imports."""

_IMPORT_HELP = """\
Creates a key from external material: ciphertext = base64(RSA-OAEP(wrapping key,
hash_function) of an ephemeral AES-256 key || AES-KWP(ephemeral key, target key)), with the
target raw for symmetric and HMAC keys, PKCS#8 DER for asymmetric ones; or public_key (PEM)
alone. Options: type, allow_rotation, derived, exportable, allow_plaintext_backup,
auto_rotate_period (needs allow_rotation)."""

_IMPORT_VERSION_HELP = """\
Adds a version to an imported key from wrapped material (as import), or, with version, gives a
version imported as a public key its private half. Not for keys rotated by the engine."""
