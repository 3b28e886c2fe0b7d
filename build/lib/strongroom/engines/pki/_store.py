"""The PKI mount's records and where they live in its storage view (behind the barrier).

Layout (as Vault's, so operators recognise it)::

    config/issuers          {"default": <issuer id>, "default_follows_latest_issuer": bool}
    config/keys             {"default": <key id>}
    config/issuer/<id>      an issuer: its certificate, key id, usage, AIA URLs
    config/key/<id>         a key: its private key (PKCS#8 PEM), type, name
    config/urls|crl|cluster|auto-tidy|acme   the engine's settings
    role/<name>             roles
    certs/<serial>          every issued certificate (DER), unless the role says no_store
    revoked/<serial>        revocation entries
    crls/<issuer id>[-delta] the last CRLs built, with crls/numbers holding their numbers

Serials in keys use ``-`` (``17-67-16``), in responses ``:``. Records are frozen; every
read-modify-write runs under :attr:`PKIStore.locks` on the key it changes.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from cryptography import x509
from cryptography.exceptions import InvalidSignature

from strongroom.engines.pki._crypto import (
    PrivateKey,
    key_bits_of,
    key_type_of,
    load_cert,
    load_private_key,
    private_pkcs8_pem,
)
from strongroom.errors import InvalidRequest
from strongroom.framework import KeyLocks, get_json, list_all, put_json, remember
from strongroom.logical import Storage, StorageOp, SystemView

__all__ = [
    "ALL_USAGES",
    "IssuerRecord",
    "KeyRecord",
    "PKIStore",
    "RevokedRecord",
    "serial_key",
]

ALL_USAGES = ("crl-signing", "issuing-certificates", "ocsp-signing", "read-only")
_NAME = re.compile(r"\A[A-Za-z0-9_.-]{1,128}\Z")
_PARSE_LIMIT = 1024


_INDEX_PREFIX = "crls/index/"
_INDEX_READY = "crls/index-ready"


def _bucket(key: str) -> str:
    """The index bucket of a serial key (``aa-bb-cc`` → ``crls/index/cc``)."""
    return _INDEX_PREFIX + key[-2:]


def serial_key(serial: str) -> str:
    return serial.replace(":", "-")


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: str
    name: str
    type: str
    bits: int
    private_key: bytes = field(repr=False)  # PKCS#8 PEM

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "type": self.type,
            "bits": self.bits,
            "private_key": self.private_key.decode(),
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> KeyRecord:
        return cls(raw["id"], raw["name"], raw["type"], raw["bits"], raw["private_key"].encode())


@dataclass(frozen=True, slots=True)
class IssuerRecord:
    id: str
    name: str
    key_id: str
    certificate: str  # PEM
    manual_chain: tuple[str, ...] = ()
    usage: tuple[str, ...] = ALL_USAGES
    leaf_not_after_behavior: str = "err"
    revocation_signature_algorithm: str = ""
    issuing_certificates: tuple[str, ...] = ()
    crl_distribution_points: tuple[str, ...] = ()
    ocsp_servers: tuple[str, ...] = ()
    enable_aia_url_templating: bool = False
    revoked: bool = False
    revocation_time: int = 0

    def to_json(self) -> dict[str, Any]:
        raw = dataclasses.asdict(self)
        for name in ("manual_chain", "usage", "issuing_certificates", "crl_distribution_points"):
            raw[name] = list(raw[name])
        raw["ocsp_servers"] = list(raw["ocsp_servers"])
        return raw

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> IssuerRecord:
        values = dict(raw)
        for name in (
            "manual_chain",
            "usage",
            "issuing_certificates",
            "crl_distribution_points",
            "ocsp_servers",
        ):
            values[name] = tuple(values.get(name) or ())
        return cls(**values)


@dataclass(frozen=True, slots=True)
class RevokedRecord:
    serial: str
    certificate: bytes = field(repr=False)  # DER
    revocation_time: float
    issuer_id: str

    def to_json(self) -> dict[str, Any]:
        return {
            "serial_number": self.serial,
            "certificate_bytes": base64.b64encode(self.certificate).decode(),
            "revocation_time": self.revocation_time,
            "issuer_id": self.issuer_id,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> RevokedRecord:
        return cls(
            raw["serial_number"],
            base64.b64decode(raw["certificate_bytes"]),
            float(raw["revocation_time"]),
            raw.get("issuer_id", ""),
        )


class PKIStore:
    """Typed access to one mount's records, with parsed certificates and keys memoised by
    their exact stored text (a record that changes is parsed afresh)."""

    def __init__(self, storage: Storage, system: SystemView) -> None:
        self.storage = storage
        self.system = system
        self.locks = KeyLocks()
        self._certs: dict[str, x509.Certificate] = {}
        self._keys: dict[bytes, PrivateKey] = {}
        self._signed: dict[tuple[str, str], bool] = {}

    # -- parsing (memoised) -------------------------------------------------------------

    def cert(self, pem: str) -> x509.Certificate:
        parsed = self._certs.get(pem)
        if parsed is None:
            parsed = remember(self._certs, pem, load_cert(pem), _PARSE_LIMIT)
        return parsed

    def private_key(self, record: KeyRecord) -> PrivateKey:
        parsed = self._keys.get(record.private_key)
        if parsed is None:
            parsed = remember(
                self._keys, record.private_key, load_private_key(record.private_key), _PARSE_LIMIT
            )
        return parsed

    # -- generic config -----------------------------------------------------------------

    async def config(self, name: str) -> dict[str, Any]:
        raw = await get_json(self.storage, f"config/{name}")
        return raw if isinstance(raw, dict) else {}

    async def put_config(self, name: str, value: dict[str, Any]) -> None:
        await put_json(self.storage, f"config/{name}", value)

    # -- keys ---------------------------------------------------------------------------

    async def key(self, key_id: str) -> KeyRecord | None:
        raw = await get_json(self.storage, f"config/key/{key_id}")
        return KeyRecord.from_json(raw) if raw else None

    async def key_ids(self) -> list[str]:
        return await self.storage.list("config/key/")

    async def keys(self) -> list[KeyRecord]:
        out = []
        for key_id in await self.key_ids():
            record = await self.key(key_id)
            if record is not None:
                out.append(record)
        return out

    async def put_key(self, record: KeyRecord) -> None:
        await put_json(self.storage, f"config/key/{record.id}", record.to_json())

    async def delete_key(self, key_id: str) -> None:
        await self.storage.delete(f"config/key/{key_id}")

    async def resolve_key(self, ref: str) -> KeyRecord:
        """A key by ``default``, ID or name; 400 when there is none (as Vault)."""
        if ref in ("", "default"):
            default = (await self.config("keys")).get("default", "")
            record = await self.key(default) if default else None
            if record is None:
                raise InvalidRequest("no default key currently configured")
            return record
        if _is_uuid(ref):
            record = await self.key(ref)
            if record is not None:
                return record
        for record in await self.keys():
            if record.name == ref:
                return record
        raise InvalidRequest(f"unable to find PKI key for reference: {ref}")

    async def import_key(self, key: PrivateKey, name: str = "") -> tuple[KeyRecord, bool]:
        """Store ``key`` unless the same key is stored already: (record, existed)."""
        pem = private_pkcs8_pem(key)
        public = key.public_key()
        for record in await self.keys():
            if self.private_key(record).public_key() == public:
                return record, True
        await self.check_key_name(name)
        record = KeyRecord(str(uuid.uuid4()), name, key_type_of(key), key_bits_of(key), pem)
        await self.put_key(record)
        async with self.locks.hold("config/keys"):
            config = await self.config("keys")
            if not config.get("default"):
                await self.put_config("keys", {"default": record.id})
        return record, False

    async def check_key_name(self, name: str, *, exclude: str = "") -> None:
        if not name:
            return
        if name == "default" or not _NAME.match(name):
            raise InvalidRequest(f"invalid key name: {name!r}")
        for record in await self.keys():
            if record.name == name and record.id != exclude:
                raise InvalidRequest(f"key name already in use: {name}")

    # -- issuers ------------------------------------------------------------------------

    async def issuer(self, issuer_id: str) -> IssuerRecord | None:
        raw = await get_json(self.storage, f"config/issuer/{issuer_id}")
        return IssuerRecord.from_json(raw) if raw else None

    async def issuer_ids(self) -> list[str]:
        return await self.storage.list("config/issuer/")

    async def issuers(self) -> list[IssuerRecord]:
        out = []
        for issuer_id in await self.issuer_ids():
            record = await self.issuer(issuer_id)
            if record is not None:
                out.append(record)
        return out

    async def put_issuer(self, record: IssuerRecord) -> None:
        await put_json(self.storage, f"config/issuer/{record.id}", record.to_json())

    async def delete_issuer(self, issuer_id: str) -> None:
        await self.storage.delete(f"config/issuer/{issuer_id}")
        async with self.locks.hold("config/issuers"):
            config = await self.config("issuers")
            if config.get("default") == issuer_id:
                config["default"] = ""
                await self.put_config("issuers", config)

    async def default_issuer_id(self) -> str:
        return str((await self.config("issuers")).get("default", ""))

    async def resolve_issuer(self, ref: str) -> IssuerRecord:
        """An issuer by ``default``, ID or name; 400 when there is none (as Vault)."""
        if ref in ("", "default"):
            default = await self.default_issuer_id()
            record = await self.issuer(default) if default else None
            if record is None:
                raise InvalidRequest("no default issuer currently configured")
            return record
        if _is_uuid(ref):
            record = await self.issuer(ref)
            if record is not None:
                return record
        for record in await self.issuers():
            if record.name == ref:
                return record
        raise InvalidRequest(f"unable to find PKI issuer for reference: {ref}")

    async def check_issuer_name(self, name: str, *, exclude: str = "") -> None:
        if not name:
            return
        if name == "default" or not _NAME.match(name):
            raise InvalidRequest(f"invalid issuer name: {name!r}")
        for record in await self.issuers():
            if record.name == name and record.id != exclude:
                raise InvalidRequest(f"issuer name already in use: {name}")

    async def import_issuer(
        self, cert: x509.Certificate, pem: str, name: str = "", *, set_default: bool = True
    ) -> tuple[IssuerRecord, bool]:
        """Store a CA certificate as an issuer (linking the stored key that matches it)."""
        for record in await self.issuers():
            if self.cert(record.certificate) == cert:
                return record, True
        await self.check_issuer_name(name)
        key_id = ""
        public = cert.public_key()
        for key in await self.keys():
            if self.private_key(key).public_key() == public:
                key_id = key.id
                break
        record = IssuerRecord(id=str(uuid.uuid4()), name=name, key_id=key_id, certificate=pem)
        await self.put_issuer(record)
        async with self.locks.hold("config/issuers"):
            config = await self.config("issuers")
            current = config.get("default", "")
            follows = bool(config.get("default_follows_latest_issuer", False))
            if set_default and key_id and (not current or follows):
                config["default"] = record.id
                await self.put_config("issuers", config)
        return record, False

    async def chain(self, record: IssuerRecord) -> list[str]:
        """The issuer's CA chain as PEM, itself first: its manual chain if set, else found by
        subject/issuer names and signatures among the stored issuers, up to a root."""
        if record.manual_chain:
            out = []
            for issuer_id in record.manual_chain:
                other = await self.issuer(issuer_id)
                if other is not None:
                    out.append(other.certificate)
            return out
        everyone = await self.issuers()
        chain = [record.certificate]
        seen = {record.id}
        current_pem = record.certificate
        current = self.cert(current_pem)
        while current.issuer != current.subject:
            parent = None
            for other in everyone:
                if other.id in seen:
                    continue
                candidate = self.cert(other.certificate)
                if candidate.subject == current.issuer and self.signed_by(
                    current_pem, other.certificate
                ):
                    parent = other
                    break
            if parent is None:
                break
            seen.add(parent.id)
            chain.append(parent.certificate)
            current_pem = parent.certificate
            current = self.cert(current_pem)
        return chain

    def signed_by(self, child_pem: str, parent_pem: str) -> bool:
        """Whether ``parent`` signed ``child`` (memoised: a signature check costs ~0.1 ms)."""
        key = (child_pem, parent_pem)
        known = self._signed.get(key)
        if known is None:
            known = remember(
                self._signed,
                key,
                signed_by(self.cert(child_pem), self.cert(parent_pem)),
                _PARSE_LIMIT,
            )
        return known

    # -- certificates -------------------------------------------------------------------

    async def put_cert(self, serial: str, der: bytes) -> None:
        await self.storage.put(f"certs/{serial_key(serial)}", der)

    async def cert_der(self, serial: str) -> bytes | None:
        return await self.storage.get(f"certs/{serial_key(serial)}")

    async def delete_cert(self, serial: str) -> None:
        await self.storage.delete(f"certs/{serial_key(serial)}")

    async def cert_serials(self) -> list[str]:
        return [key.replace("-", ":") for key in await self.storage.list("certs/")]

    async def revoked(self, serial: str) -> RevokedRecord | None:
        raw = await get_json(self.storage, f"revoked/{serial_key(serial)}")
        return RevokedRecord.from_json(raw) if raw else None

    async def put_revoked(self, record: RevokedRecord) -> None:
        """Store a revocation and its CRL index entry in one transaction."""
        key = serial_key(record.serial)
        bucket = _bucket(key)
        async with self.locks.hold(bucket):
            entries = await get_json(self.storage, bucket) or {}
            entries[key] = [record.issuer_id, record.revocation_time]
            await self.storage.transaction(
                [
                    StorageOp(f"revoked/{key}", orjson.dumps(record.to_json())),
                    StorageOp(bucket, orjson.dumps(entries)),
                ]
            )

    async def delete_revoked(self, serial: str) -> None:
        key = serial_key(serial)
        bucket = _bucket(key)
        async with self.locks.hold(bucket):
            entries = await get_json(self.storage, bucket) or {}
            entries.pop(key, None)
            await self.storage.transaction(
                [StorageOp(f"revoked/{key}"), StorageOp(bucket, orjson.dumps(entries))]
            )

    async def revocation_index(self) -> dict[str, tuple[str, float]]:
        """serial key → (issuer ID, revocation time) for every revocation, from the 256
        index buckets (``crls/index/<last byte>``) that put_revoked / delete_revoked keep
        in the same transaction as the entries. A mount whose revocations predate the
        index gets it built from ``revoked/`` once (marker ``crls/index-ready``)."""
        if await self.storage.get(_INDEX_READY) is None:
            await self._build_index()
        names = await self.storage.list(_INDEX_PREFIX)
        raws = await asyncio.gather(*(self.storage.get(_INDEX_PREFIX + n) for n in names))
        out: dict[str, tuple[str, float]] = {}
        for raw in raws:
            if raw:
                for key, (issuer_id, when) in orjson.loads(raw).items():
                    out[key] = (issuer_id, float(when))
        return out

    async def _build_index(self) -> None:
        buckets: dict[str, dict[str, list[Any]]] = {}
        keys = await self.storage.list("revoked/")
        for start in range(0, len(keys), 256):
            batch = keys[start : start + 256]
            raws = await asyncio.gather(*(self.storage.get(f"revoked/{k}") for k in batch))
            for key, raw in zip(batch, raws, strict=True):
                if raw is None:
                    continue
                record = orjson.loads(raw)
                entry = [record.get("issuer_id", ""), float(record["revocation_time"])]
                buckets.setdefault(_bucket(key), {})[key] = entry
        for bucket, entries in buckets.items():
            async with self.locks.hold(bucket):
                current = await get_json(self.storage, bucket) or {}
                current.update(entries)
                await put_json(self.storage, bucket, current)
        await self.storage.put(_INDEX_READY, b"1")

    async def revoked_serials(self) -> list[str]:
        return [key.replace("-", ":") for key in await self.storage.list("revoked/")]

    # -- roles --------------------------------------------------------------------------

    async def role(self, name: str) -> dict[str, Any] | None:
        raw = await get_json(self.storage, f"role/{name}")
        return raw if isinstance(raw, dict) else None

    async def put_role(self, name: str, value: dict[str, Any]) -> None:
        await put_json(self.storage, f"role/{name}", value)

    async def delete_role(self, name: str) -> None:
        await self.storage.delete(f"role/{name}")

    async def role_names(self) -> list[str]:
        return await list_all(self.storage, "role/")


def signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def ids_of(records: Iterable[IssuerRecord | KeyRecord]) -> list[str]:
    return [record.id for record in records]
