"""The UI's server endpoints over real HTTP: sys/config/ui/headers applied to /ui answers
(never weakening the CSP or the security headers), and sys/audit-verify/<path> per chain,
across rotated files, held to the server-kept last verified checkpoint."""

from __future__ import annotations

import http.client
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from strongroom.http.static import CSP
from tests.serverproc import ServerProcess, start_dev_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_dev_server(tmp_path_factory.mktemp("ui-endpoints"))
    try:
        yield proc
    finally:
        proc.stop()


def ui_headers(server: ServerProcess, path: str = "/ui/") -> list[tuple[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        return [(k.lower(), v) for k, v in resp.getheaders()]
    finally:
        conn.close()


def values(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [v for k, v in headers if k == name]


def test_ui_headers_are_sent_and_cannot_weaken_the_ui(server: ServerProcess) -> None:
    http = server.http(server.root_token)
    put = http.post("/v1/sys/config/ui/headers/X-Custom-Header", json={"values": ["one", "two"]})
    assert put.status_code == 204, put.text
    extra_csp = "frame-ancestors https://intranet.example; img-src 'none'"
    assert (
        http.post(
            "/v1/sys/config/ui/headers/Content-Security-Policy", json={"values": [extra_csp]}
        ).status_code
        == 204
    )
    try:
        for path in ("/ui/", "/ui/js/app.js", "/ui/missing"):
            headers = ui_headers(server, path)
            assert values(headers, "x-custom-header") == ["one", "two"], path
            # the built-in policy is still sent as it is; the custom one is a second policy
            assert values(headers, "content-security-policy") == [extra_csp, CSP], path
            assert values(headers, "x-frame-options") == ["DENY"]
            assert values(headers, "x-content-type-options") == ["nosniff"]
        # the API's answers do not carry UI headers
        api = http.get("/v1/sys/health")
        assert "x-custom-header" not in api.headers
        read = http.get("/v1/sys/config/ui/headers/x-custom-header?multivalue=true").json()
        assert read["data"]["values"] == ["one", "two"]
        listed = http.request("LIST", "/v1/sys/config/ui/headers").json()["data"]["keys"]
        assert set(listed) == {"X-Custom-Header", "Content-Security-Policy"}
        refused = {
            "X-Frame-Options": ["ALLOWALL"],
            "x-content-type-options": ["sniff"],
            "Referrer-Policy": ["unsafe-url"],
            "Content-Type": ["text/plain"],
            "Set-Cookie": ["a=b"],
            "Content-Security-Policy": ["script-src 'self' 'unsafe-inline'"],
            "X-Vault-Token": ["x"],
            "Bad Name": ["x"],
            "X-Split": ["a\r\nInjected: yes"],
        }
        for name, vals in refused.items():
            resp = http.post(f"/v1/sys/config/ui/headers/{name}", json={"values": vals})
            assert resp.status_code == 400, (name, resp.text)
            assert resp.json()["errors"], name
        after = ui_headers(server)
        assert values(after, "content-security-policy") == [extra_csp, CSP]
        assert values(after, "x-frame-options") == ["DENY"]
        assert "injected" not in dict(after)
        # sudo only (sys/config/*)
        made = http.post("/v1/auth/token/create", json={"policies": ["default"]}).json()
        plain = server.http(made["auth"]["client_token"])
        assert (
            plain.post("/v1/sys/config/ui/headers/X-Other", json={"values": ["v"]}).status_code
            == 403
        )
    finally:
        http.delete("/v1/sys/config/ui/headers/X-Custom-Header")
        http.delete("/v1/sys/config/ui/headers/content-security-policy")
    headers = ui_headers(server)
    assert values(headers, "x-custom-header") == []
    assert values(headers, "content-security-policy") == [CSP]


@pytest.mark.parametrize("round_", range(10))
def test_concurrent_ui_header_writes_are_all_kept(server: ServerProcess, round_: int) -> None:
    names = [f"X-Burst-{round_}-{i}" for i in range(12)]

    def write(name: str) -> int:
        with server.http(server.root_token) as http:
            resp = http.post(f"/v1/sys/config/ui/headers/{name}", json={"values": [name]})
            return resp.status_code

    with ThreadPoolExecutor(12) as pool:
        assert list(pool.map(write, names)) == [204] * 12
    http = server.http(server.root_token)
    listed = http.request("LIST", "/v1/sys/config/ui/headers").json()["data"]["keys"]
    assert set(names) <= set(listed)
    sent = dict(ui_headers(server))
    assert all(sent[name.lower()] == name for name in names)
    with ThreadPoolExecutor(12) as pool:
        list(pool.map(lambda n: http.delete(f"/v1/sys/config/ui/headers/{n}"), names))
    assert not set(names) & set(
        (http.request("LIST", "/v1/sys/config/ui/headers").json().get("data") or {}).get("keys", [])
    )


# ----- sys/audit-verify ---------------------------------------------------------------------


def lines_of(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.02)


OPTIONS = {"checkpoint_entries": "3"}


def enable(http: httpx.Client, name: str, log: Path) -> None:
    options = {"file_path": str(log), **OPTIONS}
    resp = http.put(f"/v1/sys/audit/{name}", json={"type": "file", "options": options})
    assert resp.status_code == 204, resp.text


@pytest.fixture
def two_writers(server: ServerProcess, tmp_path: Path) -> Iterator[tuple[httpx.Client, Path]]:
    """Two writers' chains in one file: device ``va`` wrote it first, then ``vb`` (a new
    device on an existing log starts a chain of its own) goes on appending to it."""
    http = server.http(server.root_token)
    log = tmp_path / "audit.log"
    enable(http, "va", log)
    write_some(http, 3, "va")
    assert http.delete("/v1/sys/audit/va").status_code == 204
    enable(http, "vb", log)
    try:
        yield http, log
    finally:
        http.delete("/v1/sys/audit/vb")


def write_some(http: httpx.Client, n: int, tag: str) -> None:
    for i in range(n):
        assert http.post(f"/v1/secret/data/{tag}/{i}", json={"data": {"v": i}}).status_code == 200


def test_audit_verify_per_chain_rotation_and_last_verified_checkpoint(
    server: ServerProcess, two_writers: tuple[httpx.Client, Path]
) -> None:
    http, log = two_writers
    write_some(http, 4, "first")
    report = http.get("/v1/sys/audit-verify/vb").json()["data"]
    assert report["verified"] is True, report
    assert len(report["chains"]) == 2
    assert {c["chain"] for c in report["chains"]} == {
        line["chain"] for line in lines_of(log) if "chain" in line
    }
    assert all(c["verified"] and c["checkpoints"] >= 1 for c in report["chains"])
    assert all(c["last_verified"] is None for c in report["chains"])
    assert report["recorded"] is False and report["files"] == [str(log)]
    recorded = http.post("/v1/sys/audit-verify/vb").json()["data"]
    assert recorded["recorded"] is True
    kept = {c["chain"]: c["last_verified"]["seq"] for c in recorded["chains"]}
    assert kept == {c["chain"]: c["last_checkpoint"]["seq"] for c in recorded["chains"]}
    # rotation: the old file is renamed, SIGHUP reopens, the new file starts with a link
    rotated = log.with_name("audit.log.1")
    log.rename(rotated)
    assert server.proc is not None
    server.proc.send_signal(signal.SIGHUP)

    def reopened() -> bool:
        write_some(http, 1, "rotating")
        return log.exists() and b'"type":"link"' in log.read_bytes()

    wait_for(reopened)
    write_some(http, 4, "second")
    report = http.post("/v1/sys/audit-verify/vb").json()["data"]
    assert report["verified"] is True, report
    assert report["files"] == [str(rotated), str(log)]
    # search reads the rotated files too when asked (oldest first)
    query = {"request_path": "secret/data/*", "operation": "create", "limit": 1000}
    found = http.post("/v1/sys/audit-search/vb", json={**query, "rotated": True}).json()
    paths = [(m["file"], m["entry"]["request"]["path"]) for m in found["data"]["matches"]]
    assert found["data"]["files"] == [str(rotated), str(log)]
    assert (str(rotated), "secret/data/first/0") in paths
    assert (str(log), "secret/data/second/3") in paths
    order = [found["data"]["files"].index(file) for file, _ in paths]
    assert order == sorted(order)  # the rotated file's entries first
    current = http.post("/v1/sys/audit-search/vb", json=query).json()["data"]
    assert {m["file"] for m in current["matches"]} == {str(log)}
    # va's chain ended in the rotated file; vb's goes on across both
    assert sorted(c["files"] for c in report["chains"]) == [1, 2]
    later = {c["chain"]: c["last_verified"]["seq"] for c in report["chains"]}
    going_on = next(c["chain"] for c in report["chains"] if c["files"] == 2)
    assert later[going_on] > kept[going_on]
    assert all(later[chain] >= seq for chain, seq in kept.items())
    # the current file cut back to just after its first checkpoint: each chain still
    # verifies from the file alone, but the recorded checkpoints are gone
    raw = log.read_bytes().splitlines(keepends=True)
    first = next(i for i, line in enumerate(raw) if b'"type":"checkpoint"' in line)
    http.delete("/v1/sys/audit/vb")  # no writer while the file is cut
    log.write_bytes(b"".join(raw[: first + 1]))
    enable(http, "vb", log)
    report = http.get("/v1/sys/audit-verify/vb").json()["data"]
    assert report["verified"] is False
    assert "missing" in report["broken"]["message"] or "removed" in report["broken"]["message"]
    # forgetting the records (an archived log, on purpose) accepts the files again
    assert http.delete("/v1/sys/audit-verify/vb").status_code == 204
    report = http.get("/v1/sys/audit-verify/vb").json()["data"]
    assert all(c["last_verified"] is None for c in report["chains"])
    # sudo only, for every verb
    made = http.post("/v1/auth/token/create", json={"policies": ["default"]}).json()
    plain = server.http(made["auth"]["client_token"])
    assert plain.get("/v1/sys/audit-verify/vb").status_code == 403
    assert plain.post("/v1/sys/audit-verify/vb").status_code == 403
    assert plain.delete("/v1/sys/audit-verify/vb").status_code == 403


def test_audit_verify_finds_a_chain_removed_from_a_shared_file(
    server: ServerProcess, two_writers: tuple[httpx.Client, Path]
) -> None:
    http, log = two_writers
    write_some(http, 4, "chains")
    recorded = http.post("/v1/sys/audit-verify/vb").json()["data"]
    assert recorded["verified"] and recorded["recorded"], recorded
    victim = recorded["chains"][0]["chain"]
    http.delete("/v1/sys/audit/vb")
    # every line of one writer removed from the shared file: the file alone still verifies
    mark = b'"chain":"' + victim.encode() + b'"'
    kept = [line for line in log.read_bytes().splitlines(keepends=True) if mark not in line]
    log.write_bytes(b"".join(kept))
    enable(http, "vb", log)
    report = http.get("/v1/sys/audit-verify/vb").json()["data"]
    assert report["verified"] is False
    gone = next(c for c in report["chains"] if c["chain"] == victim)
    assert gone["lines"] == 0 and "removed" in gone["broken"]["message"]
    assert http.delete("/v1/sys/audit-verify/vb").status_code == 204


@pytest.mark.parametrize("round_", range(5))
def test_concurrent_records_never_move_the_checkpoint_back(
    server: ServerProcess, two_writers: tuple[httpx.Client, Path], round_: int
) -> None:
    http, _ = two_writers

    def verify_and_record(i: int) -> dict[str, int]:
        with server.http(server.root_token) as client:
            client.post(f"/v1/secret/data/burst/{round_}-{i}", json={"data": {"v": i}})
            data = client.post("/v1/sys/audit-verify/vb").json()["data"]
            assert data["verified"], data
            return {c["chain"]: c["last_checkpoint"]["seq"] for c in data["chains"]}

    with ThreadPoolExecutor(8) as pool:
        seen = list(pool.map(verify_and_record, range(8)))
    stored = http.get("/v1/sys/audit-verify/vb").json()["data"]
    for chain in stored["chains"]:
        best = max(s.get(chain["chain"], 0) for s in seen)
        assert chain["last_verified"]["seq"] == best
    assert http.delete("/v1/sys/audit-verify/vb").status_code == 204
