"""Storage backends under load: durable KV v2 write (and read) on SQLite vs PostgreSQL.

``python bench/storage.py`` (from the repository root, with the project's virtualenv) starts,
for each backend, a production-mode ``strongroom server -config`` (init, unseal, KV v2 at
``secret/``, 1,000 secrets), then runs wrk (2 threads, 32 connections, ``--seconds`` each)
with bench/lua/kv_write.lua and kv_read.lua, and reports req/s, p50/p99 and the server's CPU
per request. Backends:

* ``sqlite``: the default file backend (WAL, synchronous=FULL, group commit);
* ``postgresql``: a throwaway local cluster (tests/pg.py's, but **durable**: fsync on,
  ``synchronous_commit = on``, full page writes), one server, ``ha_enabled = false``;
* ``postgresql-ha``: the same with ``ha_enabled = true`` (one active node: every write also
  checks the fence and appends to the change feed, whose row is held through each COMMIT;
  concurrent writes are group-committed).

The database's own CPU is reported separately for PostgreSQL (all its processes). Figures
are reported, never asserted.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # run as a script: make ``bench`` and ``tests`` importable
    sys.path.insert(0, str(HERE.parent))

import httpx  # noqa: E402
from bench.run import LUA, Result, cpu_seconds, free_port, run_wrk, wait_port  # noqa: E402

from tests.pg import PgCluster  # noqa: E402

CONFIG = """
storage "{kind}" {{
{body}
}}
listener "tcp" {{
  address = "127.0.0.1:{port}"
  tls_disable = true
}}
api_addr = "http://127.0.0.1:{port}"
"""


class DurablePgCluster(PgCluster):
    """tests/pg.py's cluster with its test-speed settings (fsync off …) turned back on."""

    def _pg_ctl(self, *args: str, check: bool) -> subprocess.CompletedProcess[str]:
        fast = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        durable = "-c fsync=on -c synchronous_commit=on -c full_page_writes=on"
        return super()._pg_ctl(*(a.replace(fast, durable) for a in args), check=check)


def postgres_cpu(cluster: PgCluster) -> float:
    """CPU seconds used so far by every process of the cluster (postmaster and backends)."""
    pid = int((cluster.datadir / "postmaster.pid").read_text().split()[0])
    children = subprocess.run(
        ["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    total = 0.0
    for one in [pid, *map(int, children)]:
        try:
            total += cpu_seconds(one)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


class ConfigServer:
    def __init__(self, config: str, workdir: Path, port: int) -> None:
        path = workdir / f"server-{port}.hcl"
        path.write_text(config)
        self.log = workdir / f"server-{port}.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "strongroom.server", f"-config={path}"],
                stdout=log,
                stderr=log,
                cwd=workdir,
            )
        wait_port(port)
        self.url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=self.url, timeout=60) as http:
            init = http.put("/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1})
            init.raise_for_status()
            key, self.token = init.json()["keys_base64"][0], init.json()["root_token"]
            http.put("/v1/sys/unseal", json={"key": key}).raise_for_status()
            headers = {"X-Vault-Token": self.token}
            deadline = time.monotonic() + 30
            while True:  # an HA node becomes active a moment after its unseal
                answer = http.post("/v1/sys/mounts/secret", json={"type": "kv-v2"}, headers=headers)
                if answer.status_code == 204 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            answer.raise_for_status()
            for i in range(1000):
                http.post(
                    f"/v1/secret/data/bench/{i}",
                    json={"data": {"username": f"user-{i}", "password": "p" * 24}},
                    headers=headers,
                ).raise_for_status()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def measure(
    name: str, server: ConfigServer, seconds: int, pg: PgCluster | None
) -> list[tuple[Result, float]]:
    out = []
    for label, script in (("KV v2 write (durable)", "kv_write.lua"), ("KV v2 read", "kv_read.lua")):
        before = cpu_seconds(server.proc.pid)
        db_before = postgres_cpu(pg) if pg else 0.0
        result = run_wrk(
            f"{name}: {label}", server.url, LUA / script, seconds, {"VAULT_TOKEN": server.token}
        )
        used = cpu_seconds(server.proc.pid) - before
        db_used = (postgres_cpu(pg) - db_before) if pg else 0.0
        if result.requests:
            result.cpu_us = used / result.requests * 1e6
        out.append((result, db_used / result.requests * 1e6 if result.requests and pg else 0.0))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument(
        "--only", default="sqlite,postgresql,postgresql-ha", help="comma-separated backends"
    )
    parser.add_argument("--keep", help="copy the servers' logs into this directory")
    opts = parser.parse_args()
    wanted = opts.only.split(",")
    rows: list[tuple[Result, float]] = []
    with tempfile.TemporaryDirectory(prefix="strongroom-bench-storage-") as tmp:
        workdir = Path(tmp)
        pg: PgCluster | None = None
        try:
            for kind in wanted:
                port = free_port()
                if kind == "sqlite":
                    body = f'  path = "{workdir / "bench.db"}"'
                    config = CONFIG.format(kind="sqlite", body=body, port=port)
                    cluster = None
                else:
                    if pg is None:
                        pg = DurablePgCluster().start()
                        settings = (
                            pg.query("SHOW fsync")[0][0],
                            pg.query("SHOW synchronous_commit")[0][0],
                        )
                        print(f"PostgreSQL fsync={settings[0]} synchronous_commit={settings[1]}")
                    url = pg.dsn(pg.superuser, pg.superuser_password)
                    ha = "true" if kind == "postgresql-ha" else "false"
                    table = kind.replace("-", "_")
                    body = (
                        f'  connection_url = "{url}"\n  table = "{table}"\n'
                        f'  ha_table = "{table}_locks"\n  ha_enabled = "{ha}"\n'
                        "  max_parallel = 32"
                    )
                    config = CONFIG.format(kind="postgresql", body=body, port=port)
                    cluster = pg
                server = ConfigServer(config, workdir, port)
                try:
                    rows += measure(kind, server, opts.seconds, cluster)
                finally:
                    server.stop()
                    if opts.keep:
                        os.makedirs(opts.keep, exist_ok=True)
                        target = Path(opts.keep) / f"{kind}.log"
                        target.write_bytes(server.log.read_bytes())
        finally:
            if pg is not None:
                pg.destroy()
    print()
    print(
        f"{'benchmark':44} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'cpu us/req':>10} "
        f"{'db cpu us/req':>13} {'errors':>6}"
    )
    for result, db_us in rows:
        print(
            f"{result.name:44} {result.rps:8.0f} {result.p50_ms:7.2f} {result.p99_ms:7.2f} "
            f"{result.cpu_us:10.1f} {db_us:13.1f} {result.errors:6d}"
        )
    print(
        f"\nwrk -t2 -c32 -d{opts.seconds}s; {os.cpu_count()} CPUs shared with wrk and the database"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
