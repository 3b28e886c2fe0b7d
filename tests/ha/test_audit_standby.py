"""Performance standbys audit locally: every process opens the enabled audit devices itself
and writes its own hash chain (its own chain id) into the shared file, O_APPEND whole lines.

Real server processes over real HTTP: two ``ha_enabled`` servers on one SQLite file (the
standby answers on its own port, so the tests know which process served), and
``workers = 2`` behind one listener.
"""

from __future__ import annotations

import io
import os
import resource
import signal
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from strongroom.audit.chain import Verifier, key_id_of, load_public_key
from strongroom.cli.main import run
from tests.ha.cluster import HACluster, wait_until
from tests.ha.test_workers import WORKERS_CONFIG, call, worker_pids
from tests.serverproc import ServerProcess, free_port


@pytest.fixture(params=[False], ids=["redirect"])
def cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[HACluster]:
    ha = HACluster(tmp_path, clustering=request.param)
    try:
        ha.add_node()
        ha.add_node()
        ha.init()
        yield ha
    finally:
        ha.stop()


def entries(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line]


def writer_pid(entry: dict[str, Any]) -> int:
    """The process id in a chain id (``host-pid-nonce/N``)."""
    return int(str(entry["chain"]).split("/")[0].rsplit("-", 2)[1])


def requests_by(
    path: Path, pid: int, request_path: str, operation: str = "read"
) -> list[dict[str, Any]]:
    return [
        e
        for e in entries(path)
        if e["type"] == "request"
        and writer_pid(e) == pid
        and e["request"]["path"] == request_path
        and e["request"]["operation"] == operation
    ]


def verify(tmp_path: Path, pem: str, *files: Path) -> tuple[int, str]:
    key = tmp_path / "audit.pem"
    key.write_text(pem)
    out, err = io.StringIO(), io.StringIO()
    code = run(
        ["audit", "verify", f"-pubkey={key}", *map(str, files)],
        {},
        out,
        err,
        stdin=io.StringIO(""),
    )
    return code, out.getvalue() + err.getvalue()


def public_key(server: ServerProcess) -> str:
    answer = httpx.get(server.addr + "/v1/sys/audit-public-key", timeout=10)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["data"]["public_key"])


def roles(cluster: HACluster) -> tuple[ServerProcess, ServerProcess]:
    active = cluster.wait_active()
    standby = next(n for n in cluster.nodes if n is not active)
    return active, standby


def enable_file_device(http: httpx.Client, log: Path, **options: str) -> None:
    answer = http.put(
        "/v1/sys/audit/file", json={"type": "file", "options": {"file_path": str(log), **options}}
    )
    assert answer.status_code == 204, answer.text


@pytest.mark.parametrize("cluster", [False, True], ids=["redirect", "forward"], indirect=True)
def test_a_standby_serves_reads_locally_and_audits_them_in_its_own_chain(
    cluster: HACluster, tmp_path: Path
) -> None:
    active, standby = roles(cluster)
    assert standby.proc is not None and active.proc is not None
    log = tmp_path / "audit.log"
    with cluster.http(active) as http:
        enable_file_device(http, log)
        assert http.post("/v1/sys/mounts/secret", json={"type": "kv-v2"}).status_code == 204
        assert http.post("/v1/secret/data/a", json={"data": {"v": "x"}}).status_code == 200
    with cluster.http(standby) as http:
        # the standby has the active's device table (sys/audit is a read it serves itself)
        assert set(http.get("/v1/sys/audit").json()["data"]) == {"file/"}
        for _ in range(20):
            answer = http.get("/v1/secret/data/a")  # no redirect followed: served here
            assert answer.status_code == 200, answer.text
            assert answer.json()["data"]["data"] == {"v": "x"}
        # a write sent to the standby is the active's (307, or forwarded over the cluster
        # port): the active audits it, the standby records nothing
        written = http.post("/v1/secret/data/b", json={"data": {"v": 1}})
        assert written.status_code == (200 if cluster.clustering else 307), written.text
    mine = requests_by(log, standby.proc.pid, "secret/data/a")
    assert len(mine) == 20
    assert not requests_by(log, standby.proc.pid, "secret/data/b", "create")
    assert len(requests_by(log, active.proc.pid, "secret/data/a", "create")) == 1
    forwarded = requests_by(log, active.proc.pid, "secret/data/b", "create")
    assert len(forwarded) == (1 if cluster.clustering else 0)
    assert not requests_by(log, active.proc.pid, "secret/data/a")
    chains = {e["chain"] for e in entries(log)}
    assert len(chains) == 2
    assert {writer_pid(e) for e in entries(log)} == {active.proc.pid, standby.proc.pid}
    # one salt per device, read from the barrier: both writers hash the same token alike,
    # and sys/audit-hash (answered by the active) gives that same hash
    standby_hash = mine[0]["auth"]["client_token"]
    active_hashes = {
        e["auth"]["client_token"]
        for e in entries(log)
        if writer_pid(e) == active.proc.pid and e["type"] == "request" and e.get("auth")
    }
    assert active_hashes == {standby_hash}
    with httpx.Client(
        base_url=standby.addr,
        headers={"X-Vault-Token": cluster.root_token},
        follow_redirects=True,
        timeout=30,
    ) as http:
        hashed = http.post("/v1/sys/audit-hash/file", json={"input": cluster.root_token})
        assert hashed.status_code == 200, hashed.text
        assert hashed.json()["data"]["hash"] == standby_hash
    # every writer's chain verifies, checkpoints signed with the one server key
    pem = public_key(active)
    code, out = verify(tmp_path, pem, log)
    assert code == 0, out
    assert out.count("OK: chain") == 2, out
    # a tampered line in the standby's chain is named: its chain and its line
    lines = log.read_bytes().splitlines(keepends=True)
    number = next(
        i
        for i, line in enumerate(lines)
        if orjson.loads(line).get("chain") == mine[5]["chain"]
        and orjson.loads(line)["type"] == "request"
        and orjson.loads(line)["request"]["id"] == mine[5]["request"]["id"]
    )
    lines[number] = lines[number].replace(b'"secret/data/a"', b'"secret/data/z"')
    tampered = tmp_path / "tampered.log"
    tampered.write_bytes(b"".join(lines))
    code, out = verify(tmp_path, pem, tampered)
    assert code == 2, out
    assert f"FAILED: chain {mine[5]['chain']}: {tampered} line {number + 1}:" in out, out
    assert "OK: chain" in out  # the active's chain is untouched


def test_a_standby_that_cannot_audit_refuses_the_request(
    cluster: HACluster, tmp_path: Path
) -> None:
    active, standby = roles(cluster)
    assert standby.proc is not None
    log = tmp_path / "audit.log"
    with cluster.http(active) as http:
        enable_file_device(http, log)
        assert http.post("/v1/sys/mounts/secret", json={"type": "kv-v2"}).status_code == 204
        assert http.post("/v1/secret/data/a", json={"data": {"v": "x"}}).status_code == 200
    with cluster.http(standby) as http:
        assert http.get("/v1/secret/data/a").status_code == 200
    # the standby's writes to the file now fail (EFBIG: a file-size limit on that process
    # alone); the active's still succeed
    pid = standby.proc.pid
    limits = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (log.stat().st_size, limits[1]))
    try:
        with cluster.http(standby) as http:
            for _ in range(5):
                refused = http.get("/v1/secret/data/a")
                assert refused.status_code == 500, refused.text  # fail closed, not forwarded
                assert refused.json() == {"errors": ["internal error"]}
        with cluster.http(active) as http:
            assert http.get("/v1/secret/data/a").status_code == 200
    finally:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, limits)
    with cluster.http(standby) as http:
        assert http.get("/v1/secret/data/a").status_code == 200
    assert len(requests_by(log, pid, "secret/data/a")) == 2  # the refused ones left no entry
    assert "failed to audit request, cannot continue" in standby.log_path.read_text()
    code, out = verify(tmp_path, public_key(active), log)
    assert code == 0, out


def test_devices_enabled_and_disabled_on_the_active_reach_the_standby_at_once(
    cluster: HACluster, tmp_path: Path
) -> None:
    active, standby = roles(cluster)
    assert standby.proc is not None
    log = tmp_path / "audit.log"
    with cluster.http(active) as http:
        assert http.post("/v1/sys/mounts/secret", json={"type": "kv-v2"}).status_code == 204
        assert http.post("/v1/secret/data/a", json={"data": {"v": "x"}}).status_code == 200
    with cluster.http(standby) as http:
        assert http.get("/v1/secret/data/a").status_code == 200
    assert not log.exists()
    # no signing key yet: a standby cannot create it, the active does (Vault's 307 here)
    assert httpx.get(standby.addr + "/v1/sys/audit-public-key").status_code == 307
    for round_ in range(3):
        with cluster.http(active) as http:
            enable_file_device(http, log)
        # the very next request on the standby is audited: before serving, a standby
        # applies every committed change (the audit table included) and opens the device
        with cluster.http(standby) as http:
            assert http.get("/v1/secret/data/a").status_code == 200
        assert len(requests_by(log, standby.proc.pid, "secret/data/a")) == round_ + 1
        assert public_key(standby) == public_key(active)  # read from the barrier
        with cluster.http(active) as http:
            assert http.delete("/v1/sys/audit/file").status_code == 204
        with cluster.http(standby) as http:
            assert set(http.get("/v1/sys/audit").json()["data"]) == set()
            assert http.get("/v1/secret/data/a").status_code == 200
        assert len(requests_by(log, standby.proc.pid, "secret/data/a")) == round_ + 1
    # three chains per writer (one per enable), each closed by a final checkpoint
    found = entries(log)
    chains = Counter(e["chain"] for e in found)
    assert len(chains) == 6
    last = {e["chain"]: e for e in found}
    assert all(e["type"] == "checkpoint" for e in last.values())
    code, out = verify(tmp_path, public_key(active), log)
    assert code == 0, out
    assert "unverified" not in out.lower(), out


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[ServerProcess]:
    port = free_port()
    config = tmp_path / "workers.hcl"
    config.write_text(WORKERS_CONFIG.format(db=tmp_path / "w.db", port=port))
    server = ServerProcess([f"-config={config}"], port, tmp_path).start(timeout=60)
    try:
        wait_until(lambda: len(worker_pids(server)) == 2, what="two workers")
        init = call(server, "PUT", "/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1})
        assert init.status_code == 200, init.text
        key, root = init.json()["keys_base64"][0], init.json()["root_token"]
        assert call(server, "PUT", "/v1/sys/unseal", json={"key": key}).status_code == 200
        server.root_token = root
        wait_until(
            lambda: (
                {call(server, "GET", "/v1/sys/leader").json()["is_self"] for _ in range(30)}
                == {True, False}
            ),
            what="one active, one standby",
        )
        yield server
    finally:
        server.stop()


def test_two_workers_each_audit_what_they_serve_exactly_once(
    workers: ServerProcess, tmp_path: Path
) -> None:
    server, root = workers, workers.root_token
    log = tmp_path / "audit.log"
    with httpx.Client(base_url=server.addr, headers={"X-Vault-Token": root}, timeout=30) as http:
        enable_file_device(http, log)  # whichever worker answers: the active enables it
    assert call(server, "POST", "/v1/sys/mounts/secret", root, json={"type": "kv-v2"}).is_success
    for i in range(10):
        written = call(server, "POST", f"/v1/secret/data/w{i}", root, json={"data": {"i": i}})
        assert written.status_code == 200, written.text
    pids = worker_pids(server)
    # fresh connections, several at once: the workers accept from one shared socket, and on
    # a quiet box sequential connections may all be taken by the same (first-woken) worker
    sent = 0
    with ThreadPoolExecutor(8) as pool:
        for _ in range(25):
            batch = [f"/v1/secret/data/w{(sent + i) % 10}" for i in range(8)]
            for read in pool.map(lambda path: call(server, "GET", path, root), batch):
                assert read.status_code == 200, read.text
            sent += len(batch)
            served = {writer_pid(e) for e in entries(log) if e["type"] == "request"
                      and e["request"]["operation"] == "read"}  # fmt: skip
            if sent >= 40 and served == pids:
                break
    found = entries(log)
    assert {writer_pid(e) for e in found} == pids  # both workers write their own chain
    requests = [e for e in found if e["type"] == "request"]
    writes = Counter(e["request"]["path"] for e in requests if e["request"]["operation"] != "read")
    # a write reaching the standby is forwarded: audited by the active, once
    assert all(writes[f"secret/data/w{i}"] == 1 for i in range(10)), writes
    writers_of_writes = {writer_pid(e) for e in requests if e["request"]["operation"] == "create"}
    assert len(writers_of_writes) == 1
    reads = [e for e in requests if e["request"]["operation"] == "read"]
    assert len(reads) == sent  # each read exactly once, by the worker that served it
    assert {writer_pid(e) for e in reads} == pids  # the standby served (and audited) reads
    responses = [e for e in found if e["type"] == "response"]
    assert Counter(e["request"]["id"] for e in responses) == Counter(
        e["request"]["id"] for e in requests
    )
    code, out = verify(tmp_path, public_key(server), log)
    assert code == 0, out
    assert out.count("OK: chain") == 2, out
    assert os.path.getsize(log) > 0


def test_a_killed_active_workers_chain_is_continued_by_its_successor(
    workers: ServerProcess, tmp_path: Path
) -> None:
    server, root = workers, workers.root_token
    log = tmp_path / "audit.log"
    with httpx.Client(base_url=server.addr, headers={"X-Vault-Token": root}, timeout=30) as http:
        # frequent checkpoints: the saved chain head's file offset is past lines of the
        # other worker's chain, in the shared file
        enable_file_device(http, log, checkpoint_entries="7")
    assert call(server, "POST", "/v1/sys/mounts/secret", root, json={"type": "kv-v2"}).is_success
    for i in range(10):
        assert call(server, "POST", "/v1/secret/data/a", root, json={"data": {"i": i}}).is_success
        assert call(server, "GET", "/v1/secret/data/a", root).status_code == 200
    nodes = call(server, "GET", "/v1/sys/ha-status", root).json()["data"]["nodes"]
    killed = int(next(n for n in nodes if n["active_node"])["node_id"].rsplit("-", 2)[1])
    killed_chain = next(e["chain"] for e in entries(log) if writer_pid(e) == killed)
    if [e for e in entries(log) if e["chain"] == killed_chain][-1]["type"] == "checkpoint":
        # one more write (the active audits it): two lines no checkpoint covers yet
        assert call(server, "POST", "/v1/secret/data/a", root, json={"data": {}}).is_success
    os.kill(killed, signal.SIGKILL)  # its last lines are not covered by a checkpoint
    wait_until(
        lambda: call(server, "POST", "/v1/secret/data/b", root, json={"data": {}}).is_success,
        what="a write after the takeover",
    )
    wait_until(lambda: killed not in worker_pids(server) and len(worker_pids(server)) == 2)
    assert call(server, "PUT", "/v1/sys/unseal", json={"key": server.unseal_key}).is_success
    wait_until(
        lambda: all(
            not call(server, "GET", "/v1/sys/seal-status").json()["sealed"] for _ in range(10)
        ),
        what="every worker unsealed",
    )
    for _ in range(20):
        assert call(server, "GET", "/v1/secret/data/b", root).status_code == 200
    found = entries(log)
    # the new active adopted the dead one's tail (a checkpoint marks the recovered lines)
    # and continues that chain after a link
    continued = [e for e in found if e["chain"] == killed_chain]
    assert any(e["type"] == "checkpoint" and e.get("recovered") for e in continued)
    assert any(e["type"] == "link" and e["seq"] > 1 for e in continued)
    code, out = verify(tmp_path, public_key(server), log)
    assert code == 0, out
    assert f"OK: chain {killed_chain}:" in out
    recovered = next(e for e in continued if e["type"] == "checkpoint" and e.get("recovered"))
    # only lines read back unsigned from the file (a line pending in the saved head is not)
    assert 0 < recovered["recovered"] <= recovered["entries"]
    assert "stopped uncleanly" in server.log_path.read_text()


def test_chains_survive_a_step_down_in_both_directions(cluster: HACluster, tmp_path: Path) -> None:
    first, second = roles(cluster)
    assert first.proc is not None and second.proc is not None
    log = tmp_path / "audit.log"
    with cluster.http(first) as http:
        enable_file_device(http, log)
        assert http.post("/v1/sys/mounts/secret", json={"type": "kv-v2"}).status_code == 204
        assert http.post("/v1/secret/data/a", json={"data": {"v": 1}}).status_code == 200
    for node in (first, second):
        with cluster.http(node) as http:
            assert http.get("/v1/secret/data/a").status_code == 200
    with cluster.http(first) as http:
        assert http.put("/v1/sys/step-down").status_code == 204
    assert cluster.wait_active() is second
    with cluster.http(second) as http:
        assert http.post("/v1/secret/data/a", json={"data": {"v": 2}}).status_code == 200
    for node in (first, second):
        with cluster.http(node) as http:
            answer = http.get("/v1/secret/data/a")
            assert answer.status_code == 200 and answer.json()["data"]["data"] == {"v": 2}
    found = entries(log)
    reads = [e for e in found if e["type"] == "request" and e["request"]["operation"] == "read"]
    first_chain, second_chain = reads[0]["chain"], reads[1]["chain"]
    assert {writer_pid(reads[0]), writer_pid(reads[1])} == {first.proc.pid, second.proc.pid}
    # afterwards: the former active audits as a standby, in a new chain of its own; the new
    # active continues the former active's chain (a chain id names the process that
    # started it), and closed its own standby chain with a checkpoint
    later = reads[2:]
    assert len(later) == 2
    assert len({e["chain"] for e in later}) == 2
    assert first_chain in {e["chain"] for e in later}
    assert second_chain not in {e["chain"] for e in later}
    update = next(
        e
        for e in found
        if e["type"] == "request"
        and e["request"]["operation"] == "update"
        and e["request"]["path"] == "secret/data/a"
    )
    assert update["chain"] == first_chain
    closed = [e for e in found if e["chain"] == second_chain]
    assert closed[-1]["type"] == "checkpoint"
    assert len({e["chain"] for e in found}) == 3
    code, out = verify(tmp_path, public_key(second), log)
    assert code == 0, out
    assert out.count("OK: chain") == 3, out
    # a clean hand-over: the demoted active signed its last lines (its final checkpoint
    # precedes the new active's link in that chain), and the new active's log says so
    continued = [e for e in found if e["chain"] == first_chain]
    link = next(i for i, e in enumerate(continued) if e["type"] == "link" and e["seq"] > 1)
    assert continued[link - 1]["type"] == "checkpoint"
    assert not any(e.get("recovered") for e in continued)
    new_active_log = second.log_path.read_text()
    assert "its former writer wrote and signed after its last saved head" in new_active_log
    assert "unclean" not in new_active_log


def test_a_killed_standby_workers_tail_is_closed_by_the_restarted_worker(
    workers: ServerProcess, tmp_path: Path
) -> None:
    server, root = workers, workers.root_token
    log = tmp_path / "audit.log"
    with httpx.Client(base_url=server.addr, headers={"X-Vault-Token": root}, timeout=30) as http:
        enable_file_device(http, log)  # a checkpoint every 1000 lines: reads stay unsigned
    assert call(server, "POST", "/v1/sys/mounts/secret", root, json={"type": "kv-v2"}).is_success
    assert call(server, "POST", "/v1/secret/data/a", root, json={"data": {"v": 1}}).is_success
    nodes = call(server, "GET", "/v1/sys/ha-status", root).json()["data"]["nodes"]
    active = int(next(n for n in nodes if n["active_node"])["node_id"].rsplit("-", 2)[1])
    (standby,) = worker_pids(server) - {active}
    wait_until(
        lambda: (
            call(server, "GET", "/v1/secret/data/a", root).status_code == 200
            and any(writer_pid(e) == standby for e in entries(log) if e["type"] == "request")
        ),
        what="a read served by the standby worker",
    )
    dead_chain = next(e["chain"] for e in entries(log) if writer_pid(e) == standby)
    tail = [e for e in entries(log) if e["chain"] == dead_chain]
    assert tail[-1]["type"] != "checkpoint"
    os.kill(standby, signal.SIGKILL)  # no final checkpoint: its tail is unsigned
    wait_until(lambda: standby not in worker_pids(server) and len(worker_pids(server)) == 2)
    assert call(server, "PUT", "/v1/sys/unseal", json={"key": server.unseal_key}).is_success
    wait_until(
        lambda: all(
            not call(server, "GET", "/v1/sys/seal-status").json()["sealed"] for _ in range(10)
        ),
        what="every worker unsealed",
    )
    # the restarted worker opened the device and closed the dead chain, once
    wait_until(
        lambda: [e for e in entries(log) if e["chain"] == dead_chain][-1]["type"] == "checkpoint",
        what="the dead chain closed",
    )
    closed = [e for e in entries(log) if e["chain"] == dead_chain]
    assert closed[:-1] == tail
    assert closed[-1]["recovered"] == len(tail)  # link and entries, none signed before
    for _ in range(10):
        assert call(server, "GET", "/v1/secret/data/a", root).status_code == 200
    assert [e for e in entries(log) if e["chain"] == dead_chain] == closed  # no second close
    pem = public_key(server)
    code, out = verify(tmp_path, pem, log)
    assert code == 0, out
    assert f"OK: chain {dead_chain}:" in out, out
    assert "recovered" in out, out
    # an hour later the dead chain still verifies: no unsigned tail is left in it
    verifier = Verifier(
        {key_id_of(load_public_key(pem.encode())): load_public_key(pem.encode())},
        now=time.time() + 3600,
    )
    with log.open("rb") as handle:
        verifier.feed(str(log), handle)
    verifier.finish()
    assert {c.chain: c.report.ok for c in verifier.chains}[dead_chain]
    killed_log = server.log_path.read_text()
    assert f"closed chain {dead_chain} of a writer that died uncleanly" in killed_log
