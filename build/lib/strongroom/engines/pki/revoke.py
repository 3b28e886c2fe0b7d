"""Revocation: ``revoke``, ``revoke-with-key``, and the lease revocation of certificates
issued with ``generate_lease``. A revocation is stored under ``revoked/<serial>`` and the
issuer's CRL is rebuilt at once (or, with ``auto_rebuild``, its delta CRL), so the next
CRL fetch lists it without a restart."""

from __future__ import annotations

import dataclasses
import datetime
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from strongroom.engines.pki._crl import CRLBuilder, crl_config
from strongroom.engines.pki._crypto import (
    cert_der,
    format_serial,
    load_cert,
    load_private_key,
    normalize_serial,
)
from strongroom.engines.pki._store import IssuerRecord, PKIStore, RevokedRecord, signed_by
from strongroom.errors import InvalidRequest
from strongroom.framework import Path
from strongroom.logical import Operation, Request, Response

__all__ = ["RevokePaths", "Revoker"]


@dataclass(frozen=True, slots=True)
class RevokeArgs:
    serial_number: str = ""
    certificate: str = ""
    private_key: str = ""


def rfc3339(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Revoker:
    def __init__(self, store: PKIStore, crls: CRLBuilder) -> None:
        self.store = store
        self.crls = crls

    async def issuer_of(self, cert: x509.Certificate) -> IssuerRecord | None:
        for issuer in await self.store.issuers():
            candidate = self.store.cert(issuer.certificate)
            if candidate.subject == cert.issuer and signed_by(cert, candidate):
                return issuer
        return None

    async def find(self, args: RevokeArgs) -> tuple[str, x509.Certificate]:
        if bool(args.serial_number) == bool(args.certificate):
            raise InvalidRequest("exactly one of serial_number or certificate must be given")
        if args.serial_number:
            serial = normalize_serial(args.serial_number)
            der = await self.store.cert_der(serial)
            if der is None:
                raise InvalidRequest(
                    f"certificate with serial {serial} not found; it may have been issued "
                    "with no_store"
                )
            return serial, load_cert(der)
        cert = load_cert(args.certificate)
        serial = format_serial(cert.serial_number)
        stored = await self.store.cert_der(serial)
        if stored is not None and stored != cert_der(cert):
            raise InvalidRequest("the certificate does not match the stored certificate")
        return serial, cert

    async def revoke(self, serial: str, cert: x509.Certificate) -> dict[str, Any] | None:
        """Revoke one certificate (idempotent): the revocation time, or None if expired."""
        for issuer in await self.store.issuers():
            if self.store.cert(issuer.certificate).serial_number == cert.serial_number:
                raise InvalidRequest(
                    f"adding issuer (id: {issuer.id}) to its own CRL is not allowed"
                )
        signer = await self.issuer_of(cert)
        if signer is None:
            raise InvalidRequest("the certificate was not issued by any issuer of this mount")
        now = self.store.system.now()
        async with self.store.locks.hold(f"revoked/{serial}"):
            existing = await self.store.revoked(serial)
            if existing is not None:
                return _answer(existing.revocation_time)
            if cert.not_valid_after_utc.timestamp() < now:
                return None
            record = RevokedRecord(serial, cert_der(cert), now, signer.id)
            await self.store.put_revoked(record)
            if await self.store.cert_der(serial) is None:
                await self.store.put_cert(serial, cert_der(cert))
        config = await crl_config(self.store)
        if not config["auto_rebuild"]:
            await self.crls.rebuild(coalesce=True)
        elif config["enable_delta"]:
            await self.crls.rebuild(delta_only=True, coalesce=True)
        return _answer(now)

    async def revoke_issuer(self, issuer: IssuerRecord) -> IssuerRecord:
        """Mark an issuer revoked (it issues nothing more) and list its certificate on its
        parent's CRL when the parent is an issuer of this mount (Vault's issuer/:ref/revoke)."""
        now = self.store.system.now()
        async with self.store.locks.hold(f"issuer/{issuer.id}"):
            current = await self.store.issuer(issuer.id)
            if current is None:
                raise InvalidRequest("no such issuer")
            if current.revoked:
                return current
            cert = self.store.cert(current.certificate)
            updated = dataclasses.replace(
                current,
                revoked=True,
                revocation_time=int(now),
                usage=tuple(u for u in current.usage if u != "issuing-certificates"),
            )
            await self.store.put_issuer(updated)
        parent = None if cert.subject == cert.issuer else await self.issuer_of(cert)
        if parent is not None:
            serial = format_serial(cert.serial_number)
            async with self.store.locks.hold(f"revoked/{serial}"):
                if await self.store.revoked(serial) is None:
                    await self.store.put_revoked(
                        RevokedRecord(serial, cert_der(cert), now, parent.id)
                    )
        await self.crls.rebuild()
        return updated


def _answer(when: float) -> dict[str, Any]:
    return {
        "revocation_time": int(when),
        "revocation_time_rfc3339": rfc3339(when),
        "state": "revoked",
    }


class RevokePaths:
    def __init__(self, revoker: Revoker) -> None:
        self.revoker = revoker

    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=r"revoke",
                args=RevokeArgs,
                operations={Operation.UPDATE: self.revoke},
                synopsis="Revoke a certificate by serial number or PEM",
            ),
            Path(
                pattern=r"revoke-with-key",
                args=RevokeArgs,
                operations={Operation.UPDATE: self.revoke_with_key},
                synopsis="Revoke a certificate, proving possession of its private key",
            ),
        ]

    async def revoke(self, request: Request, args: RevokeArgs) -> Response | None:
        serial, cert = await self.revoker.find(args)
        data = await self.revoker.revoke(serial, cert)
        return Response(data=data) if data is not None else None

    async def revoke_with_key(self, request: Request, args: RevokeArgs) -> Response | None:
        if not args.private_key.strip():
            raise InvalidRequest("the private_key field is required")
        serial, cert = await self.revoker.find(args)
        key = load_private_key(args.private_key.encode())
        if key.public_key() != cert.public_key():
            # says nothing about the key beyond "it is not this certificate's"
            raise InvalidRequest("failed to validate private key match: the keys differ")
        data = await self.revoker.revoke(serial, cert)
        return Response(data=data) if data is not None else None
