"""sys/quotas/*: rate limits (path, mount, role, global; per IP or entity) and lease counts."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serverproc import ServerProcess, start_dev_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of its own: quotas are global state that would leak into other tests."""
    proc = start_dev_server(tmp_path)
    try:
        yield proc
    finally:
        proc.stop()


def test_quota_crud_and_validation(server: ServerProcess) -> None:
    http = server.http(server.root_token)
    config = http.get("/v1/sys/quotas/config").json()["data"]
    assert "sys/health" in config["rate_limit_exempt_paths"]
    assert config["enable_rate_limit_response_headers"] is False
    resp = http.post("/v1/sys/quotas/rate-limit/q1", json={"rate": 5, "path": "secret/"})
    assert resp.status_code == 204
    data = http.get("/v1/sys/quotas/rate-limit/q1").json()["data"]
    assert data["type"] == "rate-limit" and data["rate"] == 5 and data["interval"] == 1
    assert data["path"] == "secret/" and data["name"] == "q1"
    assert http.request("LIST", "/v1/sys/quotas/rate-limit").json()["data"]["keys"] == ["q1"]
    for body, message in (
        ({"rate": 0}, "'rate' is invalid"),
        ({"rate": 1, "path": "nomount/"}, "invalid mount path"),
        ({"rate": 1, "role": "r"}, "role can only be set"),
        ({"rate": 1, "path": "secret/", "role": "r"}, "role can only be set"),
        ({"rate": 1, "group_by": "planet"}, "group_by"),
    ):
        resp = http.post("/v1/sys/quotas/rate-limit/bad", json=body)
        assert resp.status_code == 400 and message in resp.json()["errors"][0], body
    assert http.get("/v1/sys/quotas/rate-limit/bad").status_code == 404
    resp = http.post("/v1/sys/quotas/lease-count/l1", json={"max_leases": 0})
    assert resp.status_code == 400
    assert http.delete("/v1/sys/quotas/rate-limit/q1").status_code == 204
    assert http.get("/v1/sys/quotas/rate-limit/q1").status_code == 404


def test_rate_limit_by_mount_with_headers(server: ServerProcess) -> None:
    http = server.http(server.root_token)
    assert (
        http.post(
            "/v1/sys/quotas/rate-limit/secret",
            json={"rate": 3, "interval": "1h", "path": "secret/"},
        ).status_code
        == 204
    )
    assert (
        http.post(
            "/v1/sys/quotas/config", json={"enable_rate_limit_response_headers": True}
        ).status_code
        == 204
    )
    http.post("/v1/secret/data/a", json={"data": {"k": "v"}})  # spends one
    first = http.get("/v1/secret/data/a")
    assert first.status_code == 200
    assert first.headers["x-ratelimit-limit"] == "3"
    assert first.headers["x-ratelimit-remaining"] == "1"
    assert 3500 < int(first.headers["x-ratelimit-reset"]) <= 3600
    assert http.get("/v1/secret/data/a").status_code == 200
    refused = http.get("/v1/secret/data/a")
    assert refused.status_code == 429
    assert refused.json() == {"errors": ['request path "secret/data/a": rate limit quota exceeded']}
    assert 3500 < int(refused.headers["retry-after"]) <= 3600
    assert refused.headers["x-ratelimit-remaining"] == "0"
    # other mounts and exempt paths are not limited
    assert http.get("/v1/sys/mounts").status_code == 200
    assert http.get("/v1/sys/health").status_code == 200
    # a more specific path quota takes over for its path only
    assert (
        http.post(
            "/v1/sys/quotas/rate-limit/team", json={"rate": 100, "path": "secret/data/team"}
        ).status_code
        == 204
    )
    assert http.get("/v1/secret/data/team/x").status_code == 404
    assert http.get("/v1/secret/data/a").status_code == 429
    # removing the quota lifts the limit
    assert http.delete("/v1/sys/quotas/rate-limit/secret").status_code == 204
    assert http.get("/v1/secret/data/a").status_code == 200


def test_global_rate_limit_with_block_interval_and_exempt_paths(server: ServerProcess) -> None:
    http = server.http(server.root_token)
    assert (
        http.post(
            "/v1/sys/quotas/config",
            json={"rate_limit_exempt_paths": ["sys/quotas/*", "sys/health"]},
        ).status_code
        == 204
    )
    assert (
        http.post(
            "/v1/sys/quotas/rate-limit/global",
            json={"rate": 2, "interval": "1s", "block_interval": "1h"},
        ).status_code
        == 204
    )
    statuses = [http.get("/v1/sys/mounts").status_code for _ in range(4)]
    assert statuses[:2] == [200, 200] and statuses[2:] == [429, 429]
    refused = http.get("/v1/auth/token/lookup-self")
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 3000
    # the exempt quota paths still work, so the operator can lift the quota
    assert http.get("/v1/sys/quotas/rate-limit/global").status_code == 200
    assert http.delete("/v1/sys/quotas/rate-limit/global").status_code == 204
    assert http.get("/v1/sys/mounts").status_code == 200


def test_role_quota_limits_only_that_roles_logins(server: ServerProcess) -> None:
    http = server.http(server.root_token)
    assert http.post("/v1/sys/auth/kubernetes", json={"type": "kubernetes"}).status_code == 204
    resp = http.post(
        "/v1/sys/quotas/rate-limit/role-a",
        json={"rate": 1, "interval": "1h", "path": "auth/kubernetes/", "role": "a"},
    )
    assert resp.status_code == 204
    anon = server.http()
    codes_a = [
        anon.post("/v1/auth/kubernetes/login", json={"role": "a", "jwt": "x"}).status_code
        for _ in range(3)
    ]
    assert codes_a[0] != 429 and codes_a[1:] == [429, 429]
    codes_b = [
        anon.post("/v1/auth/kubernetes/login", json={"role": "b", "jwt": "x"}).status_code
        for _ in range(3)
    ]
    assert 429 not in codes_b


def test_group_by_entity_gives_each_identity_its_bucket(server: ServerProcess) -> None:
    http = server.http(server.root_token)
    assert (
        http.post(
            "/v1/sys/quotas/rate-limit/per-id",
            json={"rate": 2, "interval": "1h", "path": "cubbyhole/", "group_by": "entity"},
        ).status_code
        == 204
    )
    tokens = [
        http.post("/v1/auth/token/create", json={"policies": ["default"]}).json()["auth"][
            "client_token"
        ]
        for _ in range(2)
    ]
    for token in tokens:  # same IP, different identities: each has its own two requests
        client = server.http(token)
        codes = [client.get("/v1/cubbyhole/x").status_code for _ in range(3)]
        assert codes == [404, 404, 429]


@pytest.mark.parametrize("round_", range(16))
def test_rate_limit_burst_admits_exactly_rate(round_: int, request: pytest.FixtureRequest) -> None:
    """24 concurrent reads against a limit of 5 admit exactly 5; with the rate-limit
    headers on (every other round) the admitted ones were counted down 4, 3, 2, 1, 0."""
    server: ServerProcess = request.getfixturevalue("shared_quota_server")
    http = server.http(server.root_token)
    name = f"burst{round_}"
    headers_on = round_ % 2 == 1
    assert http.post(f"/v1/sys/mounts/{name}", json={"type": "kv"}).status_code == 204
    assert http.post(f"/v1/{name}/x", json={"k": "v"}).status_code == 204
    assert (
        http.post(
            "/v1/sys/quotas/config", json={"enable_rate_limit_response_headers": headers_on}
        ).status_code
        == 204
    )
    assert (
        http.post(
            f"/v1/sys/quotas/rate-limit/{name}",
            json={"rate": 5, "interval": "1h", "path": f"{name}/"},
        ).status_code
        == 204
    )

    def hit(_: int) -> tuple[int, str | None]:
        with server.http(server.root_token) as client:
            resp = client.get(f"/v1/{name}/x")
            return resp.status_code, resp.headers.get("x-ratelimit-remaining")

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(hit, range(24)))
    codes = [code for code, _ in answers]
    assert codes.count(429) == 19 and codes.count(200) == 5
    admitted = [left for code, left in answers if code == 200]
    if headers_on:
        assert sorted(str(left) for left in admitted) == ["0", "1", "2", "3", "4"]
        assert {left for code, left in answers if code == 429} == {"0"}
    else:
        assert admitted == [None] * 5


@pytest.mark.parametrize("round_", range(8))
def test_rate_limit_burst_by_entity_admits_exactly_rate_each(
    round_: int, request: pytest.FixtureRequest
) -> None:
    """group_by = "entity" (the asynchronous road): two identities fire 12 concurrent
    reads each from one IP against a limit of 3; each gets exactly 3."""
    server: ServerProcess = request.getfixturevalue("shared_quota_server")
    http = server.http(server.root_token)
    name = f"entity{round_}"
    assert http.post(f"/v1/sys/mounts/{name}", json={"type": "kv"}).status_code == 204
    assert (
        http.post(
            f"/v1/sys/quotas/rate-limit/{name}",
            json={"rate": 3, "interval": "1h", "path": f"{name}/", "group_by": "entity"},
        ).status_code
        == 204
    )
    tokens = [
        http.post("/v1/auth/token/create", json={"policies": ["root"]}).json()["auth"][
            "client_token"
        ]
        for _ in range(2)
    ]

    def hit(i: int) -> tuple[int, int]:
        with server.http(tokens[i % 2]) as client:
            return i % 2, client.get(f"/v1/{name}/x").status_code

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(hit, range(24)))
    for who in (0, 1):
        codes = [code for whose, code in answers if whose == who]
        assert codes.count(404) == 3 and codes.count(429) == 9, (who, codes)


@pytest.fixture(scope="module")
def shared_quota_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_dev_server(tmp_path_factory.mktemp("quota"))
    try:
        yield proc
    finally:
        proc.stop()


def test_quotas_survive_seal_and_unseal(server: ServerProcess) -> None:
    http = server.http(server.root_token)
    assert (
        http.post(
            "/v1/sys/quotas/rate-limit/keep",
            json={"rate": 1, "interval": "1h", "path": "cubbyhole/"},
        ).status_code
        == 204
    )
    assert http.put("/v1/sys/seal").status_code == 204
    assert http.put("/v1/sys/unseal", json={"key": server.unseal_key}).json()["sealed"] is False
    assert http.get("/v1/sys/quotas/rate-limit/keep").json()["data"]["rate"] == 1
    codes = [http.get("/v1/cubbyhole/x").status_code for _ in range(2)]
    assert codes == [404, 429]


def test_role_quota_resolves_an_approle_login_by_role_id(server: ServerProcess) -> None:
    """AppRole logins name their role through the role ID: the quota on role "ci" limits
    logins with ci's role ID (even with a wrong secret ID), not another role's."""
    http = server.http(server.root_token)
    assert http.post("/v1/sys/auth/approle", json={"type": "approle"}).status_code == 204
    for role in ("ci", "other"):
        assert http.post(f"/v1/auth/approle/role/{role}", json={}).status_code == 204
    ids = {
        role: http.get(f"/v1/auth/approle/role/{role}/role-id").json()["data"]["role_id"]
        for role in ("ci", "other")
    }
    resp = http.post(
        "/v1/sys/quotas/rate-limit/ci-logins",
        json={"rate": 2, "interval": "1h", "path": "auth/approle/", "role": "ci"},
    )
    assert resp.status_code == 204
    anon = server.http()

    def login(role: str) -> int:
        body = {"role_id": ids[role], "secret_id": "wrong"}
        return anon.post("/v1/auth/approle/login", json=body).status_code

    assert [login("ci") for _ in range(3)][2] == 429
    assert 429 not in [login("other") for _ in range(4)]
    # an unknown role ID is not the role's: not limited by its quota
    unknown = anon.post("/v1/auth/approle/login", json={"role_id": "nope", "secret_id": "x"})
    assert unknown.status_code != 429


def test_refusals_are_audited_only_when_asked(server: ServerProcess, tmp_path: Path) -> None:
    import json
    import time

    http = server.http(server.root_token)
    log = tmp_path / "audit.log"
    resp = http.put("/v1/sys/audit/file", json={"type": "file", "options": {"file_path": str(log)}})
    assert resp.status_code == 204
    assert (
        http.post(
            "/v1/sys/quotas/rate-limit/one",
            json={"rate": 1, "interval": "1h", "path": "cubbyhole/"},
        ).status_code
        == 204
    )

    def refusals() -> int:
        entries = [json.loads(line) for line in log.read_text().splitlines() if line]
        return sum("rate limit quota exceeded" in (e.get("error") or "") for e in entries)

    assert [http.get("/v1/cubbyhole/a").status_code for _ in range(2)] == [404, 429]
    time.sleep(0.3)
    assert refusals() == 0  # Vault's default: refusals are not audited
    assert (
        http.post(
            "/v1/sys/quotas/config", json={"enable_rate_limit_audit_logging": True}
        ).status_code
        == 204
    )
    assert http.get("/v1/cubbyhole/a").status_code == 429
    deadline = time.monotonic() + 5
    while refusals() < 2 and time.monotonic() < deadline:  # a request and a response entry
        time.sleep(0.05)
    assert refusals() == 2
