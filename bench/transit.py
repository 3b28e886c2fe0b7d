"""Transit benchmark: wrk against the bare-ASGI ceiling and a real Strongroom dev server.

Runs ``python bench/transit.py`` (from the repository root, with the project's virtualenv):
measures the ceiling exactly as ``bench/run.py`` does, starts ``strongroom server -dev``,
enables transit at ``transit/``, creates an aes256-gcm96 key (``bench-aes``) and an ed25519
key (``bench-ed``), then runs wrk -t2 -c32 for single encrypt, single decrypt, batch encrypt
and batch decrypt (100 items each) and ed25519 sign, all with 100-byte plaintexts, plus token
lookup-self as a reference for what the request road costs without any engine work. Prints
ops/s (items/s for batches), p50/p99 latency, the single-encrypt/ceiling ratio (target ≥ 0.5)
and the batch/single items-per-second ratio (target ≥ 20). Figures are reported, never asserted.
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(HERE.parent))

import httpx  # noqa: E402
from bench.run import Result, Server, free_port, run_wrk_cpu, wait_port  # noqa: E402

LUA = HERE / "lua"
PLAINTEXT = bytes(range(100))
BATCH = 100


@dataclass
class Row:
    name: str
    result: Result
    items: int  # items per request

    @property
    def ops(self) -> float:
        return self.result.rps * self.items


def measure_ceiling(seconds: int) -> Result:
    port = free_port()
    ceiling = subprocess.Popen([sys.executable, str(HERE / "ceiling.py"), str(port)])
    try:
        wait_port(port)
        return run_wrk_cpu(
            "ceiling (bare ASGI, 100-byte JSON)",
            f"http://127.0.0.1:{port}/",
            None,
            seconds,
            {},
            ceiling.pid,
        )
    finally:
        ceiling.terminate()
        ceiling.wait()


def prepare(url: str, token: str, workdir: Path) -> dict[str, str]:
    """Mount transit, create the keys, and precompute what the decrypt scripts send."""
    headers = {"X-Vault-Token": token}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
        http.post("/v1/sys/mounts/transit", json={"type": "transit"}).raise_for_status()
        http.post("/v1/transit/keys/bench-aes", json={"type": "aes256-gcm96"}).raise_for_status()
        http.post("/v1/transit/keys/bench-ed", json={"type": "ed25519"}).raise_for_status()
        plaintext = base64.b64encode(PLAINTEXT).decode()
        single = http.post("/v1/transit/encrypt/bench-aes", json={"plaintext": plaintext})
        single.raise_for_status()
        batch = http.post(
            "/v1/transit/encrypt/bench-aes",
            json={"batch_input": [{"plaintext": plaintext}] * BATCH},
        )
        batch.raise_for_status()
    ciphertexts = [item["ciphertext"] for item in batch.json()["data"]["batch_results"]]
    body = workdir / "decrypt_batch.json"
    body.write_text(json.dumps({"batch_input": [{"ciphertext": c} for c in ciphertexts]}))
    return {
        "VAULT_TOKEN": token,
        "TRANSIT_CIPHERTEXT": single.json()["data"]["ciphertext"],
        "TRANSIT_BATCH_BODY": str(body),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    opts = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 1
    ceiling = measure_ceiling(opts.seconds)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="strongroom-bench-transit-") as tmp:
        workdir = Path(tmp)
        port = free_port()
        server = Server(
            ["-dev", f"-dev-listen-address=127.0.0.1:{port}", f"-dev-dir={workdir / 'data'}"],
            port,
            workdir,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            env = prepare(url, server.token, workdir)
            for name, script, items in (
                # the same road with no engine work: what core and http/ cost on their own
                ("reference: token lookup-self", "lookup_self.lua", 1),
                ("transit encrypt (aes256-gcm96)", "transit_encrypt.lua", 1),
                ("transit decrypt (aes256-gcm96)", "transit_decrypt.lua", 1),
                ("transit encrypt batch of 100", "transit_encrypt_batch.lua", BATCH),
                ("transit decrypt batch of 100", "transit_decrypt_batch.lua", BATCH),
                ("transit sign (ed25519)", "transit_sign.lua", 1),
            ):
                result = run_wrk_cpu(name, url, LUA / script, opts.seconds, env, server.proc.pid)
                rows.append(Row(name, result, items))
        finally:
            server.stop()

    print()
    print(
        f"{'benchmark':36} {'ops/s':>10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'cpu us/req':>10} {'errors':>7}"
    )
    for row in [Row(ceiling.name, ceiling, 1), *rows]:
        r = row.result
        print(
            f"{row.name:36} {row.ops:10.0f} {r.rps:9.0f} {r.p50_ms:8.2f} {r.p99_ms:8.2f} "
            f"{r.cpu_us:10.1f} {r.errors:7d}"
        )
    reference, encrypt, encrypt_batch = rows[0], rows[1], rows[3]
    ratio = encrypt.result.rps / ceiling.rps if ceiling.rps else float("nan")
    reference_ratio = reference.result.rps / ceiling.rps if ceiling.rps else float("nan")
    engine_share = encrypt.result.rps / reference.result.rps if reference.result.rps else 0.0
    batch_ratio = encrypt_batch.ops / encrypt.ops if encrypt.ops else float("nan")
    cpu_ratio = ceiling.cpu_us / encrypt.result.cpu_us if encrypt.result.cpu_us else float("nan")
    print(f"\nsingle encrypt / ceiling: {ratio:.2f} (target >= 0.5)")
    print(
        f"single encrypt / ceiling by server CPU per request: {cpu_ratio:.2f} "
        "(unmoved by CPU time the hypervisor steals)"
    )
    print(
        f"token lookup-self / ceiling: {reference_ratio:.2f}; "
        f"single encrypt / lookup-self: {engine_share:.2f}"
    )
    print(f"batch / single encrypt items per second: {batch_ratio:.1f} (target >= 20)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
