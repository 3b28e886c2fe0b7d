"""What every certificate-producing path shares: validity windows, AIA URLs and templating,
signing with an issuer, and Vault's response shapes (pem / der / pem_bundle).
"""

from __future__ import annotations

import base64
import datetime
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from strongroom.engines.pki._build import Template, build_certificate
from strongroom.engines.pki._crypto import (
    PrivateKey,
    PublicKey,
    cert_der,
    cert_pem,
    encode_private_key,
    format_serial,
    key_type_of,
    new_serial,
)
from strongroom.engines.pki._store import IssuerRecord, PKIStore
from strongroom.errors import InvalidRequest

__all__ = ["Issuing", "SignedCert", "parse_not_after"]

_FORMATS = ("pem", "der", "pem_bundle")


def parse_not_after(text: str) -> datetime.datetime:
    """Vault's ``not_after``: ``YYYY-MM-ddTHH:MM:SSZ`` (UTC)."""
    try:
        value = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        raise InvalidRequest(
            "not_after: expected a UTC time in the format YYYY-MM-ddTHH:MM:SSZ"
        ) from None
    return value.replace(tzinfo=datetime.UTC)


def check_format(fmt: str, private_key_format: str = "") -> None:
    if fmt not in _FORMATS:
        raise InvalidRequest(f'unknown format "{fmt}": expected pem, der or pem_bundle')
    if private_key_format not in ("", "der", "pem", "pkcs8"):
        raise InvalidRequest(
            f'unknown private_key_format "{private_key_format}": expected der, pem or pkcs8'
        )


@dataclass(frozen=True, slots=True)
class SignedCert:
    cert: x509.Certificate
    serial: str
    warnings: tuple[str, ...] = ()


class Issuing:
    """Signing and response shaping over one mount's store."""

    def __init__(self, store: PKIStore) -> None:
        self.store = store

    def now(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(int(self.store.system.now()), datetime.UTC)

    # -- validity ------------------------------------------------------------------------

    def validity(
        self,
        *,
        ttl: int,
        not_after: str,
        role_ttl: int,
        role_max_ttl: int,
        not_before_duration: int,
        issuer: IssuerRecord | None,
        warnings: list[str],
    ) -> tuple[datetime.datetime, datetime.datetime]:
        """(not_before, not_after) as Vault computes them, including leaf_not_after_behavior."""
        now = self.now()
        system = self.store.system
        max_ttl = role_max_ttl or system.max_lease_ttl()
        if not_after:
            end = parse_not_after(not_after)
        else:
            requested = ttl or role_ttl or system.default_lease_ttl()
            if requested > max_ttl:
                warnings.append(
                    f"TTL {requested}s is longer than permitted maxTTL {max_ttl}s, "
                    "so maxTTL is being used"
                )
                requested = max_ttl
            end = now + datetime.timedelta(seconds=requested)
        if issuer is not None:
            ca_end = self.store.cert(issuer.certificate).not_valid_after_utc
            if end > ca_end:
                behavior = issuer.leaf_not_after_behavior
                if behavior == "truncate":
                    end = ca_end
                elif behavior != "permit":
                    raise InvalidRequest(
                        "cannot satisfy request, as TTL would result in notAfter of "
                        f"{end.strftime('%Y-%m-%dT%H:%M:%SZ')} that is beyond the expiration "
                        f"of the CA certificate at {ca_end.strftime('%Y-%m-%dT%H:%M:%SZ')}"
                    )
        start = now - datetime.timedelta(seconds=not_before_duration)
        if end <= start:
            raise InvalidRequest("the requested validity period is empty")
        return start, end

    # -- AIA URLs ------------------------------------------------------------------------

    async def aia(self, issuer: IssuerRecord | None) -> dict[str, list[str]]:
        """The issuer's own URLs if it has any, else ``config/urls``; templated."""
        if issuer is not None and (
            issuer.issuing_certificates or issuer.crl_distribution_points or issuer.ocsp_servers
        ):
            urls = {
                "issuing_certificates": list(issuer.issuing_certificates),
                "crl_distribution_points": list(issuer.crl_distribution_points),
                "ocsp_servers": list(issuer.ocsp_servers),
            }
            templating = issuer.enable_aia_url_templating
        else:
            config = await self.store.config("urls")
            urls = {
                name: list(config.get(name) or [])
                for name in ("issuing_certificates", "crl_distribution_points", "ocsp_servers")
            }
            templating = bool(config.get("enable_templating", False))
        if templating:
            cluster = await self.store.config("cluster")
            values = {
                "{{issuer_id}}": issuer.id if issuer is not None else "",
                "{{cluster_path}}": str(cluster.get("path", "")),
                "{{cluster_aia_path}}": str(cluster.get("aia_path", "")),
            }
            for name, items in urls.items():
                rendered = []
                for url in items:
                    for placeholder, value in values.items():
                        if placeholder in url:
                            if not value:
                                raise InvalidRequest(
                                    f"unable to template AIA URL {url}: {placeholder} is not set"
                                )
                            url = url.replace(placeholder, value)
                    rendered.append(url)
                urls[name] = rendered
        return urls

    # -- signing -------------------------------------------------------------------------

    async def sign(
        self,
        template: Template,
        public_key: PublicKey,
        issuer: IssuerRecord | None,
        signing_key: PrivateKey,
        *,
        store: bool = True,
    ) -> SignedCert:
        """Sign with ``issuer`` (or self-sign when ``None``) and keep the certificate in
        ``certs/`` unless ``store`` is False."""
        if issuer is not None:
            if issuer.revoked:
                raise InvalidRequest(f"issuer {issuer.name or issuer.id} has been revoked")
            if "issuing-certificates" not in issuer.usage:
                raise InvalidRequest(
                    f"issuer {issuer.name or issuer.id} is not allowed to issue certificates "
                    "(usage lacks issuing-certificates)"
                )
            urls = await self.aia(issuer)
            template.issuing_certificates = urls["issuing_certificates"]
            template.crl_distribution_points = urls["crl_distribution_points"]
            template.ocsp_servers = urls["ocsp_servers"]
        if not template.serial:
            template.serial = new_serial()
        issuer_cert = self.store.cert(issuer.certificate) if issuer is not None else None
        cert = build_certificate(template, public_key, signing_key, issuer_cert)
        serial = format_serial(cert.serial_number)
        if store:
            await self.store.put_cert(serial, cert_der(cert))
        return SignedCert(cert, serial)

    async def issuer_key(self, issuer: IssuerRecord) -> PrivateKey:
        if not issuer.key_id:
            raise InvalidRequest(
                f"issuer {issuer.name or issuer.id} has no private key and cannot sign"
            )
        record = await self.store.key(issuer.key_id)
        if record is None:
            raise InvalidRequest(f"the key of issuer {issuer.name or issuer.id} is missing")
        return self.store.private_key(record)

    # -- responses -----------------------------------------------------------------------

    async def cert_response(
        self,
        signed: SignedCert,
        issuer: IssuerRecord | None,
        *,
        fmt: str,
        private_key: PrivateKey | None = None,
        private_key_format: str = "",
        remove_roots_from_chain: bool = False,
        include_chain: bool = True,
    ) -> dict[str, Any]:
        """Vault's issue/sign answer: certificate, issuing_ca, ca_chain, serial_number,
        expiration (and private_key, private_key_type when the key was made here)."""
        cert = signed.cert
        chain_pems = await self.store.chain(issuer) if issuer is not None else []
        chain = [self.store.cert(pem) for pem in chain_pems]
        if remove_roots_from_chain:
            chain = [c for c in chain if c.subject != c.issuer]
        issuing = self.store.cert(issuer.certificate) if issuer is not None else None
        data: dict[str, Any] = {
            "serial_number": signed.serial,
            "expiration": int(cert.not_valid_after_utc.timestamp()),
        }
        if fmt == "der":
            data["certificate"] = base64.b64encode(cert_der(cert)).decode()
            data["issuing_ca"] = base64.b64encode(cert_der(issuing)).decode() if issuing else ""
            if include_chain:
                data["ca_chain"] = [base64.b64encode(cert_der(c)).decode() for c in chain]
        else:
            data["certificate"] = cert_pem(cert)
            data["issuing_ca"] = cert_pem(issuing) if issuing else ""
            if include_chain:
                data["ca_chain"] = [cert_pem(c) for c in chain]
        if private_key is not None:
            data["private_key"] = encode_private_key(private_key, fmt, private_key_format)
            data["private_key_type"] = key_type_of(private_key)
        if fmt == "pem_bundle":
            parts = []
            if private_key is not None:
                parts.append(data["private_key"])
            parts.append(data["certificate"])
            if issuing is not None and issuing.subject != issuing.issuer:
                parts.extend(cert_pem(c) for c in chain)
            data["certificate"] = "\n".join(parts)
        return data


def is_self_signed(cert: x509.Certificate) -> bool:
    return cert.subject == cert.issuer


def serial_of(cert: x509.Certificate) -> str:
    return format_serial(cert.serial_number)
