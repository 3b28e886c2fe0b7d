"""Reading certificates back: ``ca``, ``ca/pem``, ``ca_chain``, ``cert/:serial`` (and
``/raw``, ``/raw/pem``), ``certs`` LIST and ``certs/revoked`` LIST. The raw forms answer
with DER or PEM bodies and their own content types, unauthenticated (as Vault)."""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from strongroom.engines.pki._crypto import cert_der, cert_pem, load_cert, normalize_serial
from strongroom.engines.pki._store import PKIStore
from strongroom.framework import NoArgs, Path
from strongroom.logical import Operation, Request, Response

__all__ = ["PEM_CHAIN", "PKIX_CERT", "FetchPaths"]

PKIX_CERT = "application/pkix-cert"
PEM_CHAIN = "application/pem-certificate-chain"

CRLFetch = Callable[[str, bool], Awaitable[bytes | None]]


@dataclass(frozen=True, slots=True)
class SerialArgs:
    serial: str
    raw: str = ""


class FetchPaths:
    def __init__(self, store: PKIStore, crl: CRLFetch) -> None:
        self.store = store
        self.crl = crl  # (issuer ref, delta) → the CRL's DER, for cert/crl and cert/delta-crl

    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=r"ca(?:/(?P<raw>pem))?",
                args=_CAArgs,
                operations={Operation.READ: self.ca},
                synopsis="The default issuer's certificate (DER, or PEM at ca/pem)",
            ),
            Path(
                pattern=r"ca_chain|cert/ca_chain",
                args=NoArgs,
                operations={Operation.READ: self.ca_chain},
                synopsis="The default issuer's CA chain (PEM)",
            ),
            Path(
                pattern=r"cert/(?P<serial>[^/]+)(?:/(?P<raw>raw|raw/pem))?",
                args=SerialArgs,
                operations={Operation.READ: self.cert},
                synopsis="A certificate by serial number",
            ),
            Path(
                pattern=r"certs/?",
                args=NoArgs,
                operations={Operation.LIST: self.list_certs},
                synopsis="List the serial numbers of stored certificates",
            ),
            Path(
                pattern=r"certs/revoked/?",
                args=NoArgs,
                operations={Operation.LIST: self.list_revoked},
                synopsis="List the serial numbers of revoked certificates",
            ),
        ]

    async def ca(self, request: Request, args: _CAArgs) -> Response:
        issuer = await self.store.resolve_issuer("default")
        cert = self.store.cert(issuer.certificate)
        if args.raw == "pem":
            return Response(raw_body=(cert_pem(cert) + "\n").encode(), content_type=PEM_CHAIN)
        return Response(raw_body=cert_der(cert), content_type=PKIX_CERT)

    async def ca_chain(self, request: Request, args: NoArgs) -> Response:
        issuer = await self.store.resolve_issuer("default")
        chain = await self.store.chain(issuer)
        if request.path.startswith("cert/"):
            return Response(data={"certificate": "\n".join(chain), "ca_chain": chain})
        return Response(raw_body=("\n".join(chain) + "\n").encode(), content_type=PKIX_CERT)

    async def cert(self, request: Request, args: SerialArgs) -> Response | None:
        serial = args.serial
        if serial in ("ca", "crl", "delta-crl"):
            return await self._special(serial, args.raw)
        serial = normalize_serial(serial)
        der = await self.store.cert_der(serial)
        if der is None:
            return None
        cert = load_cert(der)
        if args.raw == "raw":
            return Response(raw_body=der, content_type=PKIX_CERT)
        if args.raw == "raw/pem":
            return Response(raw_body=(cert_pem(cert) + "\n").encode(), content_type=PEM_CHAIN)
        revoked = await self.store.revoked(serial)
        data: dict[str, Any] = {
            "certificate": cert_pem(cert),
            "revocation_time": int(revoked.revocation_time) if revoked else 0,
            "issuer_id": revoked.issuer_id if revoked else await self._issuer_of(cert),
        }
        if revoked is not None:
            data["revocation_time_rfc3339"] = datetime.datetime.fromtimestamp(
                revoked.revocation_time, datetime.UTC
            ).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return Response(data=data)

    async def _issuer_of(self, cert: Any) -> str:
        for issuer in await self.store.issuers():
            if self.store.cert(issuer.certificate).subject == cert.issuer:
                return issuer.id
        return ""

    async def _special(self, name: str, raw: str) -> Response | None:
        if name == "ca":
            issuer = await self.store.resolve_issuer("default")
            cert = self.store.cert(issuer.certificate)
            if raw == "raw":
                return Response(raw_body=cert_der(cert), content_type=PKIX_CERT)
            if raw == "raw/pem":
                return Response(raw_body=(cert_pem(cert) + "\n").encode(), content_type=PEM_CHAIN)
            return Response(data={"certificate": cert_pem(cert), "revocation_time": 0})
        der = await self.crl("default", name == "delta-crl")
        if der is None:
            return None
        pem = x509.load_der_x509_crl(der).public_bytes(serialization.Encoding.PEM).decode()
        if raw == "raw":
            return Response(raw_body=der, content_type="application/pkix-crl")
        if raw == "raw/pem":
            return Response(raw_body=pem.encode(), content_type="application/x-pem-file")
        return Response(data={"certificate": pem.strip(), "revocation_time": 0})

    async def list_certs(self, request: Request, args: NoArgs) -> Response:
        return Response(data={"keys": await self.store.cert_serials()})

    async def list_revoked(self, request: Request, args: NoArgs) -> Response:
        return Response(data={"keys": await self.store.revoked_serials()})


@dataclass(frozen=True, slots=True)
class _CAArgs:
    raw: str = ""
