"""cert ``crls/`` (LIST) and ``crls/<name>`` (write, read, delete), and the in-memory CRL set.

Every CRL of the mount is parsed into memory by the backend's ``initialize()``, which core
calls when the mount is created and again at every unseal, so logins never read or parse CRLs
from storage, and a revocation written before a restart is enforced from the first login
after it (not from the first CRL read). Writes and deletes update storage, then memory.

CRLs are admin-supplied and trusted as given (as in Vault): their signatures are not checked.
A certificate is revoked when a CRL *from its issuer* (same issuer name) lists its serial.

Storage: ``crls/<name>`` → ``{"crl": "<PEM>"}``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cryptography import x509

from strongroom.auth._common import storage_of
from strongroom.errors import InvalidRequest
from strongroom.framework import NoArgs, Path, get_json, put_json
from strongroom.logical import Operation, Request, Response, Storage

__all__ = ["CRL_PREFIX", "CRLArgs", "CRLPaths", "CRLSet"]

CRL_PREFIX = "crls/"
_NAME = re.compile(r"[\w.@\-]+")


def _parse(pem: str) -> x509.CertificateRevocationList:
    try:
        return x509.load_pem_x509_crl(pem.encode())
    except ValueError:
        try:
            return x509.load_der_x509_crl(pem.encode("latin-1"))
        except ValueError:
            raise InvalidRequest("crl: expected a PEM-encoded CRL") from None


class CRLSet:
    """The mount's CRLs, parsed, by name."""

    def __init__(self) -> None:
        self._crls: dict[str, x509.CertificateRevocationList] = {}
        self.loaded = False

    async def load(self, storage: Storage) -> None:
        crls: dict[str, x509.CertificateRevocationList] = {}
        for name in await storage.list(CRL_PREFIX):
            record = await get_json(storage, CRL_PREFIX + name)
            if record is not None:
                crls[name] = _parse(record["crl"])
        self._crls = crls
        self.loaded = True

    def set(self, name: str, crl: x509.CertificateRevocationList) -> None:
        self._crls[name] = crl

    def remove(self, name: str) -> None:
        self._crls.pop(name, None)

    def get(self, name: str) -> x509.CertificateRevocationList | None:
        return self._crls.get(name)

    def names(self) -> list[str]:
        return sorted(self._crls)

    def revoked(self, cert: x509.Certificate) -> bool:
        return any(
            crl.issuer == cert.issuer
            and crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
            for crl in self._crls.values()
        )


@dataclass(frozen=True, slots=True)
class CRLArgs:
    name: str
    crl: str = ""
    url: str = ""


def _crl_name(raw: str) -> str:
    name = raw.lower()
    if _NAME.fullmatch(name) is None or set(name) == {"."}:
        raise InvalidRequest("name: letters, digits, '_', '-', '.' and '@' only")
    return name


class CRLPaths:
    def __init__(self, crls: CRLSet) -> None:
        self.crls = crls

    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=r"crls/?",
                args=NoArgs,
                operations={Operation.LIST: self.list_crls},
                synopsis="List the CRLs of this mount.",
            ),
            Path(
                pattern=r"crls/(?P<name>[^/]+)",
                args=CRLArgs,
                operations={
                    Operation.UPDATE: self.write,
                    Operation.READ: self.read,
                    Operation.DELETE: self.delete,
                },
                synopsis="Manage a certificate revocation list.",
                description=__doc__ or "",
            ),
        ]

    async def list_crls(self, request: Request, args: NoArgs) -> Response | None:
        keys = await storage_of(request).list(CRL_PREFIX)
        return Response(data={"keys": keys}) if keys else None

    async def write(self, request: Request, args: CRLArgs) -> None:
        name = _crl_name(args.name)
        if not args.crl:
            if args.url:
                raise InvalidRequest(
                    "url: fetching CRLs from a distribution point is not "
                    "supported; provide the CRL in 'crl'"
                )
            raise InvalidRequest("missing crl")
        parsed = _parse(args.crl)
        await put_json(storage_of(request), CRL_PREFIX + name, {"crl": args.crl})
        self.crls.set(name, parsed)

    async def read(self, request: Request, args: CRLArgs) -> Response | None:
        name = _crl_name(args.name)
        record = await get_json(storage_of(request), CRL_PREFIX + name)
        if record is None:
            return None
        crl = _parse(record["crl"])
        return Response(data={"serials": {str(entry.serial_number): {} for entry in crl}})

    async def delete(self, request: Request, args: CRLArgs) -> None:
        name = _crl_name(args.name)
        await storage_of(request).delete(CRL_PREFIX + name)
        self.crls.remove(name)
