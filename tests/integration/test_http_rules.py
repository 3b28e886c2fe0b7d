"""HTTP-level rules: envelope, methods, bad input, limits, path tricks."""

from __future__ import annotations

import socket

import httpx

from tests.serverproc import ServerProcess


def test_bad_json_is_400_and_changes_nothing(dev_server: ServerProcess) -> None:
    http = dev_server.http(dev_server.root_token)
    for body in (b"{not json", b"[1,2]", b'"str"', b'{"a": NaN}', b"{" * 400 + b"}" * 400):
        response = http.post("/v1/secret/data/badjson", content=body)
        assert response.status_code == 400, body[:20]
        assert response.json()["errors"]
    assert http.get("/v1/secret/data/badjson").status_code == 404


def test_huge_numbers_and_wrong_types(dev_server: ServerProcess) -> None:
    http = dev_server.http(dev_server.root_token)
    response = http.post(
        "/v1/secret/data/n", content=b'{"data": {"a": 1}, "options": {"cas": 1e999}}'
    )
    assert response.status_code == 400
    response = http.post("/v1/secret/config", json={"max_versions": "many"})
    assert response.status_code == 400


def test_oversized_body_413(dev_server: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", dev_server.port), timeout=10) as sock:
        sock.sendall(
            f"POST /v1/secret/data/big HTTP/1.1\r\nHost: x\r\nX-Vault-Token: "
            f"{dev_server.root_token}\r\nContent-Length: {64 << 20}\r\n\r\n{{}}".encode()
        )
        head = sock.recv(65536).split(b"\r\n", 1)[0]
    assert int(head.split()[1]) == 413
    http = dev_server.http(dev_server.root_token)
    assert http.post("/v1/secret/data/big", content=b" " * (33 << 20)).status_code == 413


def _raw_status(server: ServerProcess, method: str, target: str, token: str) -> int:
    """Send a request line as-is (HTTP clients normalise dot segments away)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            f"{method} {target} HTTP/1.1\r\nHost: x\r\nX-Vault-Token: {token}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        head = sock.recv(65536).split(b"\r\n", 1)[0]
    return int(head.split()[1])


def test_dot_segments_rejected_before_acl(dev_server: ServerProcess) -> None:
    for target in (
        "/v1/secret/data/../../sys/mounts",
        "/v1/secret/data/./x",
        "/v1/secret//data/x",
        "/v1/secret/data/%2e%2e/x",
        "/v1/secret/data/a%00b",
    ):
        assert _raw_status(dev_server, "GET", target, dev_server.root_token) == 400, target
    # an unprivileged token gets the same 400 (the check runs before the ACL)
    assert _raw_status(dev_server, "GET", "/v1/sys/../sys/mounts", "") == 400


def test_list_method_and_query(dev_server: ServerProcess) -> None:
    http = dev_server.http(dev_server.root_token)
    http.post("/v1/secret/data/listme/a", json={"data": {"x": "1"}})
    by_method = http.request("LIST", "/v1/secret/metadata/listme")
    by_query = http.get("/v1/secret/metadata/listme", params={"list": "true"})
    assert by_method.status_code == by_query.status_code == 200
    assert by_method.json()["data"]["keys"] == by_query.json()["data"]["keys"] == ["a"]


def test_bearer_token_and_envelope(dev_server: ServerProcess) -> None:
    http = httpx.Client(
        base_url=dev_server.addr, headers={"Authorization": f"Bearer {dev_server.root_token}"}
    )
    body = http.get("/v1/auth/token/lookup-self").json()
    for key in (
        "request_id",
        "lease_id",
        "renewable",
        "lease_duration",
        "data",
        "wrap_info",
        "warnings",
        "auth",
    ):
        assert key in body
    assert http.get("/nope").status_code == 404
    assert http.delete("/v1/sys/key-status").status_code == 405
    assert http.request("BREW", "/v1/secret/data/x").status_code in (400, 405)


def test_unknown_mount_is_404_for_root_403_for_others(dev_server: ServerProcess) -> None:
    assert dev_server.http(dev_server.root_token).get("/v1/nomount/x").status_code == 404
    assert dev_server.http().get("/v1/nomount/x").status_code == 403
    assert dev_server.http("hvs.bogus").get("/v1/nomount/x").status_code == 403
