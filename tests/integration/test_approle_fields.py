"""AppRole's per-field endpoints (role/<name>/<field>) over HTTP: read, update, reset."""

from __future__ import annotations

import concurrent.futures

import httpx
import pytest

from tests.serverproc import ServerProcess

MOUNT = "approle-fields"

# (suffix, body of an update, what a read then answers, what a read answers after delete)
CASES = [
    (
        "policies",
        {"token_policies": "b,a"},
        {"policies": ["a", "b"], "token_policies": ["a", "b"]},
        {"policies": [], "token_policies": []},
    ),
    (
        "policies",
        {"policies": ["c"]},
        {"policies": ["c"], "token_policies": ["c"]},
        {"policies": [], "token_policies": []},
    ),
    (
        "secret-id-bound-cidrs",
        {"secret_id_bound_cidrs": ["10.0.0.0/8"]},
        {"secret_id_bound_cidrs": ["10.0.0.0/8"]},
        {"secret_id_bound_cidrs": []},
    ),
    (
        "bound-cidr-list",
        {"bound_cidr_list": "10.1.0.0/16"},
        {"bound_cidr_list": ["10.1.0.0/16"]},
        {"bound_cidr_list": []},
    ),
    (
        "token-bound-cidrs",
        {"token_bound_cidrs": ["127.0.0.1/32"]},
        {"token_bound_cidrs": ["127.0.0.1/32"]},
        {"token_bound_cidrs": []},
    ),
    ("bind-secret-id", {"bind_secret_id": False}, None, {"bind_secret_id": True}),
    ("secret-id-num-uses", {"secret_id_num_uses": 5}, {"secret_id_num_uses": 5}, None),
    ("secret-id-ttl", {"secret_id_ttl": "10m"}, {"secret_id_ttl": 600}, {"secret_id_ttl": 0}),
    ("period", {"period": "1h"}, {"period": 3600, "token_period": 3600}, None),
    ("period", {"token_period": 60}, {"period": 60, "token_period": 60}, None),
    ("token-num-uses", {"token_num_uses": 3}, {"token_num_uses": 3}, {"token_num_uses": 0}),
    ("token-ttl", {"token_ttl": "5m"}, {"token_ttl": 300}, {"token_ttl": 0}),
    ("token-max-ttl", {"token_max_ttl": "2h"}, {"token_max_ttl": 7200}, {"token_max_ttl": 0}),
]


@pytest.fixture(scope="module")
def http(dev_server: ServerProcess) -> httpx.Client:
    client = dev_server.http(dev_server.root_token)
    assert client.post(f"/v1/sys/auth/{MOUNT}", json={"type": "approle"}).status_code == 204
    return client


def _role(http: httpx.Client, name: str) -> None:
    assert http.post(f"/v1/auth/{MOUNT}/role/{name}", json={}).status_code == 204


@pytest.mark.parametrize(("suffix", "body", "after_update", "after_delete"), CASES)
def test_field_endpoint(
    http: httpx.Client,
    suffix: str,
    body: dict[str, object],
    after_update: dict[str, object] | None,
    after_delete: dict[str, object] | None,
) -> None:
    name = "f-" + suffix
    _role(http, name)
    url = f"/v1/auth/{MOUNT}/role/{name}/{suffix}"
    if suffix == "bind-secret-id":
        # turning bind_secret_id off needs another constraint first (Vault's rule)
        resp = http.post(url, json=body)
        assert resp.status_code == 400 and "at least one constraint" in resp.json()["errors"][0]
        http.post(
            f"/v1/auth/{MOUNT}/role/{name}/secret-id-bound-cidrs",
            json={"secret_id_bound_cidrs": "10.0.0.0/8"},
        )
        after_update = {"bind_secret_id": False}
    assert http.post(url, json=body).status_code == 204
    if after_update is not None:
        assert http.get(url).json()["data"] == after_update
    # the full role read agrees
    role = http.get(f"/v1/auth/{MOUNT}/role/{name}").json()["data"]
    for key, value in (after_update or {}).items():
        if key in role:
            assert role[key] == value
    assert http.delete(url).status_code == 204
    if after_delete is not None:
        assert http.get(url).json()["data"] == after_delete


def test_local_secret_ids_is_read_only(http: httpx.Client) -> None:
    assert (
        http.post(f"/v1/auth/{MOUNT}/role/loc", json={"local_secret_ids": True}).status_code == 204
    )
    url = f"/v1/auth/{MOUNT}/role/loc/local-secret-ids"
    assert http.get(url).json()["data"] == {"local_secret_ids": True}
    assert http.post(url, json={"local_secret_ids": False}).status_code == 405


def test_field_endpoint_errors(http: httpx.Client) -> None:
    _role(http, "errs")
    base = f"/v1/auth/{MOUNT}/role/errs"
    for suffix, body in (
        ("token-ttl", {}),  # nothing to set
        ("token-ttl", {"token_ttl": "soon"}),
        ("secret-id-num-uses", {"secret_id_num_uses": -1}),
        ("token-bound-cidrs", {"token_bound_cidrs": ["nope"]}),
        ("token-ttl", {"token_ttl": "3h", "token_max_ttl": "1h"}),  # max_ttl ignored here
    ):
        resp = http.post(f"{base}/{suffix}", json=body)
        if suffix == "token-ttl" and "token_max_ttl" in body:
            assert resp.status_code == 204  # only token_ttl is taken from the body
            continue
        assert resp.status_code == 400, (suffix, body)
        assert resp.json()["errors"]
    missing = http.post(f"/v1/auth/{MOUNT}/role/ghost/token-ttl", json={"token_ttl": 5})
    assert missing.status_code == 400 and "does not exist" in missing.json()["errors"][0]
    assert http.get(f"/v1/auth/{MOUNT}/role/ghost/token-ttl").status_code == 404
    # the failed update did not create the role
    assert http.get(f"/v1/auth/{MOUNT}/role/ghost").status_code == 404


@pytest.mark.parametrize("round_", range(10))
def test_concurrent_field_updates_all_land(
    dev_server: ServerProcess, http: httpx.Client, round_: int
) -> None:
    name = f"burst-{round_}"
    _role(http, name)
    updates = [
        ("token-ttl", {"token_ttl": 100}),
        ("token-max-ttl", {"token_max_ttl": 1000}),
        ("token-num-uses", {"token_num_uses": 4}),
        ("secret-id-ttl", {"secret_id_ttl": 50}),
        ("secret-id-num-uses", {"secret_id_num_uses": 2}),
        ("period", {"period": 30}),
        ("policies", {"policies": "p"}),
    ]

    def send(item: tuple[str, dict[str, object]]) -> int:
        with dev_server.http(dev_server.root_token) as client:
            return client.post(f"/v1/auth/{MOUNT}/role/{name}/{item[0]}", json=item[1]).status_code

    with concurrent.futures.ThreadPoolExecutor(len(updates)) as pool:
        assert set(pool.map(send, updates)) == {204}
    role = http.get(f"/v1/auth/{MOUNT}/role/{name}").json()["data"]
    assert role["token_ttl"] == 100 and role["token_max_ttl"] == 1000
    assert role["token_num_uses"] == 4 and role["secret_id_ttl"] == 50
    assert role["secret_id_num_uses"] == 2 and role["token_period"] == 30
    assert role["token_policies"] == ["p"]
