"""Batch tokens (issue 17, item 2) over HTTP, against Vault's answers (confirmed with
``bao server -dev``): ``hvb.`` tokens that storage never holds, not renewable, not
revocable on their own, unable to create tokens or use a cubbyhole, bounded by their
parent's life; minted by ``type: batch`` on create, by token roles and by auth methods'
``token_type``."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serverproc import ServerProcess

POLICY = (
    'path "secret/data/batch/*" { capabilities = ["read"] }\n'
    'path "auth/token/create" { capabilities = ["create", "update"] }'
)


@pytest.fixture(scope="module")
def root(dev_server: ServerProcess) -> httpx.Client:
    http = dev_server.http(dev_server.root_token)
    assert http.put("/v1/sys/policies/acl/batch-reader", json={"policy": POLICY}).is_success
    written = http.post("/v1/secret/data/batch/s", json={"data": {"v": "batch-secret"}})
    assert written.status_code == 200
    return http


def _create(http: httpx.Client, **body: Any) -> httpx.Response:
    return http.post("/v1/auth/token/create", json=body)


def _batch(root: httpx.Client, **body: Any) -> dict[str, Any]:
    answer = _create(root, type="batch", policies=["batch-reader"], **body)
    assert answer.status_code == 200, answer.text
    auth: dict[str, Any] = answer.json()["auth"]
    return auth


def test_batch_token_shape_and_use(dev_server: ServerProcess, root: httpx.Client) -> None:
    auth = _batch(root, ttl="10m", meta={"team": "a"}, display_name="bt")
    token = auth["client_token"]
    assert token.startswith("hvb.") and len(token) > 100
    assert auth["token_type"] == "batch" and auth["renewable"] is False
    assert auth["accessor"] == "" and auth["orphan"] is False
    assert 590 <= auth["lease_duration"] <= 600
    user = dev_server.http(token)
    read = user.get("/v1/secret/data/batch/s")
    assert read.status_code == 200 and read.json()["data"]["data"] == {"v": "batch-secret"}
    data = user.get("/v1/auth/token/lookup-self").json()["data"]
    assert data["type"] == "batch" and data["id"] == token and data["accessor"] == ""
    assert data["meta"] == {"team": "a"} and data["display_name"] == "token-bt"
    assert data["policies"] == ["batch-reader", "default"] and data["renewable"] is False
    by_root = root.post("/v1/auth/token/lookup", json={"token": token})
    assert by_root.status_code == 200 and by_root.json()["data"]["type"] == "batch"


def test_batch_tokens_are_not_stored(dev_server: ServerProcess, root: httpx.Client) -> None:
    db = Path(dev_server.workdir) / "dev" / "dev.db"
    with sqlite3.connect(db) as conn:
        before = conn.execute("SELECT count(*) FROM entries").fetchone()[0]
    for _ in range(5):
        _batch(root, ttl="10m")
    with sqlite3.connect(db) as conn:
        after = conn.execute("SELECT count(*) FROM entries").fetchone()[0]
    assert after == before


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"period": "1h"}, 'batch tokens cannot have "period" set'),
        ({"num_uses": 3}, 'batch tokens cannot have "num_uses" set'),
        ({"explicit_max_ttl": "1h"}, 'batch tokens cannot have "explicit_max_ttl" set'),
    ],
)
def test_batch_refuses_what_vault_refuses(
    root: httpx.Client, body: dict[str, Any], message: str
) -> None:
    answer = _create(root, type="batch", policies=["batch-reader"], **body)
    assert answer.status_code == 400
    assert answer.json() == {"errors": [message]}


def test_no_root_batch_tokens(root: httpx.Client) -> None:
    answer = _create(root, type="batch")  # inherits root's policies
    assert answer.status_code == 400
    assert answer.json() == {"errors": ["batch tokens cannot be root tokens"]}


def test_batch_cannot_renew_revoke_create_or_use_cubbyhole(
    dev_server: ServerProcess, root: httpx.Client
) -> None:
    token = _batch(root, ttl="10m")["client_token"]
    user = dev_server.http(token)
    cases = [
        (user.post("/v1/auth/token/create", json={}), "batch tokens cannot create more tokens"),
        (user.post("/v1/auth/token/renew-self", json={}), "batch tokens cannot be renewed"),
        (
            root.post("/v1/auth/token/renew", json={"token": token}),
            "batch tokens cannot be renewed",
        ),
        (
            root.post("/v1/auth/token/revoke", json={"token": token}),
            "batch tokens cannot be revoked",
        ),
        (user.post("/v1/auth/token/revoke-self"), "batch tokens cannot be revoked"),
        (
            user.post("/v1/cubbyhole/x", json={"a": "b"}),
            "cubbyhole operations are only supported by 'service' type tokens",
        ),
    ]
    for answer, message in cases:
        assert answer.status_code == 400, answer.text
        assert answer.json() == {"errors": [message]}
    assert user.get("/v1/auth/token/lookup-self").status_code == 200  # still works


def test_batch_token_dies_with_its_parent(dev_server: ServerProcess, root: httpx.Client) -> None:
    parent = _create(root, policies=["batch-reader"], ttl="1h").json()["auth"]["client_token"]
    child = _create(dev_server.http(parent), type="batch", ttl="30m")
    assert child.status_code == 200, child.text
    batch = child.json()["auth"]["client_token"]
    assert dev_server.http(batch).get("/v1/secret/data/batch/s").status_code == 200
    assert root.post("/v1/auth/token/revoke", json={"token": parent}).status_code == 204
    assert dev_server.http(batch).get("/v1/secret/data/batch/s").status_code == 403


def test_orphan_batch_and_expiry(dev_server: ServerProcess, root: httpx.Client) -> None:
    orphan = root.post(
        "/v1/auth/token/create-orphan",
        json={"type": "batch", "ttl": "2s", "policies": ["batch-reader"]},
    ).json()["auth"]
    assert orphan["orphan"] is True
    token = orphan["client_token"]
    assert dev_server.http(token).get("/v1/auth/token/lookup-self").status_code == 200
    deadline = time.monotonic() + 10
    while dev_server.http(token).get("/v1/auth/token/lookup-self").status_code == 200:
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_tampered_batch_token_is_refused(dev_server: ServerProcess, root: httpx.Client) -> None:
    token = _batch(root, ttl="10m")["client_token"]
    flipped = token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]
    for bad in (flipped, token[:-10], "hvb.", "hvb.!!!!", token + "AAAA"):
        assert dev_server.http(bad).get("/v1/auth/token/lookup-self").status_code == 403


def test_batch_tokens_from_auth_methods(dev_server: ServerProcess, root: httpx.Client) -> None:
    assert root.post("/v1/sys/auth/batch-up", json={"type": "userpass"}).status_code == 204
    assert root.post(
        "/v1/auth/batch-up/users/bee",
        json={"password": "pw-bee", "token_type": "batch", "token_policies": ["batch-reader"]},
    ).is_success
    assert root.get("/v1/auth/batch-up/users/bee").json()["data"]["token_type"] == "batch"
    login = dev_server.http().post("/v1/auth/batch-up/login/bee", json={"password": "pw-bee"})
    assert login.status_code == 200, login.text
    auth = login.json()["auth"]
    assert auth["client_token"].startswith("hvb.") and auth["token_type"] == "batch"
    assert auth["renewable"] is False
    assert dev_server.http(auth["client_token"]).get("/v1/secret/data/batch/s").status_code == 200
    # approle role with default-batch
    assert root.post("/v1/sys/auth/batch-ar", json={"type": "approle"}).status_code == 204
    assert root.post(
        "/v1/auth/batch-ar/role/r",
        json={"token_type": "default-batch", "token_policies": ["batch-reader"]},
    ).is_success
    role_id = root.get("/v1/auth/batch-ar/role/r/role-id").json()["data"]["role_id"]
    secret_id = root.post("/v1/auth/batch-ar/role/r/secret-id").json()["data"]["secret_id"]
    login = dev_server.http().post(
        "/v1/auth/batch-ar/login", json={"role_id": role_id, "secret_id": secret_id}
    )
    assert login.status_code == 200 and login.json()["auth"]["client_token"].startswith("hvb.")


def test_batch_through_a_token_role(dev_server: ServerProcess, root: httpx.Client) -> None:
    role = {"token_type": "batch", "allowed_policies": ["batch-reader"], "orphan": True}
    assert root.post("/v1/auth/token/roles/batchy", json=role).is_success
    answer = root.post("/v1/auth/token/create/batchy", json={"policies": ["batch-reader"]})
    assert answer.status_code == 200, answer.text
    auth = answer.json()["auth"]
    assert auth["client_token"].startswith("hvb.") and auth["token_type"] == "batch"
    assert auth["orphan"] is True
