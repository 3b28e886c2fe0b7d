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
    requests: int = 0
    cpu_us: float = float("nan")  # server CPU (user + system, all threads) per request


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU time a process has used (user + system, all its threads). Unlike req/s, this
    does not move with the CPU time the hypervisor steals or wrk takes from the server."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def run_wrk_cpu(
    name: str, url: str, script: Path | None, seconds: int, env: dict[str, str], pid: int
) -> Result:
    before = cpu_seconds(pid)
    result = run_wrk(name, url, script, seconds, env)
    used = cpu_seconds(pid) - before
    if result.requests:
        result.cpu_us = used / result.requests * 1e6
    return result


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
    total = re.search(r"(\d+) requests in", out)
    errors = 0
    for pattern in (r"Non-2xx or 3xx responses: (\d+)", r"Socket errors: .*?timeout (\d+)"):
        match = re.search(pattern, out)
        if match:
            errors += int(match.group(1))
    return Result(
        name,
        rps,
        _ms(p50.group(1)) if p50 else 0,
        _ms(p99.group(1)) if p99 else 0,
        errors,
        int(total.group(1)) if total else 0,
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


def fill(url: str, token: str, count: int) -> tuple[int, float]:
    """Write at least ``count`` new secrets with wrk (a Python client manages only a couple
    hundred writes a second). Returns (secrets written, seconds taken)."""
    started = time.perf_counter()
    written = 0
    run = 0
    while written < count:
        env = {"VAULT_TOKEN": token, "FILL_RUN": str(run)}
        seconds = max(5, min(60, (count - written) // 1000))
        result = run_wrk("fill", url, LUA / "kv_fill.lua", seconds, env)
        if result.errors:
            raise RuntimeError(f"{result.errors} writes failed while filling the store")
        written += result.requests
        run += 1
    return written, time.perf_counter() - started


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
            base = run_wrk_cpu(
                "ceiling (bare ASGI, 100-byte JSON)",
                f"http://127.0.0.1:{port}/",
                None,
                opts.seconds,
                {},
                ceiling.pid,
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
            pid = server.proc.pid
            for name, script in (
                ("KV v2 read", "kv_read.lua"),
                ("KV v2 write (durable)", "kv_write.lua"),
                ("token lookup-self", "lookup_self.lua"),
            ):
                results.append(run_wrk_cpu(name, url, LUA / script, opts.seconds, env, pid))
            if opts.rss_secrets:
                stored, took = fill(url, server.token, opts.rss_secrets)
                rss = server.peak_rss_mb()
            else:
                stored, took, rss = 0, 0.0, float("nan")
        finally:
            server.stop()

    print()
    print(
        f"{'benchmark':36} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'ratio':>6} "
        f"{'cpu us/req':>10} {'cpu ratio':>9} {'errors':>6}"
    )
    for result in results:
        ratio = result.rps / base.rps if base.rps else float("nan")
        cpu_ratio = base.cpu_us / result.cpu_us if result.cpu_us else float("nan")
        print(
            f"{result.name:36} {result.rps:8.0f} {result.p50_ms:7.2f} {result.p99_ms:7.2f} "
            f"{ratio:6.2f} {result.cpu_us:10.1f} {cpu_ratio:9.2f} {result.errors:6d}"
        )
    print(
        "\nratio: req/s over the ceiling's. cpu ratio: the ceiling's server CPU per request over"
        "\nthis one's, which the CPU time stolen by the hypervisor or taken by wrk does not move."
    )
    if opts.rss_secrets:
        print(
            f"\npeak RSS with {stored:,} secrets stored (+1,000 + writes above): "
            f"{rss:.0f} MB (written in {took:.0f} s by wrk at concurrency 32, "
            f"{stored / took:.0f} new secrets/s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
