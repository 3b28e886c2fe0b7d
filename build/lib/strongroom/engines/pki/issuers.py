"""Issuers and keys: ``issuers`` LIST, ``issuer/:ref`` (read, update, patch, delete, and
``/json|der|pem``), ``config/issuers``, ``keys`` LIST, ``keys/generate/:type``,
``keys/import``, ``key/:ref``, ``config/keys``."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from strongroom.engines.pki._crypto import (
    cert_der,
    encode_private_key,
    format_serial,
    generate_key,
    key_spec,
    load_private_key,
)
from strongroom.engines.pki._store import ALL_USAGES, IssuerRecord, KeyRecord, PKIStore
from strongroom.errors import InvalidRequest
from strongroom.framework import NoArgs, Path
from strongroom.logical import Operation, Request, Response

__all__ = ["IssuersPaths"]

_BEHAVIORS = ("err", "truncate", "permit")


@dataclass(frozen=True, slots=True)
class RefArgs:
    ref: str


@dataclass(frozen=True, slots=True)
class IssuerArgs:
    ref: str
    issuer_name: str = ""
    leaf_not_after_behavior: str = "err"
    manual_chain: list[str] = field(default_factory=list)
    usage: list[str] = field(default_factory=lambda: list(ALL_USAGES))
    revocation_signature_algorithm: str = ""
    issuing_certificates: list[str] = field(default_factory=list)
    crl_distribution_points: list[str] = field(default_factory=list)
    ocsp_servers: list[str] = field(default_factory=list)
    enable_aia_url_templating: bool = False


@dataclass(frozen=True, slots=True)
class IssuersConfigArgs:
    default: str = ""
    default_follows_latest_issuer: bool = False


@dataclass(frozen=True, slots=True)
class KeyGenArgs:
    type: str
    key_type: str = "rsa"
    key_bits: int = 0
    key_name: str = ""


@dataclass(frozen=True, slots=True)
class KeyImportArgs:
    pem_bundle: str = ""
    key_name: str = ""


@dataclass(frozen=True, slots=True)
class KeyArgs:
    ref: str
    key_name: str = ""


@dataclass(frozen=True, slots=True)
class KeysConfigArgs:
    default: str = ""


_FIELD_OF = {"issuer_name": "name"}
_SIGNATURE_ALGORITHMS = (
    "",
    "SHA256WithRSA",
    "SHA384WithRSA",
    "SHA512WithRSA",
    "SHA256WithRSAPSS",
    "SHA384WithRSAPSS",
    "SHA512WithRSAPSS",
    "ECDSAWithSHA256",
    "ECDSAWithSHA384",
    "ECDSAWithSHA512",
    "PureEd25519",
)


class IssuersPaths:
    def __init__(
        self, store: PKIStore, revoke_issuer: Callable[[IssuerRecord], Awaitable[IssuerRecord]]
    ) -> None:
        self.store = store
        self.revoke_issuer = revoke_issuer  # Revoker.revoke_issuer (revoke.py)

    def paths(self) -> list[Path]:
        ref = r"issuer/(?P<ref>[^/]+)"
        return [
            Path(
                pattern=r"issuers/?",
                args=NoArgs,
                operations={Operation.LIST: self.list_issuers},
                synopsis="List the issuers",
            ),
            Path(
                pattern=rf"{ref}/(?P<kind>json|der|pem)",
                args=_FetchArgs,
                operations={Operation.READ: self.fetch_issuer},
                synopsis="Fetch an issuer's certificate (unauthenticated)",
            ),
            Path(
                pattern=rf"{ref}/revoke",
                args=RefArgs,
                operations={Operation.UPDATE: self.revoke},
                synopsis="Revoke an issuer",
            ),
            Path(
                pattern=ref,
                args=IssuerArgs,
                operations={
                    Operation.READ: self.read_issuer,
                    Operation.UPDATE: self.update_issuer,
                    Operation.PATCH: self.patch_issuer,
                    Operation.DELETE: self.delete_issuer,
                },
                synopsis="Read, update or delete an issuer",
            ),
            Path(
                pattern=r"config/issuers",
                args=IssuersConfigArgs,
                operations={
                    Operation.READ: self.read_issuers_config,
                    Operation.UPDATE: self.write_issuers_config,
                },
                synopsis="The default issuer",
            ),
            Path(
                pattern=r"keys/?",
                args=NoArgs,
                operations={Operation.LIST: self.list_keys},
                synopsis="List the keys",
            ),
            Path(
                pattern=r"keys/generate/(?P<type>[^/]+)",
                args=KeyGenArgs,
                operations={Operation.UPDATE: self.generate_key},
                synopsis="Generate a key",
            ),
            Path(
                pattern=r"keys/import",
                args=KeyImportArgs,
                operations={Operation.UPDATE: self.import_key},
                synopsis="Import a private key",
            ),
            Path(
                pattern=r"key/(?P<ref>[^/]+)",
                args=KeyArgs,
                operations={
                    Operation.READ: self.read_key,
                    Operation.UPDATE: self.update_key,
                    Operation.DELETE: self.delete_key,
                },
                synopsis="Read, rename or delete a key",
            ),
            Path(
                pattern=r"config/keys",
                args=KeysConfigArgs,
                operations={
                    Operation.READ: self.read_keys_config,
                    Operation.UPDATE: self.write_keys_config,
                },
                synopsis="The default key",
            ),
        ]

    # -- issuers -------------------------------------------------------------------------

    async def list_issuers(self, request: Request, args: NoArgs) -> Response:
        default = await self.store.default_issuer_id()
        records = await self.store.issuers()
        info: dict[str, Any] = {}
        for record in records:
            cert = self.store.cert(record.certificate)
            info[record.id] = {
                "issuer_name": record.name,
                "is_default": record.id == default,
                "key_id": record.key_id,
                "serial_number": format_serial(cert.serial_number),
            }
        return Response(data={"keys": [r.id for r in records], "key_info": info})

    async def issuer_json(self, record: IssuerRecord) -> dict[str, Any]:
        chain = await self.store.chain(record)
        data: dict[str, Any] = {
            "issuer_id": record.id,
            "issuer_name": record.name,
            "key_id": record.key_id,
            "certificate": record.certificate,
            "ca_chain": chain,
            "manual_chain": list(record.manual_chain) or None,
            "leaf_not_after_behavior": record.leaf_not_after_behavior,
            "usage": ",".join(record.usage),
            "revocation_signature_algorithm": record.revocation_signature_algorithm
            or _default_algorithm(self.store.cert(record.certificate)),
            "issuing_certificates": list(record.issuing_certificates),
            "crl_distribution_points": list(record.crl_distribution_points),
            "delta_crl_distribution_points": [],
            "ocsp_servers": list(record.ocsp_servers),
            "enable_aia_url_templating": record.enable_aia_url_templating,
            "revoked": record.revoked,
        }
        if record.revoked:
            data["revocation_time"] = record.revocation_time
        return data

    async def read_issuer(self, request: Request, args: IssuerArgs) -> Response:
        record = await self.store.resolve_issuer(args.ref)
        return Response(data=await self.issuer_json(record))

    async def revoke(self, request: Request, args: RefArgs) -> Response:
        record = await self.store.resolve_issuer(args.ref)
        updated = await self.revoke_issuer(record)
        return Response(data=await self.issuer_json(updated))

    async def fetch_issuer(self, request: Request, args: _FetchArgs) -> Response:
        record = await self.store.resolve_issuer(args.ref)
        if args.kind == "json":
            return Response(
                data={
                    "issuer_id": record.id,
                    "issuer_name": record.name,
                    "certificate": record.certificate,
                    "ca_chain": await self.store.chain(record),
                }
            )
        cert = self.store.cert(record.certificate)
        if args.kind == "der":
            return Response(raw_body=cert_der(cert), content_type="application/pkix-cert")
        return Response(
            raw_body=(record.certificate + "\n").encode(),
            content_type="application/pem-certificate-chain",
        )

    async def _apply(self, record: IssuerRecord, changes: dict[str, Any]) -> IssuerRecord:
        values: dict[str, Any] = {}
        for name, value in changes.items():
            if name == "issuer_name":
                await self.store.check_issuer_name(value, exclude=record.id)
                values["name"] = value
            elif name == "leaf_not_after_behavior":
                if value not in _BEHAVIORS:
                    raise InvalidRequest(
                        "leaf_not_after_behavior: expected one of err, truncate or permit"
                    )
                values[name] = value
            elif name == "usage":
                usage = tuple(u.strip() for u in value if u.strip())
                unknown = [u for u in usage if u not in ALL_USAGES]
                if unknown:
                    raise InvalidRequest(f"unknown usage: {', '.join(unknown)}")
                values[name] = usage
            elif name == "manual_chain":
                values[name] = tuple(await self._manual_chain(record, value))
            elif name == "revocation_signature_algorithm":
                if value not in _SIGNATURE_ALGORITHMS:
                    raise InvalidRequest(f"unknown revocation_signature_algorithm: {value}")
                values[name] = value
            elif name in ("issuing_certificates", "crl_distribution_points", "ocsp_servers"):
                values[name] = tuple(value)
            elif name == "enable_aia_url_templating":
                values[name] = bool(value)
        return dataclasses.replace(record, **values)

    async def _manual_chain(self, record: IssuerRecord, refs: list[str]) -> list[str]:
        if not refs:
            return []
        if refs[0] != "self":
            first = await self.store.resolve_issuer(refs[0])
            if first.id != record.id:
                raise InvalidRequest("manual_chain must start with the issuer itself (or 'self')")
        out = [record.id]
        for ref in refs[1:]:
            out.append((await self.store.resolve_issuer(ref)).id)
        return out

    async def update_issuer(self, request: Request, args: IssuerArgs) -> Response:
        return await self._change(request, args, patch=False)

    async def patch_issuer(self, request: Request, args: IssuerArgs) -> Response:
        return await self._change(request, args, patch=True)

    async def _change(self, request: Request, args: IssuerArgs, *, patch: bool) -> Response:
        record = await self.store.resolve_issuer(args.ref)
        async with self.store.locks.hold(f"issuer/{record.id}"):
            record = await self.store.resolve_issuer(record.id)
            names = [f.name for f in dataclasses.fields(IssuerArgs) if f.name != "ref"]
            if patch:
                changes = {n: getattr(args, n) for n in names if n in request.data}
            else:
                changes = {n: getattr(args, n) for n in names}
                if "issuer_name" not in request.data:
                    changes["issuer_name"] = record.name
            updated = await self._apply(record, changes)
            if "crl-signing" not in updated.usage and updated.revoked is False:
                pass
            await self.store.put_issuer(updated)
        return Response(data=await self.issuer_json(updated))

    async def delete_issuer(self, request: Request, args: IssuerArgs) -> Response | None:
        try:
            record = await self.store.resolve_issuer(args.ref)
        except InvalidRequest:
            return None
        default = await self.store.default_issuer_id()
        await self.store.delete_issuer(record.id)
        if default == record.id:
            return Response(warnings=["Deleted issuer which was previously the default issuer"])
        return None

    async def read_issuers_config(self, request: Request, args: IssuersConfigArgs) -> Response:
        config = await self.store.config("issuers")
        return Response(
            data={
                "default": config.get("default", ""),
                "default_follows_latest_issuer": bool(
                    config.get("default_follows_latest_issuer", False)
                ),
            }
        )

    async def write_issuers_config(self, request: Request, args: IssuersConfigArgs) -> Response:
        async with self.store.locks.hold("config/issuers"):
            config = await self.store.config("issuers")
            if "default" in request.data:
                config["default"] = (
                    (await self.store.resolve_issuer(args.default)).id if args.default else ""
                )
            if "default_follows_latest_issuer" in request.data:
                config["default_follows_latest_issuer"] = args.default_follows_latest_issuer
            await self.store.put_config("issuers", config)
        return await self.read_issuers_config(request, args)

    # -- keys ----------------------------------------------------------------------------

    async def list_keys(self, request: Request, args: NoArgs) -> Response:
        records = await self.store.keys()
        default = (await self.store.config("keys")).get("default", "")
        info = {r.id: {"key_name": r.name, "is_default": r.id == default} for r in records}
        return Response(data={"keys": [r.id for r in records], "key_info": info})

    def _key_json(self, record: KeyRecord) -> dict[str, Any]:
        public = self.store.private_key(record).public_key()
        ski = x509.SubjectKeyIdentifier.from_public_key(public).digest
        return {
            "key_id": record.id,
            "key_name": record.name,
            "key_type": record.type,
            "subject_key_id": ":".join(f"{b:02x}" for b in ski),
        }

    async def generate_key(self, request: Request, args: KeyGenArgs) -> Response:
        if args.type not in ("internal", "exported"):
            raise InvalidRequest(f"unknown type: {args.type}; expected internal or exported")
        await self.store.check_key_name(args.key_name)
        key = await generate_key(key_spec(args.key_type, args.key_bits))
        async with self.store.locks.hold("keys"):
            record, _ = await self.store.import_key(key, args.key_name)
        data = self._key_json(record)
        del data["subject_key_id"]
        if args.type == "exported":
            data["private_key"] = encode_private_key(key, "pem", "")
        return Response(data=data)

    async def import_key(self, request: Request, args: KeyImportArgs) -> Response:
        if not args.pem_bundle.strip():
            raise InvalidRequest("the pem_bundle field is required")
        key = load_private_key(args.pem_bundle.encode())
        async with self.store.locks.hold("keys"):
            record, existed = await self.store.import_key(key, args.key_name)
        data = self._key_json(record)
        del data["subject_key_id"]
        return Response(
            data=data, warnings=["the key was already stored; returning it"] if existed else []
        )

    async def read_key(self, request: Request, args: KeyArgs) -> Response:
        record = await self.store.resolve_key(args.ref)
        return Response(data=self._key_json(record))

    async def update_key(self, request: Request, args: KeyArgs) -> Response:
        record = await self.store.resolve_key(args.ref)
        async with self.store.locks.hold("keys"):
            await self.store.check_key_name(args.key_name, exclude=record.id)
            record = dataclasses.replace(record, name=args.key_name)
            await self.store.put_key(record)
        return Response(data=self._key_json(record))

    async def delete_key(self, request: Request, args: KeyArgs) -> None:
        try:
            record = await self.store.resolve_key(args.ref)
        except InvalidRequest:
            return None
        for issuer in await self.store.issuers():
            if issuer.key_id == record.id:
                raise InvalidRequest("unable to delete key as it is in use by one or more issuers")
        await self.store.delete_key(record.id)
        async with self.store.locks.hold("config/keys"):
            config = await self.store.config("keys")
            if config.get("default") == record.id:
                await self.store.put_config("keys", {"default": ""})
        return None

    async def read_keys_config(self, request: Request, args: KeysConfigArgs) -> Response:
        return Response(data={"default": (await self.store.config("keys")).get("default", "")})

    async def write_keys_config(self, request: Request, args: KeysConfigArgs) -> Response:
        record = await self.store.resolve_key(args.default)
        async with self.store.locks.hold("config/keys"):
            await self.store.put_config("keys", {"default": record.id})
        return Response(data={"default": record.id})


@dataclass(frozen=True, slots=True)
class _FetchArgs:
    ref: str
    kind: str


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _default_algorithm(cert: x509.Certificate) -> str:
    """The name Vault reports for an issuer's own signature algorithm."""
    name = cert.signature_algorithm_oid._name.lower()
    table = {
        "sha256withrsaencryption": "SHA256WithRSA",
        "sha384withrsaencryption": "SHA384WithRSA",
        "sha512withrsaencryption": "SHA512WithRSA",
        "ecdsa-with-sha256": "ECDSAWithSHA256",
        "ecdsa-with-sha384": "ECDSAWithSHA384",
        "ecdsa-with-sha512": "ECDSAWithSHA512",
        "ed25519": "PureEd25519",
        "rsassa_pss": "SHA256WithRSAPSS",
    }
    return table.get(name, "")
