"""TCP listeners on uvicorn: TLS contexts and a protocol that hands the verified client
certificate to the app (the ASGI TLS extension) and bounds slow clients.

Why uvicorn: neither uvicorn 0.54 nor granian 2.8 passes the client certificate to the app
out of the box, but uvicorn accepts a protocol class, so a small subclass can.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from strongroom.http import BODY_COMPLETE

__all__ = ["HEADER_TIMEOUT", "StrongroomProtocol", "make_ssl_context", "protocol_class"]

log = logging.getLogger("strongroom.listener")

HEADER_TIMEOUT = 10.0  # seconds to receive a request's headers (Vault's read-header timeout)

# TLS 1.2 suites: ECDHE key exchange with AEAD ciphers only. TLS 1.3 suites are all AEAD.
_TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5:!SHA1:!CBC"
_TLS_VERSIONS = {"tls12": ssl.TLSVersion.TLSv1_2, "tls13": ssl.TLSVersion.TLSv1_3}


def make_ssl_context(
    cert_file: str,
    key_file: str,
    *,
    client_ca_file: str = "",
    require_client_cert: bool = False,
    disable_client_certs: bool = False,
    min_version: str = "tls12",
    max_version: str = "tls13",
) -> ssl.SSLContext:
    """A server context: TLS 1.2+ and AEAD only.

    With a client CA file, a client certificate is requested and verified (required only
    with ``require_client_cert``). Without one, Python's ssl module cannot request a
    certificate it would not verify, so none is requested (see docs/architecture.md);
    ``disable_client_certs`` (Vault's ``tls_disable_client_certs``) never requests one.

    Raises:
        ValueError: an unknown TLS version, or a required client certificate without a CA
            file (or with client certificates disabled).
        OSError, ssl.SSLError: a certificate, key or CA file cannot be loaded.
    """
    if min_version not in _TLS_VERSIONS or max_version not in _TLS_VERSIONS:
        raise ValueError('TLS versions must be "tls12" or "tls13"')
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # TLS 1.0 and 1.1 are never offered (RFC 8996), whatever the configuration says
    context.minimum_version = _TLS_VERSIONS[min_version]
    context.maximum_version = _TLS_VERSIONS[max_version]
    context.set_ciphers(_TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    context.load_cert_chain(cert_file, key_file)
    if require_client_cert and (disable_client_certs or not client_ca_file):
        raise ValueError("tls_require_and_verify_client_cert needs tls_client_ca_file")
    if client_ca_file and not disable_client_certs:
        context.load_verify_locations(cafile=client_ca_file)
        context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    return context


def protocol_class(header_timeout: float = HEADER_TIMEOUT) -> type[StrongroomProtocol]:
    """The protocol class for one listener: uvicorn builds protocols from a class, so a
    listener's settings are class attributes of a subclass. ``0`` disables the deadline."""
    if header_timeout == StrongroomProtocol.header_timeout:
        return StrongroomProtocol
    return type("StrongroomProtocol", (StrongroomProtocol,), {"header_timeout": header_timeout})


_LIST = b"LIST "
_MAX_REQUEST_LINE = 16 * 1024


class StrongroomProtocol(HttpToolsProtocol):
    """Adds the peer certificate to every request scope, a header-read deadline, and
    Vault's ``LIST`` verb.

    httptools (llhttp) refuses methods it does not know, and ``LIST`` is not one of them.
    A request line ``LIST /v1/x HTTP/1.1`` is rewritten, before the parser sees it, to
    ``GET /v1/x?list=true HTTP/1.1``, which the app already treats as a list. Only the
    first request of a data chunk is rewritten: clients do not pipeline, and a pipelined
    LIST fails closed (400), never as another operation.
    """

    header_timeout: float = HEADER_TIMEOUT  # seconds; 0: no deadline
    _tls_ext: dict[str, Any] | None = None
    _header_timer: asyncio.TimerHandle | None = None
    _at_message_start = True
    _pending = b""

    def data_received(self, data: bytes) -> None:
        if self._at_message_start:
            if self._pending:
                data, self._pending = self._pending + data, b""
            if data[:5] == _LIST or (len(data) < 5 and _LIST.startswith(data)):
                end = data.find(b"\r\n")
                if end < 0:
                    if len(data) > _MAX_REQUEST_LINE:
                        self.transport.close()
                        return
                    self._pending = data  # wait for the whole request line
                    if self._header_timer is None:  # a kept-alive connection's next request
                        self._arm_header_timer()
                    return
                parts = data[:end].split(b" ")
                if len(parts) == 3:
                    target = parts[1] + (b"&list=true" if b"?" in parts[1] else b"?list=true")
                    data = b"GET " + target + b" " + parts[2] + data[end:]
        super().data_received(data)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            der = ssl_object.getpeercert(binary_form=True)
            self._tls_ext = {
                "client_cert_der": der,
                "client_chain_der": [der] if der else [],
                "tls_version": ssl_object.version(),
                "cipher_suite": (ssl_object.cipher() or ("",))[0],
            }
        self._arm_header_timer()

    def _arm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        if self.header_timeout > 0:
            self._header_timer = self.loop.call_later(self.header_timeout, self._header_timeout)

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def on_message_begin(self) -> None:
        self._at_message_start = False
        super().on_message_begin()
        if self._header_timer is None:
            self._arm_header_timer()
        if self._tls_ext is not None:
            extensions: dict[str, Any] = {"tls": self._tls_ext}
            self.scope["extensions"] = extensions

    def on_message_complete(self) -> None:
        # The whole body is in the cycle's buffer before the app first runs: the app may
        # read it without arming its body timeout (see http.requests.read_body).
        self.scope[BODY_COMPLETE] = True  # type: ignore[literal-required]
        super().on_message_complete()
        self._at_message_start = True

    def on_headers_complete(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().connection_lost(exc)
