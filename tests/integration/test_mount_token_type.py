"""Auth mounts' ``token_type`` (issue 17, item 2) over HTTP, as Vault's router applies it:
``service``/``batch`` on the mount force that kind whatever the role or user asks;
``default-service`` (the default) and ``default-batch`` pick the kind for roles that leave it
open (``default``). Set by ``sys/auth/<path>/tune`` or ``config.token_type`` when enabling,
reported by the tune read and the ``sys/auth`` listing; the token store cannot be tuned."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.serverproc import ServerProcess, free_port

SQLITE_CONFIG = """
storage "sqlite" {
  path = "data/strongroom.db"
}
listener "tcp" {
  address = "127.0.0.1:{port}"
  tls_disable = "true"
}
"""


@pytest.fixture(scope="module")
def root(dev_server: ServerProcess) -> httpx.Client:
    return dev_server.http(dev_server.root_token)


def _user(root: httpx.Client, mount: str, name: str, token_type: str | None) -> None:
    body = {"password": f"pw-{name}"}
    if token_type is not None:
        body["token_type"] = token_type
    answer = root.post(f"/v1/auth/{mount}/users/{name}", json=body)
    assert answer.status_code == 204, answer.text


def _login_kind(server: ServerProcess, mount: str, name: str) -> str:
    login = server.http().post(f"/v1/auth/{mount}/login/{name}", json={"password": f"pw-{name}"})
    assert login.status_code == 200, login.text
    auth = login.json()["auth"]
    token = auth["client_token"]
    assert token.startswith("hvb." if auth["token_type"] == "batch" else "hvs.")
    looked = server.http(token).get("/v1/auth/token/lookup-self")
    assert looked.status_code == 200 and looked.json()["data"]["type"] == auth["token_type"]
    return str(auth["token_type"])


def _tune(root: httpx.Client, mount: str, token_type: str) -> httpx.Response:
    return root.post(f"/v1/sys/auth/{mount}/tune", json={"token_type": token_type})


def _mount_type(root: httpx.Client, mount: str) -> str:
    tuned = root.get(f"/v1/sys/auth/{mount}/tune").json()["data"]["token_type"]
    listed = root.get("/v1/sys/auth").json()["data"][f"{mount}/"]["config"]["token_type"]
    assert tuned == listed
    return str(tuned)


def test_tuned_batch_forces_batch_logins(dev_server: ServerProcess, root: httpx.Client) -> None:
    assert root.post("/v1/sys/auth/mtt-b", json={"type": "userpass"}).status_code == 204
    _user(root, "mtt-b", "plain", None)
    _user(root, "mtt-b", "svc", "service")
    assert _mount_type(root, "mtt-b") == "default-service"
    assert _login_kind(dev_server, "mtt-b", "plain") == "service"
    assert _tune(root, "mtt-b", "batch").status_code == 204
    assert _mount_type(root, "mtt-b") == "batch"
    assert _login_kind(dev_server, "mtt-b", "plain") == "batch"
    # Vault's router: a mount tuned batch overrides the role's own kind
    assert _login_kind(dev_server, "mtt-b", "svc") == "batch"
    assert _tune(root, "mtt-b", "default-service").status_code == 204
    assert _login_kind(dev_server, "mtt-b", "plain") == "service"
    assert _login_kind(dev_server, "mtt-b", "svc") == "service"


def test_default_batch_mount(dev_server: ServerProcess, root: httpx.Client) -> None:
    enabled = root.post(
        "/v1/sys/auth/mtt-db", json={"type": "userpass", "config": {"token_type": "default-batch"}}
    )
    assert enabled.status_code == 204, enabled.text
    assert _mount_type(root, "mtt-db") == "default-batch"
    for name, kind, expected in (
        ("d", "default", "batch"),
        ("s", "service", "service"),
        ("b", "batch", "batch"),
    ):
        _user(root, "mtt-db", name, kind)
        assert _login_kind(dev_server, "mtt-db", name) == expected, name


def test_service_mount_overrides_a_batch_role(
    dev_server: ServerProcess, root: httpx.Client
) -> None:
    assert root.post("/v1/sys/auth/mtt-s", json={"type": "userpass"}).status_code == 204
    _user(root, "mtt-s", "b", "batch")
    _user(root, "mtt-s", "db", "default-batch")
    assert _login_kind(dev_server, "mtt-s", "b") == "batch"
    assert _tune(root, "mtt-s", "service").status_code == 204
    # Vault does not refuse: the mount's forced kind wins over the user's
    assert _login_kind(dev_server, "mtt-s", "b") == "service"
    assert _login_kind(dev_server, "mtt-s", "db") == "service"


def test_bad_token_type_changes_nothing(dev_server: ServerProcess, root: httpx.Client) -> None:
    assert root.post("/v1/sys/auth/mtt-x", json={"type": "userpass"}).status_code == 204
    assert _tune(root, "mtt-x", "default-batch").status_code == 204
    for bad in ("bogus", "default", "BATCH", 7):
        answer = root.post(
            "/v1/sys/auth/mtt-x/tune", json={"token_type": bad, "default_lease_ttl": "5m"}
        )
        assert answer.status_code == 400, (bad, answer.text)
        assert "token_type" in answer.json()["errors"][0]
    data = root.get("/v1/sys/auth/mtt-x/tune").json()["data"]
    assert data["token_type"] == "default-batch"
    assert data["default_lease_ttl"] != 300
    refused = root.post(
        "/v1/sys/auth/mtt-bad", json={"type": "userpass", "config": {"token_type": "nope"}}
    )
    assert refused.status_code == 400 and "token_type" in refused.json()["errors"][0]
    assert "mtt-bad/" not in root.get("/v1/sys/auth").json()["data"]


def test_token_store_and_secret_mounts_refuse(root: httpx.Client) -> None:
    for kind in ("batch", "default-batch", "service"):
        answer = _tune(root, "token", kind)
        assert answer.status_code == 400, answer.text
        assert "'token_type' cannot be set" in answer.json()["errors"][0]
    assert _mount_type(root, "token") == "default-service"
    secret = root.post("/v1/sys/mounts/secret/tune", json={"token_type": "batch"})
    assert secret.status_code == 400
    assert "only be modified on auth mounts" in secret.json()["errors"][0]
    assert "token_type" not in root.get("/v1/sys/mounts/secret/tune").json()["data"]


def test_tuned_token_type_survives_a_restart(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "server.hcl"
    config.write_text(SQLITE_CONFIG.replace("{port}", str(port)))
    server = ServerProcess([f"-config={config}"], port, tmp_path).start()
    try:
        init = server.client().sys.initialize(secret_shares=1, secret_threshold=1)
        key, token = init["keys"][0], init["root_token"]
        server.client().sys.submit_unseal_key(key)
        root = server.http(token)
        assert root.post("/v1/sys/auth/up", json={"type": "userpass"}).status_code == 204
        _user(root, "up", "u", None)
        assert _tune(root, "up", "batch").status_code == 204
    finally:
        server.stop()
    server = ServerProcess([f"-config={config}"], port, tmp_path).start()
    try:
        server.client().sys.submit_unseal_key(key)
        assert _mount_type(server.http(token), "up") == "batch"
        assert _login_kind(server, "up", "u") == "batch"
    finally:
        server.stop()
