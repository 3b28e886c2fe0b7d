"""TLS listeners: a production server from an HCL config, driven over https.

The certificates are made here with ``cryptography``: a throwaway CA, a server certificate for
127.0.0.1/localhost, a client certificate the CA signed and one it did not.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import ssl
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from strongroom.server.listener import StrongroomProtocol, make_ssl_context
from tests.serverproc import ServerProcess, free_port

# -- a throwaway PKI ---------------------------------------------------------------------------

_NOW = datetime.datetime.now(datetime.UTC)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem_key(key: Any) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass
class Issued:
    cert: x509.Certificate
    key: Any
    cert_path: Path
    key_path: Path

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)


def _ca(directory: Path, name: str) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(_name(name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_NOW - datetime.timedelta(minutes=5))
        .not_valid_after(_NOW + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _write(directory, name, cert, key)


def _issue(directory: Path, ca: Issued, name: str, *, server: bool, key: Any = None) -> Issued:
    key = key or ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_NOW - datetime.timedelta(minutes=5))
        .not_valid_after(_NOW + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
    return _write(directory, name, builder.sign(ca.key, hashes.SHA256()), key)


def _write(directory: Path, name: str, cert: x509.Certificate, key: Any) -> Issued:
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(_pem_key(key))
    key_path.chmod(0o600)
    return Issued(cert, key, cert_path, key_path)


@dataclass
class PKI:
    ca: Issued
    server: Issued
    client: Issued
    stranger: Issued  # a client certificate from a CA the server does not trust


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    directory = tmp_path_factory.mktemp("pki")
    ca = _ca(directory, "strongroom-test-ca")
    other_ca = _ca(directory, "untrusted-ca")
    # an RSA server key, so that RSA key exchange and CBC suites are possible in principle
    # and their refusal below is the server's policy, not a key type mismatch
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return PKI(
        ca=ca,
        server=_issue(directory, ca, "server", server=True, key=rsa_key),
        client=_issue(directory, ca, "client", server=False),
        stranger=_issue(directory, other_ca, "stranger", server=False),
    )


def _tls_config(pki: PKI, extra: str = "") -> str:
    return f"""
storage "inmem" {{}}
listener "tcp" {{
  address            = "127.0.0.1:{{port}}"
  tls_cert_file      = "{pki.server.cert_path}"
  tls_key_file       = "{pki.server.key_path}"
  tls_client_ca_file = "{pki.ca.cert_path}"
{extra}
}}
"""


def _start(workdir: Path, config_text: str) -> ServerProcess:
    port = free_port()
    config = workdir / "server.hcl"
    config.write_text(config_text.replace("{port}", str(port)))
    return ServerProcess([f"-config={config}"], port, workdir, scheme="https").start()


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory, pki: PKI) -> Iterator[ServerProcess]:
    server = _start(tmp_path_factory.mktemp("tls"), _tls_config(pki))
    try:
        yield server
    finally:
        server.stop()


def _client_context(pki: PKI, cert: Issued | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca.cert_path))
    if cert is not None:
        context.load_cert_chain(str(cert.cert_path), str(cert.key_path))
    return context


def _exchange(port: int, context: ssl.SSLContext, path: str = "/v1/sys/seal-status") -> bytes:
    """One HTTP/1.1 request over a fresh TLS connection; the raw response (b"" if closed).

    Raises:
        ssl.SSLError, OSError: the handshake failed, or the server dropped the connection
            (a TLS 1.3 server refuses a missing client certificate after the client's side of
            the handshake has completed, so the refusal surfaces on the first read).
    """
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := tls.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def _refused(port: int, context: ssl.SSLContext) -> bool:
    """True if the server refused the connection: a failed handshake, or (TLS 1.3, where the
    server checks the client's certificate after the client has finished) a reset or a close
    before any response."""
    try:
        return _exchange(port, context) == b""
    except (ssl.SSLError, ConnectionError):
        return True


# -- a production TLS server -------------------------------------------------------------------


def test_hvac_over_https_with_ca_verification(tls_server: ServerProcess, pki: PKI) -> None:
    client = tls_server.client(verify=str(pki.ca.cert_path))
    assert client.sys.is_initialized() is False
    result = client.sys.initialize(secret_shares=1, secret_threshold=1)
    client.sys.submit_unseal_key(result["keys"][0])
    client.token = result["root_token"]
    assert client.sys.is_sealed() is False
    client.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
    client.secrets.kv.v2.create_or_update_secret("tls/app", secret={"k": "v"})
    read = client.secrets.kv.v2.read_secret_version("tls/app", raise_on_deleted_version=True)
    assert read["data"]["data"] == {"k": "v"}
    # hvac's list() sends the LIST verb: the listener's rewrite works under TLS too
    listed = client.secrets.kv.v2.list_secrets("tls/")
    assert listed["data"]["keys"] == ["app"]
    assert client.sys.list_policies()["data"]["policies"] == ["default", "root"]
    # and with a client certificate presented, the same calls work
    with_cert = tls_server.client(
        result["root_token"],
        verify=str(pki.ca.cert_path),
        cert=(str(pki.client.cert_path), str(pki.client.key_path)),
    )
    assert with_cert.secrets.kv.v2.list_secrets("tls/")["data"]["keys"] == ["app"]


def test_unverified_server_is_refused_by_clients(tls_server: ServerProcess) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        _exchange(tls_server.port, ssl.create_default_context())


def test_client_certificate_is_optional(tls_server: ServerProcess, pki: PKI) -> None:
    without = _exchange(tls_server.port, _client_context(pki))
    assert without.startswith(b"HTTP/1.1 200")
    with_cert = _exchange(tls_server.port, _client_context(pki, pki.client))
    assert with_cert.startswith(b"HTTP/1.1 200")


def test_client_certificate_from_unknown_ca_is_refused(tls_server: ServerProcess, pki: PKI) -> None:
    # requested-but-optional still means "verified if given" (Go's VerifyClientCertIfGiven)
    assert _refused(tls_server.port, _client_context(pki, pki.stranger))


def _limited_context(
    pki: PKI, *, maximum: ssl.TLSVersion, ciphers: str = "", minimum: ssl.TLSVersion | None = None
) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=str(pki.ca.cert_path))
    # let this client offer what a modern OpenSSL would refuse to, so that any refusal
    # comes from the server
    context.set_ciphers((ciphers or "DEFAULT") + ":@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # naming TLSv1/TLSv1_1 warns
        context.minimum_version = minimum or ssl.TLSVersion.TLSv1
        context.maximum_version = maximum
    return context


@pytest.fixture(scope="module")
def permissive_port(pki: PKI) -> Iterator[int]:
    """A bare TLS server that accepts anything old: the control showing that the clients
    below can speak TLS 1.0/1.1 and CBC suites, so a refusal comes from Strongroom's policy."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
    context.set_ciphers("ALL:@SECLEVEL=0")
    context.load_cert_chain(str(pki.server.cert_path), str(pki.server.key_path))
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stopping = threading.Event()

    def serve() -> None:
        while not stopping.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(65536)
                    tls.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    )
            except OSError:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stopping.set()
        thread.join(5)
        listener.close()


_OLD_VERSIONS = ["TLSv1", "TLSv1_1"]
_NON_AEAD = ["AES128-SHA", "AES256-SHA256", "ECDHE-RSA-AES128-SHA", "ECDHE-RSA-AES256-SHA384"]


@pytest.mark.parametrize("version", _OLD_VERSIONS)
def test_control_old_versions_work_elsewhere(permissive_port: int, pki: PKI, version: str) -> None:
    context = _limited_context(pki, maximum=getattr(ssl.TLSVersion, version))
    assert _exchange(permissive_port, context).startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("ciphers", _NON_AEAD)
def test_control_non_aead_suites_work_elsewhere(
    permissive_port: int, pki: PKI, ciphers: str
) -> None:
    context = _limited_context(
        pki, maximum=ssl.TLSVersion.TLSv1_2, minimum=ssl.TLSVersion.TLSv1_2, ciphers=ciphers
    )
    assert _exchange(permissive_port, context).startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("version", _OLD_VERSIONS)
def test_tls_1_0_and_1_1_are_refused(tls_server: ServerProcess, pki: PKI, version: str) -> None:
    context = _limited_context(pki, maximum=getattr(ssl.TLSVersion, version))
    with pytest.raises(ssl.SSLError):
        _exchange(tls_server.port, context)


@pytest.mark.parametrize("ciphers", _NON_AEAD)
def test_non_aead_suites_are_refused(tls_server: ServerProcess, pki: PKI, ciphers: str) -> None:
    context = _limited_context(
        pki, maximum=ssl.TLSVersion.TLSv1_2, minimum=ssl.TLSVersion.TLSv1_2, ciphers=ciphers
    )
    with pytest.raises(ssl.SSLError):
        _exchange(tls_server.port, context)


def test_tls12_aead_suite_is_accepted(tls_server: ServerProcess, pki: PKI) -> None:
    context = _limited_context(
        pki,
        maximum=ssl.TLSVersion.TLSv1_2,
        minimum=ssl.TLSVersion.TLSv1_2,
        ciphers="ECDHE-RSA-AES128-GCM-SHA256",
    )
    assert _exchange(tls_server.port, context).startswith(b"HTTP/1.1 200")


def test_required_client_certificate(tmp_path: Path, pki: PKI) -> None:
    server = _start(tmp_path, _tls_config(pki, "  tls_require_and_verify_client_cert = true"))
    try:
        assert _refused(server.port, _client_context(pki))
        assert _refused(server.port, _client_context(pki, pki.stranger))
        assert _exchange(server.port, _client_context(pki, pki.client)).startswith(b"HTTP/1.1 200")
        client = server.client(
            verify=str(pki.ca.cert_path),
            cert=(str(pki.client.cert_path), str(pki.client.key_path)),
        )
        assert client.sys.is_initialized() is False
    finally:
        server.stop()


def test_tls13_minimum_refuses_tls12(tmp_path: Path, pki: PKI) -> None:
    server = _start(tmp_path, _tls_config(pki, '  tls_min_version = "tls13"'))
    try:
        tls12 = _limited_context(
            pki, maximum=ssl.TLSVersion.TLSv1_2, minimum=ssl.TLSVersion.TLSv1_2
        )
        with pytest.raises(ssl.SSLError):
            _exchange(server.port, tls12)
        assert _exchange(server.port, _client_context(pki)).startswith(b"HTTP/1.1 200")
    finally:
        server.stop()


def test_tls12_maximum_is_honoured(tmp_path: Path, pki: PKI) -> None:
    server = _start(tmp_path, _tls_config(pki, '  tls_max_version = "tls12"'))
    try:
        tls13 = _limited_context(
            pki, maximum=ssl.TLSVersion.TLSv1_3, minimum=ssl.TLSVersion.TLSv1_3
        )
        with pytest.raises(ssl.SSLError):
            _exchange(server.port, tls13)
        context = _client_context(pki)
        with (
            socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            assert tls.version() == "TLSv1.2"
    finally:
        server.stop()


def test_disabled_client_certs_are_not_requested(tmp_path: Path, pki: PKI) -> None:
    # tls_disable_client_certs: no certificate is requested, so a stranger's is never checked
    server = _start(tmp_path, _tls_config(pki, "  tls_disable_client_certs = true"))
    try:
        response = _exchange(server.port, _client_context(pki, pki.stranger))
        assert response.startswith(b"HTTP/1.1 200")
    finally:
        server.stop()


# -- the verified peer certificate reaches the request scope (in process) ---------------------


@dataclass
class _Captured:
    scopes: list[dict[str, Any]]


def _scope_app(captured: _Captured) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        captured.scopes.append(scope)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


def _serve_in_thread(config: uvicorn.Config) -> tuple[uvicorn.Server, threading.Thread]:
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    for _ in range(400):
        if server.started:
            break
        threading.Event().wait(0.025)
    assert server.started
    return server, thread


def _scope_server(pki: PKI, captured: _Captured, **tls: Any) -> tuple[uvicorn.Server, Any, int]:
    context = make_ssl_context(
        str(pki.server.cert_path),
        str(pki.server.key_path),
        client_ca_file=str(pki.ca.cert_path),
        **tls,
    )
    port = free_port()
    config = uvicorn.Config(
        _scope_app(captured),
        host="127.0.0.1",
        port=port,
        http=StrongroomProtocol,
        loop="none",
        lifespan="off",
        log_config=None,
        ssl_context_factory=lambda _config, _default: context,
    )
    # uvicorn installs signal handlers only in the main thread; this server runs in another
    server, thread = _serve_in_thread(config)
    return server, thread, port


def test_peer_certificate_in_asgi_tls_extension(pki: PKI) -> None:
    captured = _Captured([])
    server, thread, port = _scope_server(pki, captured)
    try:
        assert _exchange(port, _client_context(pki, pki.client)).startswith(b"HTTP/1.1 200")
        assert _exchange(port, _client_context(pki)).startswith(b"HTTP/1.1 200")
        # LIST is rewritten to GET ?list=true under TLS as well
        context = _client_context(pki, pki.client)
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            tls.sendall(
                b"LIST /v1/secret/metadata/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            assert tls.recv(65536).startswith(b"HTTP/1.1 200")
    finally:
        server.should_exit = True
        thread.join(10)
    with_cert, without_cert, listed = captured.scopes
    ext = with_cert["extensions"]["tls"]
    assert ext["client_cert_der"] == pki.client.der
    assert ext["client_chain_der"] == [pki.client.der]
    assert ext["tls_version"] in ("TLSv1.2", "TLSv1.3")
    assert ext["cipher_suite"]
    assert with_cert["scheme"] == "https"
    assert without_cert["extensions"]["tls"]["client_cert_der"] is None
    assert without_cert["extensions"]["tls"]["client_chain_der"] == []
    assert listed["method"] == "GET" and listed["query_string"] == b"list=true"
    assert listed["extensions"]["tls"]["client_cert_der"] == pki.client.der


def test_peer_certificate_under_tls12(pki: PKI) -> None:
    captured = _Captured([])
    server, thread, port = _scope_server(pki, captured)
    try:
        context = _client_context(pki, pki.client)
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        assert _exchange(port, context).startswith(b"HTTP/1.1 200")
    finally:
        server.should_exit = True
        thread.join(10)
    (scope,) = captured.scopes
    assert scope["extensions"]["tls"]["client_cert_der"] == pki.client.der
    assert scope["extensions"]["tls"]["tls_version"] == "TLSv1.2"


def test_make_ssl_context_policy(pki: PKI) -> None:
    context = make_ssl_context(str(pki.server.cert_path), str(pki.server.key_path))
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_NONE  # no CA file: nothing requested
    names = {c["name"] for c in context.get_ciphers()}
    tls12 = {c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert tls12 and all(("GCM" in n or "CHACHA20" in n) and "ECDHE" in n for n in tls12)
    assert "AES128-SHA" not in names
    optional = make_ssl_context(
        str(pki.server.cert_path), str(pki.server.key_path), client_ca_file=str(pki.ca.cert_path)
    )
    assert optional.verify_mode == ssl.CERT_OPTIONAL
    required = make_ssl_context(
        str(pki.server.cert_path),
        str(pki.server.key_path),
        client_ca_file=str(pki.ca.cert_path),
        require_client_cert=True,
    )
    assert required.verify_mode == ssl.CERT_REQUIRED
    with pytest.raises(ValueError, match="tls_client_ca_file"):
        make_ssl_context(
            str(pki.server.cert_path), str(pki.server.key_path), require_client_cert=True
        )
