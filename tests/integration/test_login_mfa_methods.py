"""Login MFA enforced by auth type on the cert (over mutual TLS) and kubernetes methods: the
login answers an MFA requirement and no token; sys/mfa/validate mints it."""

from __future__ import annotations

import json
import ssl
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from joserfc.jwk import RSAKey

from tests.auth.helpers import issue, make_ca, serve, tls_files
from tests.integration.test_auth_kubernetes import service_account_token
from tests.serverproc import ServerProcess, start_config_server


def enforce(http: httpx.Client, headers: dict[str, str], types: list[str]) -> str:
    method_id = http.post(
        "/v1/identity/mfa/method/totp", json={"issuer": "Strongroom"}, headers=headers
    ).json()["data"]["method_id"]
    reply = http.post(
        f"/v1/identity/mfa/login-enforcement/by-type-{uuid.uuid4().hex[:6]}",
        json={"mfa_method_ids": [method_id], "auth_method_types": types},
        headers=headers,
    )
    assert reply.status_code == 204, reply.text
    return str(method_id)


def complete(
    http: httpx.Client,
    headers: dict[str, str],
    answer: dict[str, Any],
    method_id: str,
    accessor: str,
    alias: str,
) -> str:
    requirement = answer["auth"]["mfa_requirement"]
    assert answer["auth"]["client_token"] == "" and requirement
    entity = http.post(
        "/v1/identity/lookup/entity",
        json={"alias_name": alias, "alias_mount_accessor": accessor},
        headers=headers,
    ).json()["data"]["id"]
    url = http.post(
        "/v1/identity/mfa/method/totp/admin-generate",
        json={"method_id": method_id, "entity_id": entity},
        headers=headers,
    ).json()["data"]["url"]
    totp = pyotp.parse_uri(url)
    if 30 - time.time() % 30 < 3:
        time.sleep(3.1)
    wrong = http.post(
        "/v1/sys/mfa/validate",
        json={"mfa_request_id": requirement["mfa_request_id"], "mfa_payload": {method_id: ["x"]}},
    )
    assert wrong.status_code == 403
    good = http.post(
        "/v1/sys/mfa/validate",
        json={
            "mfa_request_id": requirement["mfa_request_id"],
            "mfa_payload": {method_id: [totp.now()]},
        },
    )
    assert good.status_code == 200, good.text
    return str(good.json()["auth"]["client_token"])


@pytest.fixture(scope="module")
def tls_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServerProcess, Path, Any]]:
    directory = tmp_path_factory.mktemp("mfa-cert")
    ca = make_ca("mfa-it-ca")
    ca_path = directory / "ca.crt"
    ca_path.write_text(ca.pem)
    server_cert, server_key = issue(ca, "server", server=True).write(directory, "server")
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
    try:
        yield server, ca_path, ca
    finally:
        server.stop()


def test_cert_login_needs_mfa(tls_server: tuple[ServerProcess, Path, Any], tmp_path: Path) -> None:
    server, ca_path, ca = tls_server
    context = ssl.create_default_context(cafile=str(ca_path))
    with httpx.Client(base_url=server.addr, verify=context, timeout=30) as http:
        init = http.put("/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1}).json()
        http.put("/v1/sys/unseal", json={"key": init["keys"][0]})
        headers = {"X-Vault-Token": init["root_token"]}
        http.post("/v1/sys/auth/cert", json={"type": "cert"}, headers=headers)
        http.post(
            "/v1/auth/cert/certs/team",
            json={"certificate": ca.pem, "token_policies": ["default"]},
            headers=headers,
        )
        accessor = http.get("/v1/sys/auth", headers=headers).json()["data"]["cert/"]["accessor"]
        method_id = enforce(http, headers, ["cert"])
    cert, key = issue(ca, "alice").write(tmp_path, "alice")
    context.load_cert_chain(str(cert), str(key))
    with httpx.Client(base_url=server.addr, verify=context, timeout=30) as http:
        answer = http.post("/v1/auth/cert/login", json={"name": "team"}).json()
        token = complete(http, headers, answer, method_id, accessor, "alice")
        me = http.get("/v1/auth/token/lookup-self", headers={"X-Vault-Token": token}).json()
        assert me["data"]["meta"]["common_name"] == "alice"


def test_kubernetes_login_needs_mfa(dev_server: ServerProcess) -> None:
    key = RSAKey.generate_key(2048)
    token = service_account_token(key, "apps", "web")

    def review(path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        request = json.loads(body)
        status = {"authenticated": True, "user": {"username": "system:serviceaccount:apps:web"}}
        return 201, {**request, "status": status}

    mount = f"k8s-mfa-{uuid.uuid4().hex[:6]}"
    headers = {"X-Vault-Token": dev_server.root_token}
    ca = make_ca("k8s-mfa-ca")
    with (
        tls_files(issue(ca, "k8s-api", server=True)) as files,
        serve({}, tls=files) as api,
        httpx.Client(base_url=dev_server.addr, timeout=30) as http,
    ):
        api.routes["/apis/authentication.k8s.io/v1/tokenreviews"] = review
        http.post(f"/v1/sys/auth/{mount}", json={"type": "kubernetes"}, headers=headers)
        http.post(
            f"/v1/auth/{mount}/config",
            json={"kubernetes_host": api.url, "kubernetes_ca_cert": ca.pem},
            headers=headers,
        )
        http.post(
            f"/v1/auth/{mount}/role/web",
            json={
                "bound_service_account_names": ["web"],
                "bound_service_account_namespaces": ["apps"],
                "token_policies": ["default"],
            },
            headers=headers,
        )
        accessor = http.get("/v1/sys/auth", headers=headers).json()["data"][f"{mount}/"]["accessor"]
        method_id = enforce(http, headers, ["kubernetes"])
        try:
            answer = http.post(f"/v1/auth/{mount}/login", json={"role": "web", "jwt": token}).json()
            assert complete(http, headers, answer, method_id, accessor, "u-1")  # the SA uid
        finally:
            for name in http.request(
                "LIST", "/v1/identity/mfa/login-enforcement", headers=headers
            ).json()["data"]["keys"]:
                if name.startswith("by-type-"):
                    http.delete(f"/v1/identity/mfa/login-enforcement/{name}", headers=headers)
            http.delete(f"/v1/sys/auth/{mount}", headers=headers)
