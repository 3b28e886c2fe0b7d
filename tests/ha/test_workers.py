"""``workers = 2`` on SQLite: two processes share the listener; one active, one performance
standby; writes reaching the standby are forwarded to the active over its private socket."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
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


def worker_dir(server: ServerProcess) -> Path:
    """The supervisor's private 0700 directory (from a worker's command line)."""
    for pid in worker_pids(server):
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            for arg in handle.read().split(b"\0"):
                if arg.startswith(b"-worker-dir="):
                    return Path(arg.split(b"=", 1)[1].decode())
    raise AssertionError("no worker directory")


def _index_of(pid: int) -> int:
    with open(f"/proc/{pid}/cmdline", "rb") as handle:
        for arg in handle.read().split(b"\0"):
            if arg.startswith(b"-worker-index="):
                return int(arg.split(b"=", 1)[1])
    return -1


def at_worker(server: ServerProcess, index: int, path: str, token: str = "") -> httpx.Response:
    """A request to one given worker, over its private cluster socket."""
    transport = httpx.HTTPTransport(uds=str(worker_dir(server) / f"w{index}.sock"))
    headers = {"X-Vault-Token": token} if token else {}
    with httpx.Client(transport=transport, base_url="http://worker", timeout=10) as http:
        return http.get(path, headers=headers)


def _node_pids(server: ServerProcess, root: str) -> tuple[int, int]:
    """(the active worker's pid, the standby's pid)."""
    nodes = call(server, "GET", "/v1/sys/ha-status", root).json()["data"]["nodes"]
    active = next(n for n in nodes if n["active_node"])
    pid = int(active["node_id"].rsplit("-", 2)[1])
    others = worker_pids(server) - {pid}
    assert pid in worker_pids(server) and len(others) == 1
    return pid, others.pop()


@pytest.mark.parametrize("victim", ["active", "standby"])
def test_a_killed_worker_is_restarted_unsealed(
    workers: tuple[ServerProcess, str], victim: str
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
    active, standby = _node_pids(server, root)
    pid = active if victim == "active" else standby
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()

    def written_after_kill() -> bool:
        answer = call(server, "POST", "/v1/secret/data/after", root, json={"data": {"b": 2}})
        return answer.status_code == 200

    wait_until(written_after_kill, 15, "a write after the kill")
    assert time.monotonic() - killed < 10
    # the supervisor restarts the dead worker, which asks its live sibling for the root key
    # and rejoins unsealed: no unseal call is made in this test after the kill
    wait_until(
        lambda: len(worker_pids(server)) == 2 and pid not in worker_pids(server), what="restart"
    )

    def both_unsealed_and_serving() -> bool:
        for index in (0, 1):
            try:
                status = at_worker(server, index, "/v1/sys/seal-status").json()
                read = at_worker(server, index, "/v1/secret/data/before", root)
            except httpx.HTTPError:
                return False
            if status["sealed"] or read.status_code != 200:
                return False
        return True

    wait_until(both_unsealed_and_serving, 15, "the restarted worker unsealed and serving")
    assert time.monotonic() - killed < 15
    _, restarted_standby = _node_pids(server, root)  # one active again, one standby
    for index in (0, 1):
        leader = at_worker(server, index, "/v1/sys/leader", root).json()
        assert leader["ha_enabled"] is True
    for _ in range(10):
        before = call(server, "GET", "/v1/secret/data/before", root)
        after = call(server, "GET", "/v1/secret/data/after", root)
        assert before.json()["data"]["data"] == {"a": 1}
        assert after.json()["data"]["data"] == {"b": 2}
    assert restarted_standby in worker_pids(server)


def test_a_sealed_cluster_stays_sealed_after_a_restart(
    workers: tuple[ServerProcess, str],
) -> None:
    server, root = workers
    wait_until(lambda: _leaders(server, root) == {True, False}, what="one active, one standby")
    assert call(server, "PUT", "/v1/sys/seal", root).status_code == 204
    wait_until(
        lambda: all(at_worker(server, i, "/v1/sys/seal-status").json()["sealed"] for i in (0, 1)),
        what="every worker sealed",
    )
    pid = next(iter(worker_pids(server)))
    os.kill(pid, signal.SIGKILL)
    wait_until(
        lambda: len(worker_pids(server)) == 2 and pid not in worker_pids(server), what="restart"
    )

    def reachable() -> bool:
        try:
            return all(
                at_worker(server, i, "/v1/sys/seal-status").status_code == 200 for i in (0, 1)
            )
        except httpx.HTTPError:
            return False

    wait_until(reachable, what="both workers serving")
    time.sleep(0.5)  # let the restarted worker ask its (sealed) sibling
    for index in (0, 1):
        assert at_worker(server, index, "/v1/sys/seal-status").json()["sealed"] is True
    # the next key share unseals every worker, as before
    answer = call(server, "PUT", "/v1/sys/unseal", json={"key": server.unseal_key})
    assert answer.status_code == 200
    wait_until(
        lambda: (
            not any(at_worker(server, i, "/v1/sys/seal-status").json()["sealed"] for i in (0, 1))
        ),
        what="every worker unsealed",
    )


def test_a_process_that_is_not_a_sibling_gets_no_key(
    workers: tuple[ServerProcess, str],
) -> None:
    server, _root = workers
    directory = worker_dir(server)
    assert directory.stat().st_mode & 0o777 == 0o700
    for index in (0, 1):
        path = directory / f"k{index}.sock"
        wait_until(path.exists, what="the key socket")
        assert path.stat().st_mode & 0o777 == 0o600
        # this test process is the same user but not a child of the supervisor: the worker
        # closes the connection without a byte, whatever is sent
        for hello in (b"SRK1" + os.urandom(32), b"SRK1" + bytes(32) + bytes(32), b"GET /"):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(5)
                sock.connect(str(path))
                with contextlib.suppress(OSError):
                    sock.sendall(hello)
                received = b""
                with contextlib.suppress(ConnectionResetError):
                    while chunk := sock.recv(4096):
                        received += chunk
                assert received == b""
    # and the workers are still unsealed and serving
    for index in (0, 1):
        assert at_worker(server, index, "/v1/sys/seal-status").json()["sealed"] is False


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
        # worker 0 (the one that initialised) dies: its replacement does not initialise
        # again, it rejoins unsealed and serves what was written
        first = next(p for p in worker_pids(server) if _index_of(p) == 0)
        os.kill(first, signal.SIGKILL)
        wait_until(
            lambda: len(worker_pids(server)) == 2 and first not in worker_pids(server),
            what="restart",
        )

        def serving() -> bool:
            try:
                return all(
                    at_worker(server, i, "/v1/secret/data/d3", root).status_code == 200
                    for i in (0, 1)
                )
            except httpx.HTTPError:
                return False

        wait_until(serving, 20, "the restarted worker 0 serving")
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
