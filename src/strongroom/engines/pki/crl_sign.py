"""``issuer/:ref/resign-crls`` (combine CRLs one issuer signed into one, re-signed) and
``issuer/:ref/sign-revocation-list`` (sign a CRL built from a given list of revocations).

Both sign with the issuer's key under the caller's ``crl_number`` (and a delta CRL
indicator when ``delta_crl_base_number`` is given), store nothing, and answer ``crl`` as PEM
or, with ``format=der``, base64 DER (Vault's shapes). The issuer must have ``crl-signing``
usage; every CRL given to resign-crls must verify against the issuer's public key.
"""

from __future__ import annotations

import base64
import binascii
import datetime
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from strongroom.engines.pki._crypto import sign_padding, signature_hash
from strongroom.engines.pki._store import IssuerRecord, PKIStore
from strongroom.errors import InvalidRequest
from strongroom.framework import Duration, Path
from strongroom.logical import Operation, Request, Response

__all__ = ["CRLSignPaths"]

_MAX_ENTRIES = 100_000
# extensions the signer sets itself: a caller may not supply them
_RESERVED = frozenset(
    {
        x509.oid.ExtensionOID.CRL_NUMBER.dotted_string,
        x509.oid.ExtensionOID.DELTA_CRL_INDICATOR.dotted_string,
        x509.oid.ExtensionOID.AUTHORITY_KEY_IDENTIFIER.dotted_string,
        x509.oid.ExtensionOID.ISSUING_DISTRIBUTION_POINT.dotted_string,
    }
)


@dataclass(frozen=True, slots=True)
class ResignArgs:
    issuer_ref: str
    crl_number: int = 0
    next_update: Duration = Duration(72 * 3600)
    format: str = "pem"
    delta_crl_base_number: int = -1
    crls: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SignListArgs:
    issuer_ref: str
    crl_number: int = 0
    next_update: Duration = Duration(72 * 3600)
    format: str = "pem"
    delta_crl_base_number: int = -1
    revoked_certs: Any = None  # a list of {serial_number, revocation_time, extensions}
    extensions: Any = None  # a list of {id, critical, value}


def _serial(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    text = str(value).strip()
    try:
        if ":" in text or "-" in text:
            return int(text.replace(":", "").replace("-", ""), 16)
        return int(text, 10)
    except ValueError:
        raise InvalidRequest(f"invalid serial_number {text[:64]!r}") from None


def _time(value: Any) -> datetime.datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.datetime.fromtimestamp(int(value), datetime.UTC)
    text = str(value).strip()
    if text.isdigit():
        return datetime.datetime.fromtimestamp(int(text), datetime.UTC)
    try:
        parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(f"invalid revocation_time {text[:64]!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def _extensions(raw: Any, what: str) -> list[tuple[x509.ExtensionType, bool]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidRequest(f"{what}: extensions must be a list")
    out: list[tuple[x509.ExtensionType, bool]] = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise InvalidRequest(f"{what}: each extension needs id, critical and value")
        oid = item["id"]
        if oid in _RESERVED:
            raise InvalidRequest(f"{what}: extension {oid} is set by the signer")
        try:
            value = base64.b64decode(str(item.get("value", "")), validate=True)
            ext = x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), value)
        except (binascii.Error, ValueError):
            raise InvalidRequest(f"{what}: extension {oid[:40]}: bad id or base64 value") from None
        out.append((ext, bool(item.get("critical", False))))
    return out


class CRLSignPaths:
    def __init__(self, store: PKIStore) -> None:
        self.store = store

    def paths(self) -> list[Path]:
        ref = r"issuer/(?P<issuer_ref>[^/]+)/"
        return [
            Path(
                pattern=rf"{ref}resign-crls",
                args=ResignArgs,
                operations={Operation.UPDATE: self.resign},
                synopsis="Combine CRLs this issuer signed into one, signed anew",
            ),
            Path(
                pattern=rf"{ref}sign-revocation-list",
                args=SignListArgs,
                operations={Operation.UPDATE: self.sign_list},
                synopsis="Sign a CRL made of the given revocations",
            ),
        ]

    async def resign(self, request: Request, args: ResignArgs) -> Response:
        issuer, issuer_cert = await self._issuer(args.issuer_ref)
        _check_common(args.crl_number, args.format)
        public = issuer_cert.public_key()
        revoked: dict[int, x509.RevokedCertificate] = {}
        for index, pem in enumerate(args.crls):
            try:
                crl = x509.load_pem_x509_crl(str(pem).encode())
            except ValueError:
                raise InvalidRequest(f"crls[{index}]: not a PEM CRL") from None
            try:
                valid = crl.is_signature_valid(public)  # type: ignore[arg-type]
            except (InvalidSignature, TypeError, ValueError):
                valid = False
            if not valid or crl.issuer != issuer_cert.subject:
                raise InvalidRequest(f"crls[{index}] was not signed by issuer {issuer.id}")
            for entry in crl:
                old = revoked.get(entry.serial_number)
                if old is None or entry.revocation_date_utc < old.revocation_date_utc:
                    revoked[entry.serial_number] = entry
            if len(revoked) > _MAX_ENTRIES:
                raise InvalidRequest(f"more than {_MAX_ENTRIES} revoked certificates")
        entries = [revoked[serial] for serial in sorted(revoked)]
        return await self._sign(issuer, issuer_cert, entries, [], args)

    async def sign_list(self, request: Request, args: SignListArgs) -> Response:
        issuer, issuer_cert = await self._issuer(args.issuer_ref)
        _check_common(args.crl_number, args.format)
        listed = args.revoked_certs or []
        if not isinstance(listed, list):
            raise InvalidRequest("'revoked_certs' must be a list")
        if len(listed) > _MAX_ENTRIES:
            raise InvalidRequest(f"more than {_MAX_ENTRIES} revoked certificates")
        entries = []
        for item in listed:
            if not isinstance(item, dict) or "serial_number" not in item:
                raise InvalidRequest("each revoked_certs entry needs serial_number")
            builder = (
                x509.RevokedCertificateBuilder()
                .serial_number(_serial(item["serial_number"]))
                .revocation_date(_time(item.get("revocation_time", 0)))
            )
            for ext, critical in _extensions(item.get("extensions") or [], "revoked_certs"):
                builder = builder.add_extension(ext, critical)
            entries.append(builder.build())
        extensions = _extensions(args.extensions, "extensions")
        return await self._sign(issuer, issuer_cert, entries, extensions, args)

    async def _issuer(self, ref: str) -> tuple[IssuerRecord, x509.Certificate]:
        issuer = await self.store.resolve_issuer(ref)
        if "crl-signing" not in issuer.usage:
            raise InvalidRequest(f"issuer {issuer.id} does not have crl-signing usage")
        return issuer, self.store.cert(issuer.certificate)

    async def _sign(
        self,
        issuer: IssuerRecord,
        issuer_cert: x509.Certificate,
        entries: list[x509.RevokedCertificate],
        extensions: list[tuple[x509.ExtensionType, bool]],
        args: ResignArgs | SignListArgs,
    ) -> Response:
        key_record = await self.store.key(issuer.key_id)
        if key_record is None:
            raise InvalidRequest(f"the key of issuer {issuer.id} is missing")
        key = self.store.private_key(key_record)
        now = datetime.datetime.fromtimestamp(int(self.store.system.now()), datetime.UTC)
        builder = (
            x509.CertificateRevocationListBuilder(revoked_certificates=entries)
            .issuer_name(issuer_cert.subject)
            .last_update(now)
            .next_update(now + datetime.timedelta(seconds=args.next_update))
            .add_extension(x509.CRLNumber(args.crl_number), critical=False)
        )
        try:
            ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
            )
        except x509.ExtensionNotFound:
            pass
        if args.delta_crl_base_number >= 0:
            builder = builder.add_extension(
                x509.DeltaCRLIndicator(args.delta_crl_base_number), critical=True
            )
        for ext, critical in extensions:
            builder = builder.add_extension(ext, critical)
        use_pss = issuer.revocation_signature_algorithm.endswith("PSS")
        crl = builder.sign(
            key,
            signature_hash(key),  # type: ignore[arg-type]
            rsa_padding=sign_padding(key, use_pss),  # type: ignore[arg-type]
        )
        if args.format == "der":
            encoded = base64.b64encode(crl.public_bytes(serialization.Encoding.DER)).decode()
        else:
            encoded = crl.public_bytes(serialization.Encoding.PEM).decode().strip()
        return Response(data={"crl": encoded})


def _check_common(crl_number: int, fmt: str) -> None:
    if crl_number < 0:
        raise InvalidRequest("'crl_number' must be a positive integer")
    if fmt not in ("pem", "der"):
        raise InvalidRequest("'format' must be pem or der")
