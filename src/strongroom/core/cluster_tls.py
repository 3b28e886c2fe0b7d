"""The cluster's own certificate authority: mutual TLS between the nodes of an HA cluster.

The first node to become active generates an ECDSA P-256 CA (key and self-signed
certificate) and stores it **behind the barrier** at ``core/cluster/tls``: only an unsealed
node, which holds the barrier key, can read it. Every unsealed node loads it and issues
itself a leaf certificate signed by that CA (its own fresh key, kept in memory only). The
leaf is both the node's server certificate on its cluster listener and its client
certificate when it forwards a request or echoes to the active.

Trust is pinned to the cluster CA alone: the server asks for a client certificate and
refuses the handshake without one that chains to the CA; the client verifies the server's
certificate against the same CA and nothing else (no system trust store). Host names are not
checked: every node holds the CA, so a certificate proves "a member of this cluster", which
is what the check is for. The CA is never rotated (Vault rotates its cluster certificates;
here a new CA means a new store or a snapshot of another cluster, and nodes load it at their
next unseal).
"""

from __future__ import annotations

import datetime
import os
import ssl
from dataclasses import dataclass, field

import orjson
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from strongroom.logical import Storage

__all__ = ["TLS_KEY", "ClusterTLS", "generate_ca", "load_cluster_tls"]

TLS_KEY = "core/cluster/tls"
_VALIDITY = datetime.timedelta(days=3650)
_BACKDATE = datetime.timedelta(days=1)  # clocks of the nodes may differ a little
_NAME = "strongroom-cluster"


@dataclass(frozen=True, slots=True)
class _CA:
    cert_pem: bytes
    key_pem: bytes = field(repr=False)


def generate_ca() -> _CA:
    """A new cluster CA: ECDSA P-256, self-signed, 10 years."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{_NAME}-ca-{os.urandom(4).hex()}")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return _CA(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


class ClusterTLS:
    """This node's view of the cluster CA: its own leaf, and the TLS contexts built once."""

    def __init__(self, ca: _CA, node_id: str) -> None:
        ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
        ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
        if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
            raise ValueError("the cluster CA key is not an ECDSA key")
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node_id[:64])]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(min(now + _VALIDITY, ca_cert.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(_NAME)]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        self.ca_pem = ca.cert_pem
        self.cert_pem = leaf.public_bytes(serialization.Encoding.PEM)
        chain = self.cert_pem + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self.server_context = self._context(ssl.PROTOCOL_TLS_SERVER, chain)
        self.client_context = self._context(ssl.PROTOCOL_TLS_CLIENT, chain)

    def __repr__(self) -> str:
        return "ClusterTLS()"

    def _context(self, protocol: int, chain: bytes) -> ssl.SSLContext:
        context = ssl.SSLContext(protocol)
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        # only the cluster CA is trusted, in both directions (no system trust store)
        context.load_verify_locations(cadata=self.ca_pem.decode("ascii"))
        context.check_hostname = False  # every member holds the CA: membership is the check
        context.verify_mode = ssl.CERT_REQUIRED
        _load_chain(context, chain)
        return context


def _load_chain(context: ssl.SSLContext, chain: bytes) -> None:
    """``load_cert_chain`` reads files only: the leaf and its key go through an anonymous
    in-memory file (memfd), so the private key never touches a disk."""
    fd = os.memfd_create("strongroom-cluster", os.MFD_CLOEXEC)
    try:
        os.write(fd, chain)
        context.load_cert_chain(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


async def load_cluster_tls(storage: Storage, node_id: str, *, create: bool) -> ClusterTLS | None:
    """The cluster CA from ``storage`` (the barrier), with a fresh leaf for this node.

    ``create`` (the active node only: standbys cannot write) stores a new CA when none
    exists yet. Returns ``None`` when there is none and ``create`` is false.
    """
    raw = await storage.get(TLS_KEY)
    if raw is None:
        if not create:
            return None
        ca = generate_ca()
        record = {"ca_cert": ca.cert_pem.decode("ascii"), "ca_key": ca.key_pem.decode("ascii")}
        await storage.put(TLS_KEY, orjson.dumps(record))
    else:
        record = orjson.loads(raw)
        ca = _CA(cert_pem=record["ca_cert"].encode(), key_pem=record["ca_key"].encode())
    return ClusterTLS(ca, node_id)
