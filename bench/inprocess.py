"""Per-request cost of the app without HTTP: drives the ASGI app in-process.

``python bench/inprocess.py [--profile] [--setting S ...]`` prints µs per request for KV v2
read, token lookup-self and KV v2 write (SQLite, concurrency 32); with --profile, the top
functions of the read path. Use it before and after touching the hot path.

``--setting`` runs the reads in short alternating runs under each of ``bare`` (no request
metrics, no in-flight table, no quota), ``metrics`` (as shipped, no quota), ``quota`` (a
rate-limit quota on ``secret/`` that no run can exhaust) and ``headers`` (the same with
``enable_rate_limit_response_headers``), and reports the median and best CPU time of each::

    python bench/inprocess.py --setting bare metrics quota headers --rounds 40
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import uvloop

from strongroom.core.quotas import QuotaConfig, QuotaManager, RateLimitQuota
from strongroom.server.wiring import assemble

SETTINGS = ("bare", "metrics", "quota", "headers")


def quota_managers() -> dict[str, QuotaManager]:
    """One quota manager per setting, kept across runs (their caches stay warm, as in a
    server whose quotas do not change)."""
    managers = {}
    for setting in SETTINGS:
        manager = QuotaManager()
        manager.load(
            QuotaConfig(enable_rate_limit_response_headers=setting == "headers"),
            [RateLimitQuota(name="bench", rate=1e12, path="secret/")]
            if setting in ("quota", "headers")
            else [],
            [],
        )
        managers[setting] = manager
    return managers


def apply_setting(assembly: Any, shipped: Any, managers: dict[str, Any], setting: str) -> None:
    """Put the app and core in one of ``SETTINGS``."""
    assembly.app.hooks = (
        dataclasses.replace(shipped, observe=None) if setting == "bare" else shipped
    )
    assembly.core.quotas = managers[setting]


async def compare(assembly: Any, call: Any, paths: list[str], settings: list[str], rounds: int):
    """Short alternating runs (so a noisy neighbour hits every setting alike): the median
    and the best of ``rounds`` runs per setting, in CPU time of this thread (time spent
    descheduled by the box's other jobs is not counted)."""
    shipped, managers = assembly.app.hooks, quota_managers()
    runs: dict[str, list[float]] = {setting: [] for setting in settings}
    for _ in range(rounds):
        for setting in settings:
            apply_setting(assembly, shipped, managers, setting)
            start = time.thread_time()
            for path in paths:
                await call("GET", path)
            runs[setting].append((time.thread_time() - start) / len(paths) * 1e6)
    apply_setting(assembly, shipped, managers, "metrics")
    base = statistics.median(runs[settings[0]])
    print(f"KV v2 read, {rounds} alternating runs of {len(paths)} requests per setting:")
    for setting in settings:
        median, best = statistics.median(runs[setting]), min(runs[setting])
        extra = (median / base - 1) * 100
        print(
            f"  {setting:10} median {median:6.1f} us CPU/request  ({extra:+5.1f} % vs"
            f" {settings[0]})  best {best:6.1f}"
        )


async def main(profile: bool, settings: list[str], rounds: int, profile_setting: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        assembly = await assemble("sqlite", {"path": f"{tmp}/db.sqlite"})
        core = assembly.core
        keys, root = await core.initialize(1, 1)
        await core.seal_manager.submit_unseal_key(keys[0])
        await core.after_unseal()
        await core.enable("secret/", "kv", is_auth=False, options={"version": "2"})
        app = assembly.app
        token = root.encode()

        async def call(method: str, path: str, body: bytes = b"") -> int:
            scope: dict[str, Any] = {
                "type": "http",
                "method": method,
                "path": path,
                "query_string": b"",
                "headers": [(b"x-vault-token", token), (b"content-length", b"%d" % len(body))],
                "client": ("127.0.0.1", 1),
            }
            messages = [{"type": "http.request", "body": body, "more_body": False}]
            sent: list[dict[str, Any]] = []

            async def receive() -> dict[str, Any]:
                return messages.pop()

            async def send(message: dict[str, Any]) -> None:
                sent.append(message)

            await app(scope, receive, send)
            return int(sent[0]["status"])

        body = b'{"data":{"username":"svc","password":"0123456789abcdef0123"}}'
        for i in range(100):
            assert await call("POST", f"/v1/secret/data/b{i}", body) == 200
        n = 2000
        reads = [f"/v1/secret/data/b{i % 100}" for i in range(n)]
        if settings:
            await compare(assembly, call, reads[:500], settings, rounds)
            if profile:
                apply_setting(assembly, assembly.app.hooks, quota_managers(), profile_setting)
                profiler = cProfile.Profile()
                profiler.enable()
                for path in reads * 3:
                    await call("GET", path)
                profiler.disable()
                pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
            await assembly.close()
            return
        for name, paths in (
            ("KV v2 read", reads),
            ("token lookup-self", ["/v1/auth/token/lookup-self"] * n),
        ):
            # the best of five rounds: this box shares its two cores with other jobs
            best = float("inf")
            for _ in range(5):
                start = time.perf_counter()
                for path in paths:
                    await call("GET", path)
                best = min(best, time.perf_counter() - start)
            print(f"{name:20} {best / n * 1e6:7.1f} us/request")
        semaphore = asyncio.Semaphore(32)

        async def write(i: int) -> None:
            async with semaphore:
                assert await call("POST", f"/v1/secret/data/b{i % 100}", body) == 200

        start = time.perf_counter()
        await asyncio.gather(*(write(i) for i in range(2000)))
        elapsed = time.perf_counter() - start
        print(f"{'KV v2 write (c=32)':20} {elapsed / 2000 * 1e6:7.1f} us/request")
        physical: Any = assembly.physical
        print(f"  ({physical.write_count} writes in {physical.commit_count} commits so far)")
        if profile:
            profiler = cProfile.Profile()
            profiler.enable()
            for path in reads * 3:
                await call("GET", path)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        await assembly.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--setting", nargs="+", choices=SETTINGS, default=[])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--profile-setting", choices=SETTINGS, default="headers")
    opts = parser.parse_args()
    # the server's event loop
    uvloop.run(main(opts.profile, opts.setting, opts.rounds, opts.profile_setting))
