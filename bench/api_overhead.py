"""What metrics and quotas cost a KV v2 read: server CPU per request, measured with wrk.

Starts a dev server per setting (all kept running), then measures them in turn,
``--rounds`` times each for ``--seconds`` each, and reports the median and the best server
CPU per KV v2 read of each (on a shared box, a neighbour's burst hits one short run, not a
whole setting):

* ``baseline``: a tree without request metrics or quotas (``--baseline-src``, e.g. the
  ``src/`` of ``git archive`` of an earlier commit), if given;
* ``metrics``: this tree as shipped (request metrics always on, no quota configured);
* ``metrics+quota``: this tree with a rate-limit quota on ``secret/`` (a rate no run can
  reach, so every request passes through the token bucket);
* ``+quota headers``: the same with ``enable_rate_limit_response_headers`` (three more
  response headers per request).

    python bench/api_overhead.py --seconds 4 --rounds 8 --baseline-src /tmp/base/src

(to measure exactly the cost of metrics and quotas, make the baseline a copy of this
tree's ``src/`` with the ``observe`` hook taken out, e.g. ``observe=None`` in
``server/wiring.py``: no request metrics, no in-flight table, and no quota configured
costs one boolean). ``--before-src`` adds the three settings of another tree (an earlier
commit's ``src/``) to the same alternating rounds, as ``before …``.

Figures are reported, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import LUA, Server, free_port, load_secrets, run_wrk_cpu


def _server(workdir: Path, src: str | None) -> Server:
    port = free_port()
    previous = os.environ.get("PYTHONPATH")
    if src:
        os.environ["PYTHONPATH"] = src
    try:
        return Server(
            ["-dev", f"-dev-listen-address=127.0.0.1:{port}", f"-dev-dir={workdir / 'd'}"],
            port,
            workdir,
        )
    finally:
        if src:
            if previous is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = previous


def prepare(workdir: Path, src: str | None, quota: str) -> Server:
    """A running dev server with 1000 KV v2 secrets and the setting's quota."""
    server = _server(workdir, src)
    url = f"http://127.0.0.1:{server.port}"
    asyncio.run(load_secrets(url, server.token, 1000, "bench"))
    if quota:
        with httpx.Client(base_url=url, headers={"X-Vault-Token": server.token}) as c:
            c.post(
                "/v1/sys/quotas/rate-limit/bench",
                json={"rate": 1e12, "path": "secret/"},
            ).raise_for_status()
            if quota == "headers":
                c.post(
                    "/v1/sys/quotas/config",
                    json={"enable_rate_limit_response_headers": True},
                ).raise_for_status()
    return server


def measure(name: str, server: Server, seconds: int) -> float:
    url = f"http://127.0.0.1:{server.port}"
    env = {"VAULT_TOKEN": server.token}
    result = run_wrk_cpu(name, url, LUA / "kv_read.lua", seconds, env, server.proc.pid)
    if result.errors:
        raise RuntimeError(f"{name}: {result.errors} errors")
    print(f"  {name:16} {result.rps:8.0f} req/s  {result.cpu_us:7.1f} µs CPU/req", flush=True)
    return result.cpu_us


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--baseline-src", default="")
    parser.add_argument("--src", default="", help="this tree's src/ (default: the installed one)")
    parser.add_argument("--before-src", default="", help="an earlier tree's src/ to compare")
    opts = parser.parse_args()
    settings: list[tuple[str, str | None, str]] = []
    if opts.baseline_src:
        settings.append(("baseline", opts.baseline_src, ""))
    src = opts.src or None
    settings += [
        ("metrics", src, ""),
        ("metrics+quota", src, "quota"),
        ("+quota headers", src, "headers"),
    ]
    if opts.before_src:
        settings += [
            ("before metrics", opts.before_src, ""),
            ("before +quota", opts.before_src, "quota"),
            ("before +headers", opts.before_src, "headers"),
        ]
    runs: dict[str, list[float]] = {name: [] for name, _, _ in settings}
    with tempfile.TemporaryDirectory(prefix="strongroom-api-bench-") as tmp:
        # every setting's server runs throughout (idle but for its turn), so that each
        # round measures all of them within seconds of each other
        servers: dict[str, Server] = {}
        try:
            for n, (name, tree, quota) in enumerate(settings):
                workdir = Path(tmp) / str(n)
                workdir.mkdir()
                servers[name] = prepare(workdir, tree, quota)
            for round_ in range(opts.rounds):
                print(f"round {round_ + 1}", flush=True)
                for name, _, _ in settings:
                    runs[name].append(measure(name, servers[name], opts.seconds))
        finally:
            for server in servers.values():
                server.stop()
    print("\nserver CPU per KV v2 read (median and best of the rounds):")
    reference = statistics.median(runs["baseline"]) if "baseline" in runs else None
    for name, values in runs.items():
        median = statistics.median(values)
        extra = f"  ({(median / reference - 1) * 100:+.1f} % vs baseline)" if reference else ""
        print(f"  {name:16} median {median:7.1f} µs  best {min(values):7.1f} µs{extra}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
