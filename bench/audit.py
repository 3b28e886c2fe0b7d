"""``python bench/audit.py``: what one file audit device costs on KV v2 reads.

Runs wrk (concurrency 32) on KV v2 reads of 1,000 preloaded secrets against a dev server
without audit, then the same with one ``file`` audit device enabled (checkpoints at the
defaults: every 1,000 lines or 60 s), alternating the two for several rounds on the same
server, and prints req/s and latency (each side's best round), the ratio of the best runs,
and the median of the per-round ratios: each round pairs two runs seconds apart, so the
median resists what other processes on the machine do to single runs. The target is a
ratio of at least 0.70. Figures are reported, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.run import LUA, Result, Server, free_port, load_secrets, run_wrk  # noqa: E402


def _audit(url: str, token: str, enable: bool, log: Path, options: dict[str, str]) -> None:
    headers = {"X-Vault-Token": token}
    if enable:
        body = {"type": "file", "options": {"file_path": str(log), **options}}
        httpx.put(f"{url}/v1/sys/audit/bench", json=body, headers=headers).raise_for_status()
    else:
        httpx.delete(f"{url}/v1/sys/audit/bench", headers=headers).raise_for_status()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument(
        "--option", action="append", default=[], help="extra device option k=v (repeatable)"
    )
    parser.add_argument("--log-dir", default="", help="where the audit log goes (default: tmp)")
    opts = parser.parse_args()
    options = dict(item.split("=", 1) for item in opts.option)
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 1
    plain: list[Result] = []
    audited: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="strongroom-bench-audit-") as tmp:
        workdir = Path(tmp)
        log_dir = Path(opts.log_dir) if opts.log_dir else workdir
        log = log_dir / f"strongroom-bench-audit-{workdir.name}.log"
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
            run_wrk("warm-up", url, LUA / "kv_read.lua", 3, env)
            for _ in range(opts.rounds):
                plain.append(run_wrk("plain", url, LUA / "kv_read.lua", opts.seconds, env))
                _audit(url, server.token, True, log, options)
                audited.append(run_wrk("audited", url, LUA / "kv_read.lua", opts.seconds, env))
                _audit(url, server.token, False, log, options)
            size = log.stat().st_size if log.exists() else 0
            with open(log if log.exists() else os.devnull, "rb") as handle:
                lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
        finally:
            server.stop()
            log.unlink(missing_ok=True)
    best_plain = max(plain, key=lambda r: r.rps)
    best_audit = max(audited, key=lambda r: r.rps)
    print()
    print(
        f"{'KV v2 read, concurrency 32':40} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
    )
    for label, result in (("no audit device", best_plain), ("one file audit device", best_audit)):
        print(
            f"{label:40} {result.rps:10.0f} {result.p50_ms:8.2f} {result.p99_ms:8.2f} "
            f"{result.errors:7d}"
        )
    rounds = [(round(p.rps), round(a.rps)) for p, a in zip(plain, audited, strict=True)]
    ratios = sorted(a / p for p, a in rounds)
    median = (ratios[(len(ratios) - 1) // 2] + ratios[len(ratios) // 2]) / 2
    print(
        f"\nratio audited / plain: median of rounds {median:.2f}, best runs "
        f"{best_audit.rps / best_plain.rps:.2f} (target >= 0.70)"
    )
    print(f"per round (plain, audited): {rounds}")
    print(f"audit log: {lines:,} lines, {size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
