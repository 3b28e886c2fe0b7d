"""OIDC browser logins: what one login costs the server, step by step.

Run ``python bench/oidc.py`` from the repository root with the project's virtualenv. It
starts ``strongroom server -dev`` (durable SQLite in a temporary directory) and the test
suite's OIDC provider (``tests/auth/oidc_provider.py``, in this process), mounts an ``oidc``
method and runs ``--logins`` complete logins one after another: ``oidc/auth_url`` (stores
the pending login), the provider's authorize redirect (the browser's part, no server work),
and ``oidc/callback`` (spends the state, exchanges the code at the provider's token endpoint,
verifies the ID token, reads userinfo, mints the token). Then the same logins with
``--concurrency`` in flight.

It prints the median latency of each step and the server's CPU time per login (user +
system, all threads, from ``/proc``), which a shared box moves less than latency. The
provider shares the box (and the client's process), so latencies are a ceiling. Figures are
printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # run as a script: make ``bench`` and ``tests`` importable
    sys.path.insert(0, str(HERE.parent))

import httpx  # noqa: E402
from bench.run import Server, cpu_seconds, free_port  # noqa: E402

from tests.auth.oidc_provider import Provider, run_provider  # noqa: E402

REDIRECT = "http://localhost:8250/oidc/callback"


async def one_login(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, timings: dict[str, list[float]]
) -> None:
    t0 = time.perf_counter()
    started = await client.post(
        "/v1/auth/oidc/oidc/auth_url", json={"role": "web", "redirect_uri": REDIRECT}
    )
    started.raise_for_status()
    t1 = time.perf_counter()
    redirect = await browser.get(started.json()["data"]["auth_url"])
    back = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(redirect.headers["location"]).query))
    t2 = time.perf_counter()
    done = await client.get("/v1/auth/oidc/oidc/callback", params=back)
    done.raise_for_status()
    assert done.json()["auth"]["client_token"]
    t3 = time.perf_counter()
    timings["auth_url"].append(t1 - t0)
    timings["provider"].append(t2 - t1)
    timings["callback"].append(t3 - t2)
    timings["login"].append(t3 - t0)


async def bench(base: str, pid: int, logins: int, concurrency: int) -> None:
    async with (
        httpx.AsyncClient(base_url=base, timeout=60) as client,
        httpx.AsyncClient(timeout=60) as browser,
    ):
        for _ in range(5):  # warm up (key cache, connections)
            await one_login(client, browser, {k: [] for k in _STEPS})
        timings: dict[str, list[float]] = {k: [] for k in _STEPS}
        cpu0, wall0 = cpu_seconds(pid), time.perf_counter()
        for _ in range(logins):
            await one_login(client, browser, timings)
        cpu = cpu_seconds(pid) - cpu0
        wall = time.perf_counter() - wall0
        print(
            f"sequential: {logins} logins in {wall:.2f} s, "
            f"server CPU {cpu / logins * 1e3:.2f} ms/login"
        )
        for step in _STEPS:
            print(f"  {step:9} median {statistics.median(timings[step]) * 1e3:7.2f} ms")

        timings = {k: [] for k in _STEPS}
        queue = list(range(logins))

        async def worker() -> None:
            while queue:
                queue.pop()
                await one_login(client, browser, timings)

        cpu0, wall0 = cpu_seconds(pid), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        cpu = cpu_seconds(pid) - cpu0
        wall = time.perf_counter() - wall0
        print(
            f"concurrency {concurrency}: {logins / wall:.1f} logins/s, "
            f"server CPU {cpu / logins * 1e3:.2f} ms/login, "
            f"median login {statistics.median(timings['login']) * 1e3:.1f} ms"
        )


_STEPS = ("auth_url", "provider", "callback", "login")


def setup(base: str, token: str, provider: Provider) -> None:
    with httpx.Client(base_url=base, headers={"X-Vault-Token": token}, timeout=30) as root:
        root.post("/v1/sys/auth/oidc", json={"type": "oidc"}).raise_for_status()
        root.post(
            "/v1/auth/oidc/config",
            json={
                "oidc_discovery_url": provider.url,
                "oidc_client_id": provider.client_id,
                "oidc_client_secret": provider.client_secret,
            },
        ).raise_for_status()
        root.post(
            "/v1/auth/oidc/role/web",
            json={
                "user_claim": "sub",
                "claim_mappings": {"email": "email"},
                "allowed_redirect_uris": [REDIRECT],
                "token_policies": ["dev"],
            },
        ).raise_for_status()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--logins", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        port = free_port()
        server = Server(
            ["-dev", f"-dev-listen-address=127.0.0.1:{port}", f"-dev-dir={workdir / 'data'}"],
            port,
            workdir,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            user = {"sub": "bench-user", "email": "bench@example.test"}
            with run_provider(user=user, redirect_uris=[REDIRECT]) as provider:
                setup(base, server.token, provider)
                asyncio.run(bench(base, server.proc.pid, args.logins, args.concurrency))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
