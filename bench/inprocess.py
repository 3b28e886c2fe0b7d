"""Per-request cost of the app without HTTP: drives the ASGI app in-process.

``python bench/inprocess.py [--profile]`` prints µs per request for KV v2 read, token
lookup-self and KV v2 write (SQLite, concurrency 32); with --profile, the top functions of
the read path. Use it before and after touching the hot path.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import uvloop

from strongroom.server.wiring import assemble


async def main(profile: bool) -> None:
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
    uvloop.run(main(parser.parse_args().profile))  # the server's event loop
