"""TCP listeners on uvicorn: TLS contexts and a protocol that hands the verified client
certificate to the app (the ASGI TLS extension) and bounds slow clients.

Why uvicorn: neither uvicorn 0.54 nor granian 2.8 passes the client certificate to the app
out of the box, but uvicorn accepts a protocol class, so a small subclass can.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from strongroom.http import BODY_COMPLETE

__all__ = [
    "HEADER_TIMEOUT",
    "HeadLimits",
    "StrongroomProtocol",
    "make_ssl_context",
    "protocol_class",
]

log = logging.getLogger("strongroom.listener")

HEADER_TIMEOUT = 10.0  # seconds to receive a request's headers (Vault's read-header timeout)
MAX_HEADER_BYTES = 1 << 20  # Go's http.DefaultMaxHeaderBytes, which Vault keeps
MAX_HEADER_COUNT = 100  # Apache's LimitRequestFields; Vault clients send about ten
MAX_REQUEST_LINE = 64 * 1024  # method, target and version

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


@dataclass(frozen=True, slots=True)
class HeadLimits:
    """What a listener accepts before a request's head (request line and header fields) is
    complete. ``timeout`` 0: no deadline; the sizes are bytes and always apply."""

    timeout: float = HEADER_TIMEOUT
    max_header_bytes: int = MAX_HEADER_BYTES  # the header fields, line ends included
    max_header_count: int = MAX_HEADER_COUNT
    max_request_line: int = MAX_REQUEST_LINE
    write_timeout: float = 0.0  # headers in → response out (Go's WriteTimeout); 0: none


def protocol_class(limits: HeadLimits | None = None) -> type[StrongroomProtocol]:
    """The protocol class for one listener: uvicorn builds protocols from a class, so a
    listener's settings are class attributes of a subclass."""
    if limits is None or limits == StrongroomProtocol.limits:
        return StrongroomProtocol
    return type("StrongroomProtocol", (StrongroomProtocol,), {"limits": limits})


_LIST = b"LIST "
_HEAD_END = b"\r\n\r\n"
_LINGER = 1.0  # seconds a refused connection is drained (unread) so its client sees the answer
_LINGER_BYTES = 8 << 20  # ... or until this much was dropped, whichever comes first


def _refusal(status: int, phrase: bytes, message: str) -> bytes:
    body = json.dumps({"errors": [message]}).encode()
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
        b"connection: close\r\n\r\n%s" % (status, phrase, len(body), body)
    )


_TOO_LARGE = _refusal(431, b"Request Header Fields Too Large", "request header fields too large")
_TOO_MANY = _refusal(431, b"Request Header Fields Too Large", "too many request header fields")
_URI_TOO_LONG = _refusal(414, b"URI Too Long", "request line too long")


def _rewrite_list(data: bytes) -> bytes:
    end = data.find(b"\r\n")
    parts = data[:end].split(b" ")
    if len(parts) != 3:
        return data
    target = parts[1] + (b"&list=true" if b"?" in parts[1] else b"?list=true")
    return b"GET " + target + b" " + parts[2] + data[end:]


class StrongroomProtocol(HttpToolsProtocol):
    """Adds the peer certificate to every request scope, bounds a request's head in time
    and size, and accepts Vault's ``LIST`` verb.

    **The head is collected here, not in the parser.** httptools concatenates a header
    value or URL that arrives in pieces into a new ``bytes`` each time (quadratic), and
    keeps whatever it is sent. So, at the start of each request, the bytes are kept in one
    ``bytearray`` (linear) and scanned only where new, with C-speed ``find``/``count``,
    until the blank line that ends the head arrives; only then is the head handed to the
    parser, in one piece. A client that sends more than ``max_request_line`` bytes without
    ending its request line gets 414, one whose header fields exceed ``max_header_bytes``
    bytes or ``max_header_count`` lines gets 431 (Go's answer, which Vault gives), and the
    connection is drained for a second without reading into memory, then closed. A slow
    client costs one scan of the bytes it sends and is cut at the header deadline. A
    pipelined request that starts inside an earlier request's data is fed to the parser as
    it comes, but its bytes are still counted against the same bounds.

    httptools (llhttp) refuses methods it does not know, and ``LIST`` is not one of them.
    A request line ``LIST /v1/x HTTP/1.1`` is rewritten, before the parser sees it, to
    ``GET /v1/x?list=true HTTP/1.1``, which the app already treats as a list. Only a head
    collected here is rewritten: a pipelined LIST fails closed (400), never as another
    operation.
    """

    limits: HeadLimits = HeadLimits()
    _tls_ext: dict[str, Any] | None = None
    _header_timer: asyncio.TimerHandle | None = None
    _write_timer: asyncio.TimerHandle | None = None
    _at_message_start = True  # the parser holds no part of the next request
    _in_parser_head = False  # the parser is inside a (pipelined) request's head
    _refused = False
    _head: bytearray | None = None  # the head collected so far, while incomplete
    _line_len = -1  # the request line's length with its "\n", once seen
    _newlines = 0  # line ends seen in the head so far
    _fed = 0  # bytes of a pipelined head given to the parser

    def data_received(self, data: bytes) -> None:
        if self._refused:
            # drained: dropped unread until the connection closes
            self._fed += len(data)
            if self._fed > _LINGER_BYTES:
                self._header_timeout()
            return
        if not self._at_message_start:
            if self._in_parser_head:
                self._fed += len(data)
                limits = self.limits
                if self._fed > limits.max_request_line + limits.max_header_bytes:
                    self._refuse(_TOO_LARGE)
                    return
            super().data_received(data)
            return
        head = self._head
        if head is None:
            buf: bytes | bytearray = data
            start = 0
        else:
            start = len(head)
            head += data
            buf = head
        end = buf.find(_HEAD_END, max(start - 3, 0))
        if end < 0:
            bare = buf.find(b"\n\n", max(start - 1, 0))
            if bare >= 0:  # bare line ends: the parser refuses them (400) at once
                end = bare - 2
        if end < 0:
            if self._scan(buf, start, len(buf), complete=False):
                if head is None:
                    self._head = bytearray(data)
                    self._unset_keepalive_if_required()
                    if self._header_timer is None:  # a kept-alive connection's next request
                        self._arm_header_timer()
            return
        end += 4
        if not self._scan(buf, start, end, complete=True):
            return
        if head is not None:
            data = bytes(head)
            self._head = None
        self._line_len = -1
        self._newlines = 0
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        if data[:5] == _LIST:
            data = _rewrite_list(data)
        super().data_received(data)

    def _scan(self, buf: bytes | bytearray, start: int, stop: int, *, complete: bool) -> bool:
        """Check ``buf[start:stop]``, the head's new bytes, against the limits; refuse the
        request and answer False if it breaks one."""
        limits = self.limits
        if self._line_len < 0:
            line_end = buf.find(b"\n", start, stop)
            if line_end >= 0:
                self._line_len = line_end + 1
            elif stop > limits.max_request_line:
                self._refuse(_URI_TOO_LONG)
                return False
        if self._line_len > limits.max_request_line:
            self._refuse(_URI_TOO_LONG)
            return False
        self._newlines += buf.count(b"\n", start, stop)
        # a complete head has a line end for its request line, each field and the blank line
        fields = self._newlines - (2 if complete else 1)
        if fields > limits.max_header_count:
            self._refuse(_TOO_MANY)
            return False
        if self._line_len >= 0 and stop - self._line_len > limits.max_header_bytes:
            self._refuse(_TOO_LARGE)
            return False
        return True

    def _refuse(self, answer: bytes) -> None:
        self._refused = True
        self._head = None
        self._fed = 0
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(answer)
        # Closing with unread bytes in the socket makes the kernel reset the connection,
        # and the client may lose the answer: drop what still arrives, then close.
        self._header_timer = self.loop.call_later(_LINGER, self._header_timeout)

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
        if self.limits.timeout > 0:
            self._header_timer = self.loop.call_later(self.limits.timeout, self._header_timeout)

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def _write_timeout(self) -> None:
        # Go's WriteTimeout: the response was not out in time; the connection goes, as in Go
        self._write_timer = None
        if self.transport is not None and not self.transport.is_closing():
            log.warning("response not written within http_write_timeout; connection closed")
            self.transport.close()

    def on_message_begin(self) -> None:
        self._at_message_start = False
        self._in_parser_head = True
        self._fed = 0
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
        self._in_parser_head = False
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().on_headers_complete()
        if self.limits.write_timeout > 0:
            if self._write_timer is not None:
                self._write_timer.cancel()
            self._write_timer = self.loop.call_later(self.limits.write_timeout, self._write_timeout)

    def on_response_complete(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._header_timer, self._write_timer):
            if timer is not None:
                timer.cancel()
        self._header_timer = self._write_timer = None
        self._head = None
        super().connection_lost(exc)
