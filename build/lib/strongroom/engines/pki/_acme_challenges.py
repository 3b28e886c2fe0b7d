"""Validating ACME challenges: http-01 (RFC 8555 §8.3) and tls-alpn-01 (RFC 8737), for DNS
and IP identifiers (RFC 8738). Each check returns ``None`` on success or a short reason.

Vault validates on ports 80 and 443; a mount may move them (options ``acme_http01_port``,
``acme_tls_alpn01_port``) so that tests and unprivileged setups can answer challenges.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import ssl

import dns.asyncresolver
import dns.exception
import httpx
from cryptography import x509

__all__ = ["check_dns01", "check_http01", "check_tls_alpn01", "parse_resolver"]

_ACME_IDENTIFIER_OID = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31")
_TIMEOUT = 10.0
_MAX_BODY = 4096


def _host(value: str) -> str:
    try:
        if ipaddress.ip_address(value).version == 6:
            return f"[{value}]"
    except ValueError:
        pass
    return value


async def check_http01(
    identifier: str, token: str, key_authorization: str, port: int
) -> str | None:
    url = f"http://{_host(identifier)}:{port}/.well-known/acme-challenge/{token}"
    try:
        async with (
            httpx.AsyncClient(timeout=_TIMEOUT, follow_redirects=False, trust_env=False) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                return f"the challenge URL answered HTTP {response.status_code}"
            body = b""
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > _MAX_BODY:
                    return "the challenge response is too large"
    except httpx.HTTPError as exc:
        return f"could not fetch the challenge URL: {type(exc).__name__}"
    if body.strip() != key_authorization.encode():
        return "the challenge response does not match the key authorization"
    return None


def _reverse_name(ip: str) -> str:
    return ipaddress.ip_address(ip).reverse_pointer


async def check_tls_alpn01(
    identifier: str, is_ip: bool, key_authorization: str, port: int
) -> str | None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the challenge certificate is self-signed on purpose
    context.set_alpn_protocols(["acme-tls/1"])
    server_name = _reverse_name(identifier) if is_ip else identifier
    try:
        async with asyncio.timeout(_TIMEOUT):
            _, writer = await asyncio.open_connection(
                identifier, port, ssl=context, server_hostname=server_name
            )
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        return f"TLS connection failed: {type(exc).__name__}"
    try:
        tls = writer.get_extra_info("ssl_object")
        if tls is None or tls.selected_alpn_protocol() != "acme-tls/1":
            return "the server did not negotiate the acme-tls/1 protocol"
        der = tls.getpeercert(binary_form=True)
    finally:
        writer.close()
    if not der:
        return "the server presented no certificate"
    try:
        cert = x509.load_der_x509_certificate(der)
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        extension = cert.extensions.get_extension_for_oid(_ACME_IDENTIFIER_OID)
    except (ValueError, x509.ExtensionNotFound):
        return "the challenge certificate lacks the subjectAltName or acmeIdentifier extension"
    names = (
        [str(v) for v in sans.get_values_for_type(x509.IPAddress)]
        if is_ip
        else list(sans.get_values_for_type(x509.DNSName))
    )
    if names != [identifier] or len(list(sans)) != 1:
        return "the challenge certificate must name exactly the identifier"
    if not extension.critical:
        return "the acmeIdentifier extension must be critical"
    expected = b"\x04\x20" + hashlib.sha256(key_authorization.encode()).digest()
    value = extension.value
    raw = value.value if isinstance(value, x509.UnrecognizedExtension) else b""
    if raw != expected:
        return "the acmeIdentifier digest does not match the key authorization"
    return None


def parse_resolver(text: str) -> tuple[str, int]:
    """``config/acme``'s ``dns_resolver``: ``host``, ``host:port`` or ``[v6]:port``."""
    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            port = int(rest.lstrip(":"))
    elif text.count(":") == 1:
        host, _, raw = text.partition(":")
        port = int(raw)
    ipaddress.ip_address(host)  # ValueError for a name: the resolver must be an address
    if not 0 < port < 65536:
        raise ValueError("port out of range")
    return host, port


async def check_dns01(identifier: str, key_authorization: str, resolver: str) -> str | None:
    """A TXT record at ``_acme-challenge.<identifier>`` holding base64url(SHA-256(key
    authorization)) (RFC 8555 §8.4), asked of ``resolver`` or the system's resolvers."""
    import base64

    expected = (
        base64.urlsafe_b64encode(hashlib.sha256(key_authorization.encode()).digest())
        .rstrip(b"=")
        .decode()
    )
    client = dns.asyncresolver.Resolver(configure=not resolver)
    if resolver:
        host, port = parse_resolver(resolver)
        client.nameservers = [host]
        client.port = port
    client.lifetime = _TIMEOUT
    name = f"_acme-challenge.{identifier}"
    try:
        answer = await client.resolve(name, "TXT")
    except dns.exception.DNSException as exc:
        return f"no TXT record at {name}: {type(exc).__name__}"
    values = [b"".join(rdata.strings).decode(errors="replace") for rdata in answer]
    if expected not in values:
        return f"no TXT record at {name} matches the key authorization"
    return None
