"""The OCSP responder (RFC 6960): ``GET ocsp/<base64 request>`` and ``POST ocsp`` with an
``application/ocsp-request`` body, unauthenticated as in Vault. Answers are signed by the
issuer named in the request (matched by its name and key hashes), say good / revoked /
unknown, and echo the request's nonce."""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
from dataclasses import dataclass
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from strongroom.engines.pki._crl import crl_config, seconds
from strongroom.engines.pki._crypto import format_serial, signature_hash
from strongroom.engines.pki._store import IssuerRecord, PKIStore
from strongroom.framework import Path, remember
from strongroom.logical import Operation, Request, Response

__all__ = ["OCSPPaths", "spki_key_bytes"]

OCSP_RESPONSE = "application/ocsp-response"


@dataclass(frozen=True, slots=True)
class OCSPArgs:
    req: str = ""
    http_raw_body: str = ""


def _der_tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER TLV at ``pos``."""
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    return tag, pos, pos + length


def spki_key_bytes(cert: x509.Certificate) -> bytes:
    """The subjectPublicKey BIT STRING's bytes (what OCSP's issuerKeyHash hashes)."""
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _, start, _ = _der_tlv(spki, 0)  # SubjectPublicKeyInfo SEQUENCE
    _, _, alg_end = _der_tlv(spki, start)  # AlgorithmIdentifier
    _, bits_start, bits_end = _der_tlv(spki, alg_end)  # BIT STRING
    return spki[bits_start + 1 : bits_end]  # skip the unused-bits octet


_HASHES = {
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}


class OCSPPaths:
    def __init__(self, store: PKIStore) -> None:
        self.store = store
        # (issuer PEM, hash name) → (issuer name hash, issuer key hash)
        self._hashes: dict[tuple[str, str], tuple[bytes, bytes]] = {}

    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=r"ocsp(?:/(?P<req>.+))?",
                args=OCSPArgs,
                operations={Operation.READ: self.get, Operation.UPDATE: self.post},
                synopsis="OCSP responder (RFC 6960)",
            ),
        ]

    async def get(self, request: Request, args: OCSPArgs) -> Response:
        try:
            der = base64.b64decode(unquote(args.req), validate=False)
        except (binascii.Error, ValueError):
            return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        return await self.answer(der)

    async def post(self, request: Request, args: OCSPArgs) -> Response:
        try:
            der = base64.b64decode(args.http_raw_body)
        except (binascii.Error, ValueError):
            return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        return await self.answer(der)

    async def _issuer_for(self, req: ocsp.OCSPRequest) -> IssuerRecord | None:
        digest = _HASHES.get(req.hash_algorithm.name)
        if digest is None:
            return None
        for issuer in await self.store.issuers():
            memo_key = (issuer.certificate, req.hash_algorithm.name)
            hashes_of = self._hashes.get(memo_key)
            if hashes_of is None:
                cert = self.store.cert(issuer.certificate)
                hashes_of = remember(
                    self._hashes,
                    memo_key,
                    (
                        digest(cert.subject.public_bytes()).digest(),
                        digest(spki_key_bytes(cert)).digest(),
                    ),
                    1024,
                )
            if hashes_of == (req.issuer_name_hash, req.issuer_key_hash):
                return issuer
        return None

    async def answer(self, der: bytes) -> Response:
        try:
            req = ocsp.load_der_ocsp_request(der)
        except ValueError:
            return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        config = await crl_config(self.store)
        if config["ocsp_disable"]:
            return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        issuer = await self._issuer_for(req)
        if issuer is None or not issuer.key_id or "ocsp-signing" not in issuer.usage:
            return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        key_record = await self.store.key(issuer.key_id)
        if key_record is None:
            return _unsuccessful(ocsp.OCSPResponseStatus.INTERNAL_ERROR)
        key = self.store.private_key(key_record)
        issuer_cert = self.store.cert(issuer.certificate)
        serial = format_serial(req.serial_number)
        revoked = await self.store.revoked(serial)
        revocation_time: datetime.datetime | None = None
        if revoked is not None and revoked.issuer_id == issuer.id:
            status = ocsp.OCSPCertStatus.REVOKED
            revocation_time = datetime.datetime.fromtimestamp(
                int(revoked.revocation_time), datetime.UTC
            )
        elif await self.store.cert_der(serial) is not None:
            status = ocsp.OCSPCertStatus.GOOD
        else:
            status = ocsp.OCSPCertStatus.UNKNOWN
        now = datetime.datetime.fromtimestamp(int(self.store.system.now()), datetime.UTC)
        algorithm = req.hash_algorithm
        if not isinstance(algorithm, hashes.SHA1 | hashes.SHA256 | hashes.SHA384 | hashes.SHA512):
            return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            issuer_name_hash=req.issuer_name_hash,
            issuer_key_hash=req.issuer_key_hash,
            serial_number=req.serial_number,
            algorithm=algorithm,
            cert_status=status,
            this_update=now,
            next_update=now + datetime.timedelta(seconds=seconds(config, "ocsp_expiry")),
            revocation_time=revocation_time,
            revocation_reason=None,
        )
        builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, issuer_cert)
        for extension in req.extensions:
            if isinstance(extension.value, x509.OCSPNonce):
                builder = builder.add_extension(extension.value, critical=False)
        response = builder.sign(key, signature_hash(key))
        return Response(
            raw_body=response.public_bytes(serialization.Encoding.DER),
            content_type=OCSP_RESPONSE,
        )


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> Response:
    response = ocsp.OCSPResponseBuilder.build_unsuccessful(status)
    return Response(
        raw_body=response.public_bytes(serialization.Encoding.DER),
        content_type=OCSP_RESPONSE,
        status=400
        if status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
        else 401
        if status is ocsp.OCSPResponseStatus.UNAUTHORIZED
        else 500,
    )
