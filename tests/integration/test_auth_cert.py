"""cert through hvac over HTTPS: a production server with a TLS listener that requests client
certificates (tls_client_ca_file), certificates made here."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import hvac
import hvac.exceptions
import pytest

from tests.auth.helpers import Issued, issue, make_ca, make_crl
from tests.serverproc import ServerProcess, start_config_server

MOUNT = "cert"


@dataclass
class Setup:
    server: ServerProcess
    root: hvac.Client
    ca: Issued
    ca_path: Path
    files: dict[str, tuple[Path, Path]]
    certs: dict[str, Issued]
    clients: list[hvac.Client]

    def client(self) -> hvac.Client:
        client = self.server.client(verify=str(self.ca_path))
        self.clients.append(client)
        return client


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    directory = tmp_path_factory.mktemp("cert-auth")
    ca = make_ca("strongroom-it-ca")
    ca_path = directory / "ca.crt"
    ca_path.write_text(ca.pem)
    server_cert, server_key = issue(ca, "server", server=True).write(directory, "server")
    certs = {name: issue(ca, name) for name in ("alice", "bob", "carol")}
    files = {name: cert.write(directory, name) for name, cert in certs.items()}
    config = f"""
storage "inmem" {{}}
listener "tcp" {{
  address            = "127.0.0.1:{{port}}"
  tls_cert_file      = "{server_cert}"
  tls_key_file       = "{server_key}"
  tls_client_ca_file = "{ca_path}"
}}
disable_mlock = true
"""
    server = start_config_server(directory, config)
    server.scheme = "https"
    clients: list[hvac.Client] = []
    try:
        root = server.client(verify=str(ca_path))
        clients.append(root)
        init = root.sys.initialize(secret_shares=1, secret_threshold=1)
        root.sys.submit_unseal_key(init["keys"][0])
        root.token = init["root_token"]
        root.sys.enable_auth_method("cert", path=MOUNT)
        yield Setup(server, root, ca, ca_path, files, certs, clients)
    finally:
        # close keep-alive connections first, so the server's graceful stop is quick
        for client in clients:
            client.adapter.close()
        server.stop()


def login(setup: Setup, who: str, name: str = "") -> tuple[hvac.Client, dict]:
    client = setup.client()
    cert_path, key_path = setup.files[who]
    answer = client.auth.cert.login(
        name=name, cert_pem=str(cert_path), key_pem=str(key_path), mount_point=MOUNT
    )
    return client, answer["auth"]


def test_login_with_a_ca_signed_certificate(setup: Setup) -> None:
    setup.root.auth.cert.create_ca_certificate_role(
        "team", certificate=setup.ca.pem, token_policies=["team"], mount_point=MOUNT
    )
    client, answer = login(setup, "alice", "team")
    assert answer["policies"] == ["default", "team"]
    info = client.auth.token.lookup_self()["data"]
    assert info["meta"]["cert_name"] == "team" and info["meta"]["common_name"] == "alice"
    assert info["display_name"] == f"{MOUNT}-team"
    # no client certificate at all
    with pytest.raises(hvac.exceptions.InvalidRequest, match="must be supplied"):
        setup.client().write(f"auth/{MOUNT}/login")


def test_pinned_certificate_and_crl(setup: Setup) -> None:
    setup.root.auth.cert.create_ca_certificate_role(
        "pinned", certificate=setup.certs["bob"].pem, token_policies=["bob"], mount_point=MOUNT
    )
    _client, answer = login(setup, "bob", "pinned")
    assert answer["policies"] == ["bob", "default"]
    # carol's certificate is trusted by the listener, but it is not the pinned one
    with pytest.raises(hvac.exceptions.InvalidRequest, match="no chain matching"):
        login(setup, "carol", "pinned")
    setup.root.write(f"auth/{MOUNT}/crls/root", crl=make_crl(setup.ca, setup.certs["carol"]))
    with pytest.raises(hvac.exceptions.InvalidRequest, match="no chain matching"):
        login(setup, "carol", "team")
    assert login(setup, "alice", "team")[1]["policies"] == ["default", "team"]
