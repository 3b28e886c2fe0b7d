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
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

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


class RolePoller(threading.Thread):
    """Lists, once per ``interval``, which of the watched users pg_roles still holds (one
    query over the cluster's admin socket), and records when each was first seen gone (the
    wall-clock time that query returned: an upper bound on the drop time) and last seen
    present (the time that query was sent: a lower bound)."""

    def __init__(self, pg: PgCluster, interval: float) -> None:
        super().__init__(name="pg_roles poller", daemon=True)
        self.pg, self.interval = pg, interval
        self.gone: dict[str, float] = {}
        self.present: dict[str, float] = {}
        self.query_seconds: list[float] = []
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self.failure: BaseException | None = None

    def watch(self, username: str) -> None:
        with self._lock:
            self._pending.add(username)

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive():
            self.join(timeout=10)

    def run(self) -> None:
        try:
            with self.pg.admin() as conn:
                tick = time.monotonic()
                while not self._halt.is_set():
                    with self._lock:
                        names = list(self._pending)
                    if names:
                        sent_at, started = time.time(), time.perf_counter()
                        rows = conn.execute(
                            "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", (names,)
                        ).fetchall()
                        seen_at = time.time()
                        self.query_seconds.append(time.perf_counter() - started)
                        present = {row[0] for row in rows}
                        with self._lock:
                            for name in names:
                                if name not in present:
                                    self._pending.discard(name)
                                    self.gone[name] = seen_at
                                else:
                                    self.present[name] = sent_at
                    tick += self.interval
                    self._halt.wait(max(0.0, tick - time.monotonic()))
        except BaseException as exc:  # reported by the main thread
            self.failure = exc


@dataclass
class Expiry:
    live: Phase
    short: Phase
    short_ttl: int = 0
    spread: float = 0.0  # seconds from the first short issue to the last
    lateness: list[float] = field(default_factory=list)  # vs response + lease_duration
    server_lateness: list[float] = field(default_factory=list)  # vs the lease's expire_time
    server_lower: list[float] = field(default_factory=list)  # last seen present - expire_time
    not_dropped: int = 0
    waited: float = 0.0
    query_seconds: list[float] = field(default_factory=list)
    cleanup_leases: int = 0
    cleanup_seconds: float = 0.0
    cleanup_error: str = ""


async def expiry(client: httpx.AsyncClient, pg: PgCluster, opts: argparse.Namespace) -> Expiry:
    live = Phase(f"issue creds/{LIVE_ROLE} (live load)", opts.concurrency)
    short = Phase(f"issue creds/{SHORT_ROLE} (paced, +lookup)", opts.concurrency)
    result = Expiry(live, short)

    # the live load: --live leases on the 1h role, at full concurrency
    queue = list(range(opts.live))

    async def live_worker() -> None:
        while queue:
            queue.pop()
            started = time.perf_counter()
            response = await client.get(f"/v1/database/creds/{LIVE_ROLE}")
            if response.status_code != 200:
                live.error(response)
                continue
            live.latencies.append(time.perf_counter() - started)
            live.lease_ids.append(response.json()["lease_id"])

    started = time.perf_counter()
    await asyncio.gather(*(live_worker() for _ in range(opts.concurrency)))
    live.elapsed = time.perf_counter() - started

    # the short leases, paced evenly over --stagger seconds; every user is watched
    poller = RolePoller(pg, opts.poll_ms / 1000)
    expiries: dict[str, float] = {}
    server_expiries: dict[str, float] = {}
    issued_at: list[float] = []
    gap = opts.stagger / max(1, opts.short - 1)
    gate = asyncio.Semaphore(opts.concurrency)
    poller.start()
    try:
        begin = time.perf_counter()

        async def issue_one(i: int) -> None:
            await asyncio.sleep(max(0.0, begin + i * gap - time.perf_counter()))
            async with gate:
                started = time.perf_counter()
                response = await client.get(f"/v1/database/creds/{SHORT_ROLE}")
                received = time.time()
                if response.status_code != 200:
                    short.error(response)
                    return
                short.latencies.append(time.perf_counter() - started)
                issued_at.append(time.perf_counter())
                body: dict[str, Any] = response.json()
                username = body["data"]["username"]
                result.short_ttl = body["lease_duration"]
                expiries[username] = received + body["lease_duration"]
                poller.watch(username)
                short.lease_ids.append(body["lease_id"])
                looked = await client.put(
                    "/v1/sys/leases/lookup", json={"lease_id": body["lease_id"]}
                )
                if looked.status_code == 200:
                    stamp = looked.json()["data"]["expire_time"]
                    server_expiries[username] = datetime.fromisoformat(stamp).timestamp()

        await asyncio.gather(*(issue_one(i) for i in range(opts.short)))
        short.elapsed = time.perf_counter() - begin
        result.spread = max(issued_at) - min(issued_at) if issued_at else 0.0

        # wait for every watched user to go (or --expiry-timeout past the last expiry)
        deadline = max(expiries.values(), default=time.time()) + opts.expiry_timeout
        while poller.pending() and time.time() < deadline and poller.is_alive():
            await asyncio.sleep(0.1)
        result.waited = time.time() - min(expiries.values(), default=time.time())
    finally:
        poller.stop()
    if poller.failure is not None:
        raise RuntimeError(f"polling pg_roles failed: {poller.failure!r}")
    result.query_seconds = poller.query_seconds
    for username, expires in expiries.items():
        dropped = poller.gone.get(username)
        if dropped is None:
            result.not_dropped += 1
            continue
        result.lateness.append(dropped - expires)
        if username in server_expiries:
            result.server_lateness.append(dropped - server_expiries[username])
            seen = poller.present.get(username, server_expiries[username])
            result.server_lower.append(seen - server_expiries[username])

    # clean up: revoke whatever is left under both roles
    started = time.perf_counter()
    for role in (LIVE_ROLE, SHORT_ROLE):
        result.cleanup_leases += len(
            (await client.request("LIST", f"/v1/sys/leases/lookup/database/creds/{role}/"))
            .json()
            .get("data", {})
            .get("keys", [])
        )
        response = await client.put(
            f"/v1/sys/leases/revoke-prefix/database/creds/{role}", timeout=600
        )
        if response.status_code not in (200, 204) and not result.cleanup_error:
            result.cleanup_error = f"{response.status_code} {response.text[:200]}"
    result.cleanup_seconds = time.perf_counter() - started
    return result


def setup_cluster(pg: PgCluster) -> None:
    with pg.admin() as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}").format(
                sql.Identifier(ADMIN), sql.Literal(ADMIN_PASSWORD)
            )
        )
        conn.execute("CREATE TABLE bench_widgets (id int)")


def configure(url: str, token: str, pg: PgCluster, opts: argparse.Namespace) -> None:
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
                "max_open_connections": opts.max_open_connections,
            },
        ).raise_for_status()
        for role, statements, ttl in (
            ("create-only", CREATE_ONLY, "1h"),
            ("create-grant", CREATE_GRANT, "1h"),
            (LIVE_ROLE, CREATE_ONLY, "1h"),
            (SHORT_ROLE, CREATE_ONLY, f"{opts.short_ttl}s"),
        ):
            http.post(
                f"/v1/database/roles/{role}",
                json={"db_name": "pg", "creation_statements": statements, "default_ttl": ttl},
            ).raise_for_status()


async def run(
    url: str, token: str, pg: PgCluster, opts: argparse.Namespace
) -> tuple[list[Phase], Expiry | None]:
    limits = httpx.Limits(max_connections=opts.concurrency)
    phases: list[Phase] = []
    expired: Expiry | None = None
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
            if opts.short:
                expired = await expiry(client, pg, opts)
    return phases, expired


def report(
    pg: PgCluster, opts: argparse.Namespace, phases: list[Phase], exp: Expiry | None
) -> None:
    print()
    print(
        f"PostgreSQL {pg.bindir.parent.name}, concurrency {opts.concurrency}, "
        f"max_open_connections {opts.max_open_connections}, {os.cpu_count()} CPUs, "
        f"load average at start {opts.load_at_start:.2f}"
    )
    print(f"{'benchmark':36} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'count':>7} {'errors':>7}")
    shown = [*phases, *((exp.live, exp.short) if exp else ())]
    for phase in shown:
        print(
            f"{phase.name:36} {phase.rps:9.0f} {phase.percentile(50):8.2f} "
            f"{phase.percentile(99):8.2f} {len(phase.latencies):7d} {phase.errors:7d}"
        )
    for phase in shown:
        if phase.first_error:
            print(f"  first error in {phase.name}: {phase.first_error}")
    if exp is None:
        return
    print(
        f"\nexpiry -> DROP ROLE lateness: {len(exp.live.lease_ids):,} live 1h leases, "
        f"{len(exp.short.lease_ids)} leases of ttl {exp.short_ttl} s issued over "
        f"{exp.spread:.1f} s, pg_roles polled every {opts.poll_ms:.0f} ms "
        f"(query p50 {percentile(exp.query_seconds, 50):.1f} ms, "
        f"max {max(exp.query_seconds, default=0) * 1000:.1f} ms)"
    )
    print(
        f"{'expiry taken as':36} {'count':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
        f"{'max ms':>8} {'min ms':>8}"
    )
    for label, values in (
        ("issue response + lease_duration", exp.lateness),
        ("server expire_time (leases/lookup)", exp.server_lateness),
        ("  lower bound (last seen present)", exp.server_lower),
    ):
        worst = max(values, default=float("nan")) * 1000
        best = min(values, default=float("nan")) * 1000
        print(
            f"{label:36} {len(values):7d} {percentile(values, 50):8.0f} "
            f"{percentile(values, 95):8.0f} {percentile(values, 99):8.0f} {worst:8.0f} "
            f"{best:8.0f}"
        )
    p99 = percentile(exp.lateness, 99)
    verdict = "met" if p99 < 2000 and not exp.not_dropped else "MISSED"
    print(
        f"target p99 < 2000 ms: {verdict} (p99 {p99:.0f} ms; users not dropped within "
        f"{opts.expiry_timeout:.0f} s of the last expiry: {exp.not_dropped})"
    )
    rate = exp.cleanup_leases / exp.cleanup_seconds if exp.cleanup_seconds else 0.0
    print(
        f"clean-up: sys/leases/revoke-prefix of {exp.cleanup_leases:,} leases took "
        f"{exp.cleanup_seconds:.1f} s ({rate:.0f} leases/s)"
        + (f"; error: {exp.cleanup_error}" if exp.cleanup_error else "")
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-open-connections", type=int, default=4)
    parser.add_argument("--live", type=int, default=1000, help="live 1h leases held")
    parser.add_argument("--short", type=int, default=200, help="short leases (0: skip)")
    parser.add_argument("--short-ttl", type=int, default=5, help="their TTL, seconds")
    parser.add_argument("--stagger", type=float, default=4.0, help="issued over N seconds")
    parser.add_argument("--poll-ms", type=float, default=50.0, help="pg_roles poll interval")
    parser.add_argument("--expiry-timeout", type=float, default=30.0)
    opts = parser.parse_args()
    opts.load_at_start = os.getloadavg()[0]
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
            configure(url, server.token, pg, opts)
            phases, expired = asyncio.run(run(url, server.token, pg, opts))
        finally:
            server.stop()
        left = pg.query("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v-%'")[0][0]

    report(pg, opts, phases, expired)
    print(f"dynamic users left in PostgreSQL after the run: {left}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
