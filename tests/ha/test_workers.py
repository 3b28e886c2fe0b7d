"""``workers = 2`` on SQLite: two processes share the listener; one active, one performance
standby; writes reaching the standby are forwarded to the active over its private socket."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.ha.cluster import wait_until
from tests.serverproc import ServerProcess, free_port

WORKERS_CONFIG = """
storage "sqlite" {{
  path = "{db}"
}}
listener "tcp" {{
  address = "127.0.0.1:{port}"
  tls_disable = true
}}
api_addr = "http://127.0.0.1:{port}"
workers = 2
disable_mlock = true
"""


def fresh(server: ServerProcess, token: str = "") -> httpx.Client:
    """A client on a new connection (so the kernel may hand it to either worker)."""
    headers = {"X-Vault-Token": token} if token else {}
    return httpx.Client(base_url=server.addr, headers=headers, timeout=30)


def call(
    server: ServerProcess, method: str, path: str, token: str = "", **kw: object
) -> httpx.Response:
    with fresh(server, token) as http:
        return http.request(method, path, **kw)  # type: ignore[arg-type]


def worker_pids(server: ServerProcess) -> set[int]:
    assert server.proc is not None
    pids = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == server.proc.pid:
            pids.add(int(entry))
    return pids


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[tuple[ServerProcess, str]]:
    port = free_port()
    config = tmp_path / "workers.hcl"
    config.write_text(WORKERS_CONFIG.format(db=tmp_path / "w.db", port=port))
    server = ServerProcess([f"-config={config}"], port, tmp_path).start(timeout=60)
    try:
        wait_until(lambda: len(worker_pids(server)) == 2, what="two workers")
        init = call(server, "PUT", "/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1})
        assert init.status_code == 200, init.text
        key, root = init.json()["keys_base64"][0], init.json()["root_token"]
        answer = call(server, "PUT", "/v1/sys/unseal", json={"key": key})
        assert answer.status_code == 200 and not answer.json()["sealed"], answer.text
        # the share was passed on: every worker is unsealed, whichever one answers
        for _ in range(20):
            assert call(server, "GET", "/v1/sys/seal-status").json()["sealed"] is False
        server.root_token = root
        server.unseal_key = key
        yield server, root
    finally:
        server.stop()


def _leaders(server: ServerProcess, token: str, rounds: int = 30) -> set[bool]:
    return {call(server, "GET", "/v1/sys/leader", token).json()["is_self"] for _ in range(rounds)}


def test_two_workers_read_their_writes_over_fresh_connections(
    workers: tuple[ServerProcess, str],
) -> None:
    server, root = workers
    wait_until(lambda: _leaders(server, root) == {True, False}, what="one active, one standby")
    assert (
        call(server, "POST", "/v1/sys/mounts/secret", root, json={"type": "kv-v2"}).status_code
        == 204
    )
    for i in range(40):
        body = {"data": {"i": i}}
        written = call(server, "POST", f"/v1/secret/data/k{i % 5}", root, json=body)
        assert written.status_code == 200, written.text  # a standby forwards: one answer
        read = call(server, "GET", f"/v1/secret/data/k{i % 5}", root)
        assert read.status_code == 200 and read.json()["data"]["data"] == {"i": i}
    # a token bound to the client's address works through either worker: a standby sends
    # the client's address along with what it forwards
    bound = call(
        server,
        "POST",
        "/v1/auth/token/create",
        root,
        json={"policies": ["root"], "bound_cidrs": ["127.0.0.1/32"]},
    )
    assert bound.status_code == 200, bound.text
    bound_token = bound.json()["auth"]["client_token"]
    for i in range(10):
        answer = call(server, "POST", "/v1/secret/data/bound", bound_token, json={"data": {"i": i}})
        assert answer.status_code == 200, answer.text
    # a token revoked through any worker is refused by every worker at once
    made = call(server, "POST", "/v1/auth/token/create", root, json={"policies": ["default"]})
    token = made.json()["auth"]["client_token"]
    assert call(server, "POST", "/v1/auth/token/revoke-self", token).status_code == 204
    for _ in range(20):
        assert call(server, "GET", "/v1/auth/token/lookup-self", token).status_code == 403


def test_a_killed_active_worker_is_replaced_and_restarted(
    workers: tuple[ServerProcess, str],
) -> None:
    server, root = workers
    wait_until(lambda: _leaders(server, root) == {True, False}, what="one active, one standby")
    assert (
        call(server, "POST", "/v1/sys/mounts/secret", root, json={"type": "kv-v2"}).status_code
        == 204
    )
    assert (
        call(server, "POST", "/v1/secret/data/before", root, json={"data": {"a": 1}}).status_code
        == 200
    )
    nodes = call(server, "GET", "/v1/sys/ha-status", root).json()["data"]["nodes"]
    active = next(n for n in nodes if n["active_node"])
    pid = int(active["node_id"].rsplit("-", 2)[1])
    assert pid in worker_pids(server)
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()

    def written_after_takeover() -> bool:
        answer = call(server, "POST", "/v1/secret/data/after", root, json={"data": {"b": 2}})
        return answer.status_code == 200

    wait_until(written_after_takeover, 15, "a write after the takeover")
    assert time.monotonic() - killed < 10
    # the supervisor restarted the dead worker (sealed, as a restarted node is)
    wait_until(
        lambda: len(worker_pids(server)) == 2 and pid not in worker_pids(server), what="restart"
    )
    # sealed, it passes requests to the active sibling rather than failing them
    for _ in range(10):
        assert call(server, "GET", "/v1/secret/data/after", root).status_code == 200
    answer = call(server, "PUT", "/v1/sys/unseal", json={"key": server.unseal_key})

    assert answer.status_code == 200
    wait_until(
        lambda: all(
            not call(server, "GET", "/v1/sys/seal-status").json()["sealed"] for _ in range(10)
        ),
        what="every worker unsealed",
    )
    for _ in range(10):
        before = call(server, "GET", "/v1/secret/data/before", root)
        after = call(server, "GET", "/v1/secret/data/after", root)
        assert before.json()["data"]["data"] == {"a": 1}
        assert after.json()["data"]["data"] == {"b": 2}


def test_dev_mode_with_two_workers(tmp_path: Path) -> None:
    port = free_port()
    server = ServerProcess(
        [
            "-dev",
            f"-dev-listen-address=127.0.0.1:{port}",
            f"-dev-dir={tmp_path / 'dev'}",
            "-workers",
            "2",
        ],
        port,
        tmp_path,
    ).start(timeout=60, wait_for="Root Token:")
    try:
        root = server.root_token
        wait_until(lambda: len(worker_pids(server)) == 2, what="two workers")
        wait_until(
            lambda: all(
                not call(server, "GET", "/v1/sys/seal-status").json()["sealed"] for _ in range(10)
            ),
            30,
            "both dev workers unsealed",
        )
        wait_until(lambda: _leaders(server, root) == {True, False}, what="one active, one standby")
        for i in range(10):
            assert (
                call(
                    server, "POST", f"/v1/secret/data/d{i}", root, json={"data": {"i": i}}
                ).status_code
                == 200
            )
            read = call(server, "GET", f"/v1/secret/data/d{i}", root)
            assert read.status_code == 200 and read.json()["data"]["data"] == {"i": i}
        key_file = tmp_path / "dev" / "dev-unseal-key"
        assert key_file.stat().st_mode & 0o777 == 0o600
    finally:
        server.stop()


def test_use_counts_are_spent_on_the_active_only(workers: tuple[ServerProcess, str]) -> None:
    server, root = workers
    wait_until(lambda: _leaders(server, root) == {True, False}, what="one active, one standby")
    assert (
        call(server, "POST", "/v1/sys/mounts/secret", root, json={"type": "kv-v2"}).status_code
        == 204
    )
    assert (
        call(server, "POST", "/v1/secret/data/u", root, json={"data": {"v": 1}}).status_code == 200
    )
    for _ in range(3):
        made = call(
            server,
            "POST",
            "/v1/auth/token/create",
            root,
            json={"policies": ["root"], "num_uses": 3},
        )
        token = made.json()["auth"]["client_token"]
        # reads over fresh connections land on either worker; a standby never spends a use
        codes = [call(server, "GET", "/v1/secret/data/u", token).status_code for _ in range(6)]
        assert codes == [200, 200, 200, 403, 403, 403], codes
