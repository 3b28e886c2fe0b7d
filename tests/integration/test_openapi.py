"""sys/internal/specs/openapi: generated from the path tables, valid OpenAPI 3, and a
bounded schemathesis fuzz of a running server (destructive paths left out): no 5xx, no
traceback, every refusal in ``{"errors": [...]}``."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from openapi_spec_validator import validate

from strongroom.core.system.seal import SEAL_OPERATIONS
from tests.serverproc import ServerProcess, start_dev_server

# paths that would end the fuzz run itself (seal the server, revoke its token) or are
# fuzzed elsewhere at length; everything else is sent generated input
_EXCLUDED = (
    "/sys/seal",
    "/sys/step-down",
    "/auth/token/revoke-self",
    "/auth/token/revoke",
    "/auth/token/revoke-accessor",
    "/auth/token/revoke-orphan",
    "/sys/revoke-prefix",
    "/sys/leases/revoke-prefix",
    "/sys/revoke-force",
    "/sys/leases/revoke-force",
    "/sys/quotas",  # a fuzzed rate limit would turn the rest of the run into 429s
    "/sys/rotate",
    "/sys/generate-root",
    "/sys/rekey",
    "/sys/unseal",
    "/sys/init",
    "/sys/monitor",  # a log stream: it lasts until the client leaves
    "/sys/raw",  # raw storage writes and deletes would wreck the server under the run
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_dev_server(tmp_path_factory.mktemp("openapi"))
    try:
        http = proc.http(proc.root_token)
        http.post("/v1/sys/mounts/transit", json={"type": "transit"})
        http.post("/v1/sys/auth/approle", json={"type": "approle"})
        http.post("/v1/sys/auth/userpass", json={"type": "userpass"})
        yield proc
    finally:
        proc.stop()


def _document(server: ServerProcess, token: str) -> dict[str, Any]:
    resp = server.http(token).get("/v1/sys/internal/specs/openapi")
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def test_document_is_valid_openapi_from_every_path_table(server: ServerProcess) -> None:
    document = _document(server, server.root_token)
    validate(document)
    paths = document["paths"]
    for expected in (
        "/secret/data/{path}",
        "/transit/encrypt/{name}",
        "/auth/token/create",
        "/auth/token/roles/{role_name}",
        "/auth/approle/role/{role_name}/token-ttl",
        "/sys/policies/password/{name}/generate",
        "/sys/quotas/rate-limit/{name}",
        "/sys/mounts/{path}",
        "/sys/seal-status",
    ):
        assert expected in paths, expected
    roles = paths["/auth/token/roles/{role_name}"]
    assert {"get", "post", "delete"} <= set(roles)
    body = roles["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert {"allowed_policies", "orphan", "token_period"} <= set(body)
    # typed (the role table keeps the values unparsed, but declares their types)
    assert body["allowed_policies"] == {"type": "array", "items": {"type": "string"}, "default": []}
    assert body["orphan"] == {"type": "boolean", "default": False}
    assert body["renewable"] == {"type": "boolean", "default": True}
    assert body["token_type"]["enum"] == [
        "service",
        "batch",
        "default-service",
        "default-batch",
        "default",
    ]
    assert body["token_type"]["default"] == "default-service"
    assert body["token_period"] == {"type": "string", "format": "duration"}
    assert body["period"]["deprecated"] is True
    assert body["token_num_uses"] == {"type": "integer", "default": 0}
    assert all(schema.get("type") for schema in body.values()), body
    listing = paths["/auth/token/roles"]["get"]["parameters"]
    assert any(p["name"] == "list" for p in listing)
    assert paths["/sys/seal-status"]["x-vault-unauthenticated"] is True
    # every operation served before the router is described (core/system/seal.py)
    for seal_path in SEAL_OPERATIONS:
        assert "/" + seal_path in paths, seal_path
    assert paths["/sys/audit/{path}"].get("x-vault-sudo") is True
    # a token sees only what its policies allow
    http = server.http(server.root_token)
    http.put(
        "/v1/sys/policies/acl/spec-reader",
        json={
            "policy": 'path "sys/internal/specs/openapi" { capabilities = ["read"] }\n'
            'path "transit/*" { capabilities = ["update"] }'
        },
    )
    token = http.post("/v1/auth/token/create", json={"policies": ["spec-reader"]}).json()
    limited = _document(server, token["auth"]["client_token"])["paths"]
    assert "/transit/encrypt/{name}" in limited and "/secret/data/{path}" not in limited
    assert server.http().get("/v1/sys/internal/specs/openapi").status_code == 403


def _check(response: httpx.Response | Any, method: str, path: str) -> None:
    status = response.status_code
    assert status < 500 or status == 503, f"{method} {path}: {status} {response.text[:300]}"
    assert "Traceback" not in response.text, f"{method} {path}"
    if status >= 400 and response.content:
        body = response.json()
        oauth = re.search(r"^/identity/oidc/provider/[^/]+/(authorize|token|userinfo)$", path)
        if oauth and isinstance(body, dict) and isinstance(body.get("error"), str):
            return  # OAuth 2.0 endpoints answer RFC 6749's {"error", "error_description"}
        assert isinstance(body, dict) and isinstance(body.get("errors"), list), (
            f"{method} {path}: {response.text[:200]}"
        )


def test_bounded_fuzz_of_the_running_server(server: ServerProcess, tmp_path: Path) -> None:
    document = _document(server, server.root_token)
    schema = schemathesis.openapi.from_dict(document)
    base = server.addr + "/v1"
    headers = {"X-Vault-Token": server.root_token}
    operations = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.startswith(_EXCLUDED):
            continue
        operations.append(operation)
    assert len(operations) > 200
    started = time.monotonic()
    sent = 0
    with httpx.Client(timeout=30) as client:
        for operation in operations:

            @settings(
                max_examples=2,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy())
            def run(case: schemathesis.Case) -> None:
                nonlocal sent
                kwargs = case.as_transport_kwargs(base_url=base, headers=headers)
                kwargs.pop("verify", None)
                method = kwargs.pop("method")
                url = kwargs.pop("url")
                try:
                    response = client.request(
                        method,
                        url,
                        params=kwargs.get("params"),
                        headers=kwargs.get("headers"),
                        json=kwargs.get("json"),
                        content=kwargs.get("data")
                        if isinstance(kwargs.get("data"), bytes)
                        else None,
                    )
                except httpx.TimeoutException:
                    pytest.fail(f"{method} {case.operation.path}: no answer in 30 s")
                sent += 1
                _check(response, method, case.operation.path)

            run()
    assert sent >= len(operations)
    # the server is still healthy and serving after the fuzz
    assert server.http(server.root_token).get("/v1/sys/mounts").status_code == 200
    assert time.monotonic() - started < 300
