"""``make bench``: wrk against the ceiling and a real Strongroom server.

Prints req/s, p50/p99 latency and the ratio to the ceiling for KV v2 read, durable KV v2
write and token lookup-self at concurrency 32, then the server's peak RSS with 100,000
secrets stored. Figures are reported, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
LUA = HERE / "lua"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


@dataclass
class Result:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not match:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def run_wrk(name: str, url: str, script: Path | None, seconds: int, env: dict[str, str]) -> Result:
    cmd = ["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency"]
    if script is not None:
        cmd += ["-s", str(script)]
    cmd.append(url)
    out = subprocess.run(
        cmd, capture_output=True, text=True, env={**os.environ, **env}, check=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"^\s*50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s*99%\s+(\S+)", out, re.M)
    errors = 0
    for pattern in (r"Non-2xx or 3xx responses: (\d+)", r"Socket errors: .*?timeout (\d+)"):
        match = re.search(pattern, out)
        if match:
            errors += int(match.group(1))
    return Result(
        name, rps, _ms(p50.group(1)) if p50 else 0, _ms(p99.group(1)) if p99 else 0, errors
    )


class Server:
    def __init__(self, args: list[str], port: int, workdir: Path) -> None:
        self.port = port
        self.log = workdir / f"server-{port}.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "strongroom.server", *args],
                stdout=log,
                stderr=log,
                cwd=workdir,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = self.log.read_text(errors="replace")
            if "Root Token:" in text:
                break
            if self.proc.poll() is not None:
                raise RuntimeError(text)
            time.sleep(0.05)
        wait_port(port)
        match = re.search(r"Root Token: (\S+)", self.log.read_text())
        self.token = match.group(1) if match else ""

    def peak_rss_mb(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        match = re.search(r"VmHWM:\s+(\d+) kB", status)
        return int(match.group(1)) / 1024 if match else float("nan")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def load_secrets(
    base: str, token: str, count: int, prefix: str, concurrency: int = 64
) -> float:
    started = time.perf_counter()
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=base, headers={"X-Vault-Token": token}, limits=limits, timeout=60
    ) as client:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(count):
            queue.put_nowait(i)

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                response = await client.post(
                    f"/v1/secret/data/{prefix}/{i}",
                    json={"data": {"username": f"user-{i}", "password": "p" * 24}},
                )
                response.raise_for_status()

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rss-secrets", type=int, default=100_000)
    opts = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 1
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="strongroom-bench-") as tmp:
        workdir = Path(tmp)
        port = free_port()
        ceiling = subprocess.Popen([sys.executable, str(HERE / "ceiling.py"), str(port)])
        try:
            wait_port(port)
            base = run_wrk(
                "ceiling (bare ASGI, 100-byte JSON)",
                f"http://127.0.0.1:{port}/",
                None,
                opts.seconds,
                {},
            )
        finally:
            ceiling.terminate()
            ceiling.wait()
        results.append(base)

        port = free_port()
        server = Server(
            ["-dev", f"-dev-listen-address=127.0.0.1:{port}", f"-dev-dir={workdir / 'data'}"],
            port,
            workdir,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            asyncio.run(load_secrets(url, server.token, 1000, "bench"))
            env = {"VAULT_TOKEN": server.token}
            results.append(run_wrk("KV v2 read", url, LUA / "kv_read.lua", opts.seconds, env))
            results.append(
                run_wrk("KV v2 write (durable)", url, LUA / "kv_write.lua", opts.seconds, env)
            )
            results.append(
                run_wrk("token lookup-self", url, LUA / "lookup_self.lua", opts.seconds, env)
            )
            if opts.rss_secrets:
                took = asyncio.run(load_secrets(url, server.token, opts.rss_secrets, "rss"))
                rss = server.peak_rss_mb()
            else:
                took, rss = 0.0, float("nan")
        finally:
            server.stop()

    print()
    print(f"{'benchmark':40} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'ratio':>7} {'errors':>7}")
    for result in results:
        ratio = result.rps / base.rps if base.rps else float("nan")
        print(
            f"{result.name:40} {result.rps:10.0f} {result.p50_ms:8.2f} {result.p99_ms:8.2f} "
            f"{ratio:7.2f} {result.errors:7d}"
        )
    if opts.rss_secrets:
        print(
            f"\npeak RSS with {opts.rss_secrets:,} secrets stored (+1,000 + writes above): "
            f"{rss:.0f} MB (loaded in {took:.0f} s, {opts.rss_secrets / took:.0f} writes/s at "
            "concurrency 64)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
