"""A small RFC 8555 client for tests (httpx + joserfc), able to send well-formed and
deliberately broken requests, and challenge responders (http-01, tls-alpn-01)."""

from __future__ import annotations

import datetime
import hashlib
import http.server
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from joserfc import jws
from joserfc.jwk import ECKey, OctKey, RSAKey
from joserfc.jws import JWSRegistry
from joserfc.registry import HeaderParameter

REGISTRY = JWSRegistry(
    header_registry={
        "url": HeaderParameter("url", "str"),
        "nonce": HeaderParameter("nonce", "str"),
    },
    algorithms=["RS256", "ES256", "HS256", "EdDSA"],
)


def b64url(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class AcmeClient:
    def __init__(self, directory_url: str, key: ECKey | RSAKey | None = None) -> None:
        self.http = httpx.Client(timeout=30)
        self.directory = self.http.get(directory_url).json()
        self.key = key or ECKey.generate_key("P-256")
        self.kid = ""

    def close(self) -> None:
        self.http.close()

    def alg(self, key: Any) -> str:
        return "RS256" if isinstance(key, RSAKey) else "ES256"

    def nonce(self) -> str:
        response = self.http.head(self.directory["newNonce"])
        return response.headers["Replay-Nonce"]

    def sign(
        self,
        url: str,
        payload: Any,
        *,
        key: Any = None,
        nonce: str | None = None,
        use_jwk: bool = False,
        kid: str | None = None,
        header: dict[str, Any] | None = None,
    ) -> dict[str, str]:
        key = key or self.key
        protected: dict[str, Any] = {"alg": self.alg(key), "url": url}
        protected["nonce"] = nonce if nonce is not None else self.nonce()
        if use_jwk or not (kid or self.kid):
            protected["jwk"] = key.as_dict(private=False)
        else:
            protected["kid"] = kid or self.kid
        protected.update(header or {})
        body = b"" if payload is None else __import__("json").dumps(payload).encode()
        return dict(jws.serialize_json({"protected": protected}, body, key, registry=REGISTRY))

    def post(self, url: str, payload: Any = None, **kwargs: Any) -> httpx.Response:
        return self.http.post(
            url,
            json=self.sign(url, payload, **kwargs),
            headers={"Content-Type": "application/jose+json"},
        )

    def register(self, **payload: Any) -> httpx.Response:
        payload.setdefault("termsOfServiceAgreed", True)
        response = self.post(self.directory["newAccount"], payload, use_jwk=True)
        if response.status_code in (200, 201):
            self.kid = response.headers["Location"]
        return response

    def eab(self, key_id: str, hmac_key: bytes) -> dict[str, str]:
        url = self.directory["newAccount"]
        protected = {"alg": "HS256", "kid": key_id, "url": url}
        payload = __import__("json").dumps(self.key.as_dict(private=False)).encode()
        return dict(
            jws.serialize_json(
                {"protected": protected}, payload, OctKey.import_key(hmac_key), registry=REGISTRY
            )
        )

    def thumbprint(self) -> str:
        return str(self.key.thumbprint())

    def key_authorization(self, token: str) -> str:
        return f"{token}.{self.thumbprint()}"

    def wait(self, url: str, until: tuple[str, ...], timeout: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            body = self.post(url).json()
            if body.get("status") in until:
                return body
            time.sleep(0.05)
        raise AssertionError(f"{url} stayed {body.get('status')}: {body}")


def make_csr(names: list[str], ips: list[str] = (), key: Any = None) -> tuple[bytes, Any]:  # type: ignore[assignment]
    import ipaddress

    key = key or ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else ips[0])])
    )
    csr = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False).sign(
        key, hashes.SHA256()
    )
    return csr.public_bytes(serialization.Encoding.DER), key


@contextmanager
def http01_responder(port: int, answers: dict[str, str]) -> Iterator[None]:
    """Serves ``/.well-known/acme-challenge/<token>`` from ``answers`` on 127.0.0.1."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            token = self.path.rsplit("/", 1)[-1]
            body = answers.get(token)
            if body is None or not self.path.startswith("/.well-known/acme-challenge/"):
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def tls_alpn_responder(
    port: int, identifier: str, key_authorization: str, workdir: Path
) -> Iterator[None]:
    """A TLS server answering ``acme-tls/1`` with the RFC 8737 challenge certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    digest = hashlib.sha256(key_authorization.encode()).digest()
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "acme challenge")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(identifier)]), critical=False)
        .add_extension(
            x509.UnrecognizedExtension(
                x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31"), b"\x04\x20" + digest
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file = workdir / "alpn.crt"
    key_file = workdir / "alpn.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    context.set_alpn_protocols(["acme-tls/1"])
    import socket

    listener = socket.create_server(("127.0.0.1", port))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                conn.settimeout(5)
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        listener.close()
        thread.join(5)


@contextmanager
def dns_responder(port: int, records: dict[str, list[str]]) -> Iterator[None]:
    """A UDP DNS server on 127.0.0.1 answering TXT queries from ``records`` (name → values)."""
    import socket

    import dns.message
    import dns.rcode
    import dns.rdatatype
    import dns.rrset

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            query = dns.message.from_wire(data)
            reply = dns.message.make_response(query)
            for question in query.question:
                name = question.name.to_text().rstrip(".")
                values = records.get(name)
                if question.rdtype == dns.rdatatype.TXT and values:
                    reply.answer.append(
                        dns.rrset.from_text(
                            question.name, 60, "IN", "TXT", *[f'"{v}"' for v in values]
                        )
                    )
                else:
                    reply.set_rcode(dns.rcode.NXDOMAIN)
            sock.sendto(reply.to_wire(), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)
        sock.close()


def dns01_value(key_authorization: str) -> str:
    return b64url(hashlib.sha256(key_authorization.encode()).digest())
