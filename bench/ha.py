"""HA and workers figures (reported, never asserted): ``python bench/ha.py [--seconds 5]``.

1. KV v2 read req/s and server CPU per request with ``workers = 1`` and ``workers = 2`` on
   SQLite, each as a ratio to the bare ASGI ceiling run with the same number of processes.
2. Standby read vs active read (two servers with ``ha_enabled`` on one SQLite file).
3. Failover time over N kills: kill -9 the active, time until the other reports is_self.
4. Invalidation lag: revoke a token on the active, time until a standby refuses it.
5. Memory (RSS) per worker after the read runs.
6. KV v2 write on the active vs sent to the standby, which forwards it to the active over
   the cluster port (mutual TLS): req/s, latency, and CPU per request of both processes.

``--audit``: only the KV v2 read runs, with a file audit device enabled, ``workers = 1``
then ``workers = 2`` (``--rounds`` times, alternating): every worker audits what it serves
into its own chain of the one file; the share of requests each writer's chain recorded is
printed, and the file is checked with ``strongroom audit verify``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import (
    LUA,
    Result,
    cpu_seconds,
    free_port,
    load_secrets,
    run_wrk,
    wait_port,
)

HERE = Path(__file__).resolve().parent

CONFIG = """
storage "sqlite" {{
  path = "{db}"
  {ha}
}}
listener "tcp" {{
  address = "127.0.0.1:{port}"
  tls_disable = true
}}
api_addr = "http://127.0.0.1:{port}"
cluster_addr = "https://127.0.0.1:{cluster_port}"
workers = {workers}
disable_mlock = true
"""


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wrk_cpu(
    name: str, url: str, script: Path | None, seconds: int, env: dict[str, str], pids: list[int]
) -> Result:
    before = sum(cpu_seconds(p) for p in pids)
    result = run_wrk(name, url, script, seconds, env)
    used = sum(cpu_seconds(p) for p in pids) - before
    if result.requests:
        result.cpu_us = used / result.requests * 1e6
    return result


def start(workdir: Path, workers: int, db: Path, ha: bool) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    config = workdir / f"c{port}.hcl"
    config.write_text(
        CONFIG.format(
            db=db,
            port=port,
            cluster_port=free_port(),
            workers=workers,
            ha='ha_enabled = "true"' if ha else "",
        )
    )
    log = open(workdir / f"s{port}.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "strongroom.server", f"-config={config}"],
        stdout=log,
        stderr=log,
        cwd=workdir,
    )
    wait_port(port, 60)
    return proc, port


def call(port: int, method: str, path: str, token: str = "", **kw: object) -> httpx.Response:
    headers = {"X-Vault-Token": token} if token else {}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60) as c:
        return c.request(method, path, **kw)  # type: ignore[arg-type]


def init(port: int) -> tuple[str, str]:
    body = call(port, "PUT", "/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1})
    return body.json()["keys_base64"][0], body.json()["root_token"]


def unseal(port: int, key: str) -> None:
    assert not call(port, "PUT", "/v1/sys/unseal", json={"key": key}).json()["sealed"]


def wait_for(check, timeout: float = 60.0) -> float:  # type: ignore[no-untyped-def]
    start_ = time.monotonic()
    while not check():
        if time.monotonic() - start_ > timeout:
            raise RuntimeError("timed out")
        time.sleep(0.01)
    return time.monotonic() - start_


def is_self(port: int) -> bool:
    try:
        return bool(call(port, "GET", "/v1/sys/leader").json().get("is_self"))
    except (httpx.HTTPError, ValueError):
        return False


def ceiling(workers: int, seconds: int) -> Result:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(HERE / "ceiling.py"), str(port), str(workers)])
    try:
        wait_port(port)
        time.sleep(0.5)
        pids = children(proc.pid) if workers > 1 else [proc.pid]
        return wrk_cpu(f"ceiling x{workers}", f"http://127.0.0.1:{port}/", None, seconds, {}, pids)
    finally:
        proc.terminate()
        proc.wait()


def kv_read(
    workdir: Path, workers: int, seconds: int, audit_log: Path | None = None
) -> tuple[Result, list[float]]:
    tag = f"w{workers}-{time.monotonic_ns()}"
    proc, port = start(workdir, workers, workdir / f"{tag}.db", ha=False)
    try:
        key, root = init(port)
        unseal(port, key)
        time.sleep(1.0)
        for _ in range(10):  # every worker unsealed
            assert not call(port, "GET", "/v1/sys/seal-status").json()["sealed"]
        if audit_log is not None:
            enabled = call(
                port,
                "PUT",
                "/v1/sys/audit/file",
                root,
                json={"type": "file", "options": {"file_path": str(audit_log)}},
            )
            assert enabled.status_code == 204, enabled.text
        call(port, "POST", "/v1/sys/mounts/secret", root, json={"type": "kv-v2"})
        asyncio.run(load_secrets(f"http://127.0.0.1:{port}", root, 1000, "bench"))
        pids = children(proc.pid) if workers > 1 else [proc.pid]
        result = wrk_cpu(
            f"KV v2 read, workers={workers}" + (", audit" if audit_log else ""),
            f"http://127.0.0.1:{port}",
            LUA / "kv_read.lua",
            seconds,
            {"VAULT_TOKEN": root},
            pids,
        )
        if audit_log is not None:
            pem = workdir / f"{tag}.pem"
            public = call(port, "GET", "/v1/sys/audit-public-key").json()["data"]
            pem.write_text(public["public_key"])
            audit_report(audit_log, pem)
        return result, [rss_mb(p) for p in pids]
    finally:
        proc.terminate()
        proc.wait(30)


def audit_report(log: Path, pem: Path) -> None:
    """Which writer's chain recorded the reads, and whether the file verifies."""
    reads: dict[str, int] = {}
    with log.open("rb") as lines:
        for line in lines:
            if b'"type":"request"' in line and b'"secret/data/bench/' in line:
                entry = orjson.loads(line)
                reads[entry["chain"]] = reads.get(entry["chain"], 0) + 1
    total = sum(reads.values()) or 1
    shares = ", ".join(f"{chain}: {n} ({n / total:.0%})" for chain, n in sorted(reads.items()))
    print(f"{'':28} audited reads per writer chain: {shares}")
    verify = subprocess.run(
        [sys.executable, "-m", "strongroom.cli", "audit", "verify", f"-pubkey={pem}", str(log)],
        capture_output=True,
        text=True,
        check=False,
    )
    last = (verify.stdout.strip().splitlines() or [verify.stderr.strip()])[-1]
    print(f"{'':28} audit verify: exit {verify.returncode}: {last}")


def audit_runs(workdir: Path, seconds: int, rounds: int) -> None:
    for round_ in range(rounds):
        for workers in (1, 2):
            log = workdir / f"audit-r{round_}-w{workers}.log"
            result, _ = kv_read(workdir, workers, seconds, log)
            print(
                f"{result.name:28} {result.rps:9.0f} req/s  p50 {result.p50_ms:6.2f} ms  "
                f"p99 {result.p99_ms:6.2f} ms  cpu {result.cpu_us:6.0f} us/req  "
                f"errors {result.errors}"
            )
            log.unlink()


def ha_pair(workdir: Path, seconds: int, kills: int, lag_samples: int) -> None:
    db = workdir / "pair.db"
    a, port_a = start(workdir, 1, db, ha=True)
    b, port_b = start(workdir, 1, db, ha=True)
    procs = {port_a: a, port_b: b}
    try:
        key, root = init(port_a)
        unseal(port_a, key)
        unseal(port_b, key)
        wait_for(lambda: is_self(port_a) or is_self(port_b))
        active = port_a if is_self(port_a) else port_b
        standby = port_b if active == port_a else port_a
        call(active, "POST", "/v1/sys/mounts/secret", root, json={"type": "kv-v2"})
        asyncio.run(load_secrets(f"http://127.0.0.1:{active}", root, 1000, "bench"))
        env = {"VAULT_TOKEN": root}
        for name, port in (("active", active), ("standby", standby)):
            r = wrk_cpu(
                f"KV v2 read on the {name}",
                f"http://127.0.0.1:{port}",
                LUA / "kv_read.lua",
                seconds,
                env,
                [procs[port].pid],
            )
            print(
                f"{r.name:28} {r.rps:9.0f} req/s  p50 {r.p50_ms:6.2f} ms  "
                f"p99 {r.p99_ms:6.2f} ms  cpu {r.cpu_us:6.0f} us/req  errors {r.errors}"
            )
        both = [procs[active].pid, procs[standby].pid]
        for name, port in (("active", active), ("standby (forwarded)", standby)):
            r = wrk_cpu(
                f"KV v2 write, {name}",
                f"http://127.0.0.1:{port}",
                LUA / "kv_write.lua",
                seconds,
                env,
                both,
            )
            print(
                f"{r.name:34} {r.rps:7.0f} req/s  p50 {r.p50_ms:6.2f} ms  "
                f"p99 {r.p99_ms:6.2f} ms  cpu (both) {r.cpu_us:6.0f} us/req  errors {r.errors}"
            )
        lags: list[float] = []
        stale = 0  # answers from the standby that still accepted a revoked token
        with httpx.Client(base_url=f"http://127.0.0.1:{standby}", timeout=30) as probe:
            for _ in range(lag_samples):
                made = call(
                    active, "POST", "/v1/auth/token/create", root, json={"policies": ["default"]}
                )
                headers = {"X-Vault-Token": made.json()["auth"]["client_token"]}
                assert probe.get("/v1/auth/token/lookup-self", headers=headers).status_code == 200
                call(
                    active,
                    "POST",
                    "/v1/auth/token/revoke",
                    root,
                    json={"token": headers["X-Vault-Token"]},
                )
                acked = time.monotonic()
                while probe.get("/v1/auth/token/lookup-self", headers=headers).status_code != 403:
                    stale += 1
                lags.append((time.monotonic() - acked) * 1000)
        lags.sort()
        print(
            f"invalidation lag (revoke acked on the active -> refused on the standby, "
            f"{len(lags)} samples): p50 {statistics.median(lags):.1f} ms, "
            f"p99 {lags[int(len(lags) * 0.99) - 1]:.1f} ms, max {lags[-1]:.1f} ms; "
            f"stale answers after the ack: {stale}"
        )
        times = []
        for _ in range(kills):
            victim = active
            procs[victim].kill()
            killed = time.monotonic()
            procs[victim].wait()
            other = standby
            wait_for(lambda: is_self(other), 30)  # noqa: B023
            times.append(time.monotonic() - killed)
            # bring the killed one back as the standby
            log = open(workdir / f"s{victim}.log", "ab")
            config = workdir / f"c{victim}.hcl"
            procs[victim] = subprocess.Popen(
                [sys.executable, "-m", "strongroom.server", f"-config={config}"],
                stdout=log,
                stderr=log,
                cwd=workdir,
            )
            wait_port(victim, 60)
            unseal(victim, key)
            active, standby = other, victim
            time.sleep(0.5)
        times.sort()
        if times:
            print(
                f"failover over {len(times)} kills (lock TTL 3 s): p50 "
                f"{statistics.median(times):.2f} s, max {times[-1]:.2f} s"
            )
    finally:
        for proc in procs.values():
            proc.terminate()
            proc.wait(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--lag-samples", type=int, default=100)
    parser.add_argument("--pair-only", action="store_true", help="skip the workers runs")
    parser.add_argument(
        "--audit", action="store_true", help="only KV reads with a file audit device"
    )
    parser.add_argument("--rounds", type=int, default=2, help="--audit: alternating rounds")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="strongroom-bench-ha-") as tmp:
        workdir = Path(tmp)
        if opts.audit:
            audit_runs(workdir, opts.seconds, opts.rounds)
            return 0
        for workers in () if opts.pair_only else (1, 2):
            base = ceiling(workers, opts.seconds)
            result, rss = kv_read(workdir, workers, opts.seconds)
            print(f"{base.name:28} {base.rps:9.0f} req/s  cpu {base.cpu_us:6.0f} us/req")
            print(
                f"{result.name:28} {result.rps:9.0f} req/s  p50 {result.p50_ms:6.2f} ms  "
                f"p99 {result.p99_ms:6.2f} ms  cpu {result.cpu_us:6.0f} us/req  "
                f"errors {result.errors}"
            )
            print(
                f"{'':28} ratio {result.rps / base.rps:.2f} of the ceiling x{workers}; "
                f"cpu ratio {base.cpu_us / result.cpu_us:.2f}; RSS per worker "
                + ", ".join(f"{m:.0f} MB" for m in rss)
            )
        ha_pair(workdir, opts.seconds, opts.kills, opts.lag_samples)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
