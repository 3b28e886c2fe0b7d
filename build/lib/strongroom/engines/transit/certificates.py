"""transit ``keys/:name/csr``, ``keys/:name/set-certificate`` and
``byok-export/:destination/:source[/:version]``.

* csr: a PKCS#10 request signed by a signing key's version (ECDSA, Ed25519, RSA); the
  subject and extensions come from an optional template CSR, as in Vault.
* set-certificate: stores a certificate chain (leaf first) for a version; the leaf's public
  key must be that version's.
* byok-export: the source key's versions wrapped for another system that holds the
  destination RSA key's private half (Vault's CKM_RSA_AES_KEY_WRAP, the inverse of
  ``keys/:name/import``): an ephemeral AES-256 key under RSA-OAEP, the material under it
  with AES key wrap with padding. The source must be exportable.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, replace

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

from strongroom.engines.transit._crypto import LoadedKey
from strongroom.engines.transit._fields import NAME
from strongroom.engines.transit._store import KeyStore
from strongroom.engines.transit.import_export import _OAEP_HASHES as OAEP_HASHES
from strongroom.errors import InvalidRequest
from strongroom.framework import Path
from strongroom.logical import Operation, Request, Response

__all__ = ["CertificatePaths"]


@dataclass(frozen=True, slots=True)
class CsrArgs:
    name: str
    version: int = 0
    csr: str = ""


@dataclass(frozen=True, slots=True)
class CertificateArgs:
    name: str
    certificate_chain: str = ""
    version: int = 0


@dataclass(frozen=True, slots=True)
class ByokArgs:
    destination: str
    source: str
    version: str = ""
    hash: str = "SHA256"


def _signing_version(key: LoadedKey, requested: int) -> int:
    spec, p = key.spec, key.policy
    if not spec.supports_signing or spec.family not in ("ecdsa", "ed25519", "rsa"):
        raise InvalidRequest(f"key type {spec.name} does not support signing")
    if p.derived:
        raise InvalidRequest("operation not supported on keys with derivation enabled")
    version = requested or p.latest_version
    if version not in p.versions:
        raise InvalidRequest("could not find key version")
    if p.versions[version].key is None:
        raise InvalidRequest("requested version does not contain a private part")
    return version


def _material_der(key: LoadedKey, version: int) -> bytes:
    """What BYOK wraps: raw bytes for symmetric keys, PKCS#8 DER for asymmetric ones."""
    entry = key.entry(version)
    if entry.key is None:
        raise InvalidRequest("requested version does not contain a private part")
    if key.spec.family in ("aead", "hmac"):
        return entry.key
    private = key._private(version)  # the loaded key's own cache
    der: bytes = private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return der


class CertificatePaths:
    def __init__(self, store: KeyStore) -> None:
        self.store = store

    async def csr(self, request: Request, args: CsrArgs) -> Response:
        key = await self.store.get(args.name)
        if key is None:
            raise InvalidRequest(f"key {args.name!r} not found")
        version = _signing_version(key, args.version)
        builder = x509.CertificateSigningRequestBuilder()
        if args.csr.strip():
            try:
                template = x509.load_pem_x509_csr(args.csr.encode())
            except ValueError:
                raise InvalidRequest("could not parse the 'csr' template as PEM") from None
            builder = builder.subject_name(template.subject)
            for extension in template.extensions:
                builder = builder.add_extension(extension.value, extension.critical)
        else:
            builder = builder.subject_name(x509.Name([]))
        private = key._private(version)
        algorithm = None if isinstance(private, ed25519.Ed25519PrivateKey) else hashes.SHA256()
        csr = builder.sign(private, algorithm)
        pem = csr.public_bytes(serialization.Encoding.PEM).decode("ascii")
        return Response(data={"name": key.policy.name, "type": key.policy.type, "csr": pem})

    async def set_certificate(self, request: Request, args: CertificateArgs) -> None:
        if not args.certificate_chain.strip():
            raise InvalidRequest("'certificate_chain' must be provided")
        try:
            chain = x509.load_pem_x509_certificates(args.certificate_chain.encode())
        except ValueError:
            raise InvalidRequest("could not parse the certificate chain as PEM") from None
        async with self.store.locked(args.name) as key:
            if key is None:
                raise InvalidRequest(f"key {args.name!r} not found")
            version = _signing_version(key, args.version)
            leaf = (
                chain[0]
                .public_key()
                .public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            )
            ours = key.public(version).public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            if leaf != ours:
                raise InvalidRequest(
                    "the public key on the leaf certificate does not match the key version"
                )
            pem = "".join(
                cert.public_bytes(serialization.Encoding.PEM).decode("ascii") for cert in chain
            )
            p = key.policy
            entry = replace(p.versions[version], certificate_chain=pem)
            await self.store.save(replace(p, versions={**p.versions, version: entry}))

    async def byok_export(self, request: Request, args: ByokArgs) -> Response | None:
        hash_cls = OAEP_HASHES.get(args.hash.upper())
        if hash_cls is None:
            raise InvalidRequest(f"unknown hash function: {args.hash[:20]}")
        destination = await self.store.get(args.destination)
        source = await self.store.get(args.source)
        if destination is None or source is None:
            return None
        if destination.spec.family != "rsa":
            raise InvalidRequest("destination key must be an RSA key")
        if not source.policy.exportable:
            raise InvalidRequest("key is not exportable")
        public = destination.public(destination.policy.latest_version)
        if not isinstance(public, rsa.RSAPublicKey):
            raise InvalidRequest("destination key must be an RSA key")
        p = source.policy
        if args.version:
            text = args.version.removeprefix("v")
            if text == "latest":
                versions = [p.latest_version]
            elif text.isdigit() and int(text) in p.versions:
                versions = [int(text)]
            else:
                raise InvalidRequest("version does not exist or cannot be found")
        else:
            versions = [v for v in sorted(p.versions) if v >= p.min_decryption_version]
        oaep = padding.OAEP(mgf=padding.MGF1(hash_cls()), algorithm=hash_cls(), label=None)
        keys: dict[str, str] = {}
        for version in versions:
            ephemeral = secrets.token_bytes(32)
            wrapped = public.encrypt(ephemeral, oaep) + aes_key_wrap_with_padding(
                ephemeral, _material_der(source, version)
            )
            keys[str(version)] = base64.b64encode(wrapped).decode("ascii")
        return Response(data={"name": p.name, "type": p.type, "keys": keys})

    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=rf"keys/(?P<name>{NAME})/csr",
                args=CsrArgs,
                operations={Operation.UPDATE: self.csr},
                synopsis="A CSR signed by the key (subject and extensions from 'csr')",
            ),
            Path(
                pattern=rf"keys/(?P<name>{NAME})/set-certificate",
                args=CertificateArgs,
                operations={Operation.UPDATE: self.set_certificate},
                synopsis="Store a certificate chain for a key version",
            ),
            Path(
                pattern=rf"byok-export/(?P<destination>{NAME})/(?P<source>{NAME})"
                r"(?:/(?P<version>[^/]+))?",
                args=ByokArgs,
                operations={Operation.READ: self.byok_export},
                synopsis="The source key wrapped for the holder of the destination RSA key",
            ),
        ]
