"""Request forwarding between separate HA nodes over their cluster addresses (mutual TLS with
the cluster CA kept behind the barrier), and the node registry of ``sys/ha-status``.

Real PostgreSQL, real server processes, real HTTP: a standby answers what it must not serve
with the active's answer (not a 307), the cluster port serves nobody without a certificate
of the cluster CA, ``disable_clustering`` keeps Vault's redirect, and after a kill -9 of the
active the remaining standby forwards to the new one.
"""

from __future__ import annotations

import datetime
import json
import os
import signal
import socket
import ssl
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.ha.cluster import wait_until
from tests.ha.test_ha_postgresql import PgHACluster
from tests.pg import PgCluster, pg_cluster_fixture
from tests.serverproc import ServerProcess

_TABLES = iter(range(1_000_000))


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[PgCluster]:
    yield from pg_cluster_fixture()


@dataclass
class ForwardingCluster(PgHACluster):
    clustering: bool = True

    def standbys(self, active: ServerProcess) -> list[ServerProcess]:
        return [n for n in self.nodes if n is not active and n.proc and n.proc.poll() is None]

    def ha_status(self, node: ServerProcess) -> list[dict[str, object]]:
        with self.http(node) as http:
            answer = http.get("/v1/sys/ha-status")
            assert answer.status_code == 200, answer.text
            return list(answer.json()["data"]["nodes"])


def _make_cluster(
    pg: PgCluster, workdir: Path, nodes: int, clustering: bool = True
) -> ForwardingCluster:
    ha = ForwardingCluster(workdir, pg=pg, table=f"fwd_{next(_TABLES)}", clustering=clustering)
    try:
        with ThreadPoolExecutor(nodes) as pool:  # the processes start side by side
            for started in [pool.submit(ha.add_node) for _ in range(nodes)]:
                started.result()
        ha.init()
    except BaseException:
        ha.stop()
        raise
    return ha


@pytest.fixture(scope="module")
def shared(
    pg_cluster: PgCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ForwardingCluster]:
    """Three nodes for the tests that leave the active alive (the last one kills a standby)."""
    ha = _make_cluster(pg_cluster, tmp_path_factory.mktemp("shared"), 3)
    try:
        yield ha
    finally:
        ha.stop()


@pytest.fixture
def three(pg_cluster: PgCluster, tmp_path: Path) -> Iterator[ForwardingCluster]:
    ha = _make_cluster(pg_cluster, tmp_path, 3)
    try:
        yield ha
    finally:
        ha.stop()


def _standby_knows(ha: ForwardingCluster, standby: ServerProcess, active: ServerProcess) -> None:
    wait_until(lambda: ha.leader(standby)["leader_address"] == active.addr, 10, "leader known")


def test_a_standby_forwards_writes_logins_and_token_creation(shared: ForwardingCluster) -> None:
    ha = shared
    active = ha.wait_active()
    standby = ha.standbys(active)[0]
    _standby_knows(ha, standby, active)
    with ha.http(active) as http:
        assert http.post("/v1/sys/mounts/secret", json={"type": "kv-v2"}).status_code == 204
        assert http.post("/v1/sys/auth/userpass", json={"type": "userpass"}).status_code == 204
        made = http.post("/v1/auth/userpass/users/alice", json={"password": "pw-alice"})
        assert made.status_code == 204
    with ha.http(standby) as http:  # httpx follows no redirect: a 200 is the active's answer
        written = http.post("/v1/secret/data/fwd", json={"data": {"v": "one"}})
        assert written.status_code == 200, written.text
        assert written.json()["data"]["version"] == 1
        assert written.headers["x-vault-index"]  # the active's consistency header, relayed
        assert written.headers["content-type"] == "application/json"
        login = http.post("/v1/auth/userpass/login/alice", json={"password": "pw-alice"})
        assert login.status_code == 200, login.text
        user_token = login.json()["auth"]["client_token"]
        assert login.json()["auth"]["policies"] == ["default"]
        created = http.post("/v1/auth/token/create", json={"policies": ["default"], "ttl": "1h"})
        assert created.status_code == 200, created.text
        child = created.json()["auth"]["client_token"]
        bad = http.post("/v1/auth/userpass/login/alice", json={"password": "wrong"})
        assert bad.status_code == 400 and bad.json()["errors"]  # the active's error, as-is
        deleted = http.delete("/v1/secret/data/gone")
        assert deleted.status_code == 204 and not deleted.content
    with ha.http(active) as http:  # what the standby answered was done on the active
        read = http.get("/v1/secret/data/fwd")
        assert read.status_code == 200 and read.json()["data"]["data"] == {"v": "one"}
        for token, name in ((user_token, "userpass-alice"), (child, "token")):
            looked = http.post("/v1/auth/token/lookup", json={"token": token})
            assert looked.status_code == 200, looked.text
            assert looked.json()["data"]["display_name"] == name

    # the original client's address reaches the active: a token bound to 127.0.0.1 works
    # through the standby, one bound elsewhere does not, and the audit entry names it
    with ha.http(active) as http:
        policy = 'path "secret/*" { capabilities = ["create", "update", "read"] }'
        assert http.put("/v1/sys/policies/acl/kvw", json={"policy": policy}).status_code == 204
        tokens = {}
        for role, cidr in (("local", "127.0.0.1/32"), ("far", "10.9.9.0/24")):
            made = http.post(
                f"/v1/auth/token/roles/{role}",
                json={"allowed_policies": ["kvw"], "token_bound_cidrs": [cidr]},
            )
            assert made.status_code == 204, made.text
            created = http.post(
                f"/v1/auth/token/create/{role}", json={"policies": ["kvw"], "ttl": "1h"}
            )
            assert created.status_code == 200, created.text
            tokens[role] = created.json()["auth"]["client_token"]
        local, far = tokens["local"], tokens["far"]
        audit_log = ha.workdir / "audit.log"
        enabled = http.post(
            "/v1/sys/audit/file",
            json={"type": "file", "options": {"file_path": str(audit_log)}},
        )
        assert enabled.status_code == 204, enabled.text
    with ha.http(standby, local) as http:
        answer = http.post("/v1/secret/data/bound", json={"data": {"v": 1}})
        assert answer.status_code == 200, answer.text
    with ha.http(standby, far) as http:
        assert http.post("/v1/secret/data/bound", json={"data": {"v": 2}}).status_code == 403
    entries = [json.loads(line) for line in audit_log.read_text().splitlines() if line]
    bound = [
        e for e in entries if e["type"] == "request" and e["request"]["path"] == "secret/data/bound"
    ]
    assert bound and all(e["request"]["remote_address"] == "127.0.0.1" for e in bound)
    with ha.http(active) as http:
        assert http.get("/v1/secret/data/bound").json()["data"]["data"] == {"v": 1}
        assert http.delete("/v1/sys/audit/file").status_code == 204


def _other_ca_client_context() -> ssl.SSLContext:
    """A client certificate from a CA that is not the cluster's."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "strongroom-cluster")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with tempfile.NamedTemporaryFile(suffix=".pem") as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
        handle.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        handle.flush()
        context.load_cert_chain(handle.name)
    return context


def _tls_exchange(port: int, context: ssl.SSLContext) -> bytes:
    """Send an HTTP request over TLS to the cluster port; what came back (b"" or an error
    text when the server refused)."""
    request = b"GET /v1/sys/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        try:
            with context.wrap_socket(raw, server_hostname="strongroom-cluster") as tls:
                tls.sendall(request)
                received = b""
                while chunk := tls.recv(65536):
                    received += chunk
                return received
        except (ssl.SSLError, ConnectionError) as exc:
            return repr(exc).encode()


def test_the_cluster_port_serves_nobody_without_a_cluster_certificate(
    shared: ForwardingCluster,
) -> None:
    three = shared
    active = three.wait_active()
    port = active.cluster_port  # type: ignore[attr-defined]
    # a working cluster (the forwarding test proves the positive side): the port is open
    no_cert = ssl.create_default_context()
    no_cert.check_hostname = False
    no_cert.verify_mode = ssl.CERT_NONE
    for context in (no_cert, _other_ca_client_context()):
        answer = _tls_exchange(port, context)
        assert b"HTTP/" not in answer, answer
    # the server's certificate is the cluster CA's, not one any public CA vouches for
    strict = ssl.create_default_context()
    strict.check_hostname = False
    with pytest.raises(ssl.SSLCertVerificationError):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            strict.wrap_socket(raw, server_hostname="strongroom-cluster")
    # plain HTTP is not spoken there either
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(b"GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n\r\n")
        raw.settimeout(10)
        try:
            answer = raw.recv(65536)
        except ConnectionError:
            answer = b""
        assert b"HTTP/" not in answer
    # echoes (outside /v1) cannot be sent through a standby's forwarding either
    standby = three.standbys(active)[0]
    with three.http(standby) as http:
        assert http.post("/cluster/echo", json={"node_id": "x"}).status_code == 404
    # an unsealed node shows its leaf of the cluster CA (ECDSA P-256) before refusing us
    leaf = _server_certificate(standby.cluster_port)  # type: ignore[attr-defined]
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey)
    assert leaf.public_key().curve.name == "secp256r1"
    issuer = leaf.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert str(issuer).startswith("strongroom-cluster-ca-")
    assert leaf.issuer == _server_certificate(port).issuer  # one CA for every node
    # a sealed node cannot read the CA: it refuses every handshake outright
    with three.http(standby) as http:
        assert http.put("/v1/sys/seal").status_code == 204
    with pytest.raises((ssl.SSLError, ConnectionError)):
        _server_certificate(standby.cluster_port)  # type: ignore[attr-defined]
    three.unseal(standby)
    wait_until(lambda: _handshakes(standby.cluster_port), 10, "the unsealed node serves again")  # type: ignore[attr-defined]


def _server_certificate(port: int) -> x509.Certificate:
    """The certificate the cluster port shows a client that checks nothing (and has none)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="strongroom-cluster") as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def _handshakes(port: int) -> bool:
    try:
        _server_certificate(port)
    except (ssl.SSLError, ConnectionError):
        return False
    return True


def test_ha_status_lists_every_node_and_forgets_a_dead_one(shared: ForwardingCluster) -> None:
    ha = shared
    active = ha.wait_active()
    standbys = ha.standbys(active)

    def listed(node: ServerProcess, count: int) -> bool:
        return len(ha.ha_status(node)) == count

    wait_until(lambda: listed(active, 3), 15, "three nodes in sys/ha-status")
    nodes = ha.ha_status(active)
    by_api = {n["api_address"]: n for n in nodes}
    assert set(by_api) == {n.addr for n in ha.nodes}
    assert [n["api_address"] for n in nodes if n["active_node"]] == [active.addr]
    assert by_api[active.addr]["last_echo"] is None
    for node in standbys:
        entry = by_api[node.addr]
        assert entry["cluster_address"] == f"https://127.0.0.1:{node.cluster_port}"  # type: ignore[attr-defined]
        assert entry["hostname"] == socket.gethostname()
        assert isinstance(entry["last_echo"], str)
        datetime.datetime.fromisoformat(str(entry["last_echo"]))
        assert entry["version"]
    # a standby answers with the active's view
    assert {n["api_address"] for n in ha.ha_status(standbys[0])} == set(by_api)
    # a killed standby is forgotten after five missed echoes
    gone = standbys[1]
    assert gone.proc is not None
    os.kill(gone.proc.pid, signal.SIGKILL)
    gone.proc.wait()
    wait_until(lambda: listed(active, 2), 15, "the dead standby forgotten")
    assert gone.addr not in {n["api_address"] for n in ha.ha_status(active)}


def test_after_the_active_dies_standbys_forward_to_the_new_active(
    three: ForwardingCluster,
) -> None:
    ha = three
    active = ha.wait_active()
    with ha.http(active) as http:
        assert http.post("/v1/sys/mounts/secret", json={"type": "kv-v2"}).status_code == 204
    for standby in ha.standbys(active):
        _standby_knows(ha, standby, active)
        with ha.http(standby) as http:
            assert http.post("/v1/secret/data/before", json={"data": {"v": 0}}).status_code == 200
    assert active.proc is not None
    os.kill(active.proc.pid, signal.SIGKILL)
    active.proc.wait()
    survivors = ha.standbys(active)
    new_active = ha.wait_active(survivors)
    other = next(n for n in survivors if n is not new_active)
    _standby_knows(ha, other, new_active)
    with ha.http(other) as http:

        def forwarded() -> bool:  # 503 while the new active loads
            answer = http.post("/v1/secret/data/after", json={"data": {"v": 1}})
            assert answer.status_code in (200, 503), answer.text
            return answer.status_code == 200

        wait_until(forwarded, 15, "a write forwarded to the new active")
    with ha.http(new_active) as http:
        read = http.get("/v1/secret/data/after")
        assert read.status_code == 200 and read.json()["data"]["data"] == {"v": 1}
        assert http.get("/v1/secret/data/before").json()["data"]["data"] == {"v": 0}
    # the new active lists the surviving standby, not the dead node
    wait_until(lambda: len(ha.ha_status(new_active)) == 2, 15, "two nodes listed")


def test_disable_clustering_keeps_the_redirect_and_opens_no_cluster_port(
    pg_cluster: PgCluster, tmp_path: Path
) -> None:
    ha = _make_cluster(pg_cluster, tmp_path, 2, clustering=False)
    try:
        active = ha.wait_active()
        standby = ha.standbys(active)[0]
        _standby_knows(ha, standby, active)
        with ha.http(active) as http:
            assert http.post("/v1/sys/mounts/secret", json={"type": "kv-v2"}).status_code == 204
        with ha.http(standby) as http:
            answer = http.post("/v1/secret/data/a", json={"data": {"v": 1}})
            assert answer.status_code == 307
            assert answer.headers["location"] == active.addr + "/v1/secret/data/a"
        for node in ha.nodes:
            with socket.socket() as sock:
                port = node.cluster_port  # type: ignore[attr-defined]
                assert sock.connect_ex(("127.0.0.1", port)) != 0
        # no echoes without clustering: each node knows the active and itself
        assert len(ha.ha_status(active)) == 1
        assert len(ha.ha_status(standby)) == 2
    finally:
        ha.stop()
