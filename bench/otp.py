"""One-time codes and SSH certificates: TOTP validations/s, SSH sign/s, the cost of login MFA.

Run ``python bench/otp.py`` from the repository root with the project's virtualenv. It
starts ``strongroom server -dev`` (durable SQLite in a temporary directory) and drives it
with an asyncio httpx client (``--concurrency`` requests in flight; the client shares the
2-core box, so the figures are a floor):

- **TOTP validate**: ``--keys`` imported keys, each validated once with its current code
  (a success writes the key's replay record), then the same codes again (every one refused
  as a replay: the refusal path).
- **SSH sign**: ``sign/<role>`` of one ed25519 user key, on a mount with an ed25519 CA and
  on one with an RSA-3072 CA.
Each throughput row also shows the server's CPU time per request (user + system, all
threads, from ``/proc``), which a loaded or shared box does not move as much as req/s.

- **Login MFA**: sequential userpass logins (median latency): without MFA; with an
  ``X-Vault-MFA`` header; and the two-step flow (login, then ``sys/mfa/validate``). Each
  MFA login uses its own user (a time step validates once per entity). userpass hashes
  with argon2id, which dominates a login; the difference is what MFA adds. The same with
  approle logins (no argon2) shows the gate's own CPU cost precisely.

Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(HERE.parent))

import httpx  # noqa: E402
import pyotp  # noqa: E402
from bench.run import Server, free_port  # noqa: E402


async def run_all(
    concurrency: int, jobs: list[Callable[[], Awaitable[int | str]]]
) -> tuple[float, dict[int | str, int], float]:
    """Run the jobs ``concurrency`` at a time: (seconds, count per HTTP status, server CPU
    seconds spent meanwhile)."""
    queue: asyncio.Queue[Callable[[], Awaitable[int | str]]] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    statuses: dict[int | str, int] = {}

    async def worker() -> None:
        while not queue.empty():
            status = await queue.get_nowait()()
            statuses[status] = statuses.get(status, 0) + 1

    started, cpu = time.perf_counter(), server_cpu()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, statuses, server_cpu() - cpu


_SERVER = [0]  # the server's pid
_TICKS = os.sysconf("SC_CLK_TCK")


def server_cpu() -> float:
    """The server's CPU time so far (user + system, all threads), in seconds."""
    fields = Path(f"/proc/{_SERVER[0]}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def line(
    label: str, count: int, seconds: float, statuses: dict[int | str, int], cpu: float
) -> None:
    print(
        f"{label:<34} {count / seconds:8.0f}/s   server CPU {cpu / count * 1e6:7.0f} us/req"
        f"   ({count} in {seconds:.2f} s, {statuses})"
    )


async def bench_totp(http: httpx.AsyncClient, keys: int, concurrency: int) -> None:
    secrets = [pyotp.random_base32() for _ in range(keys)]
    await http.post("/v1/sys/mounts/totp", json={"type": "totp"})

    async def make(i: int) -> int:
        reply = await http.post(f"/v1/totp/keys/k{i}", json={"key": secrets[i]})
        return reply.status_code

    await run_all(concurrency, [lambda i=i: make(i) for i in range(keys)])
    # start at the beginning of a time step: both passes then run while the codes' step is
    # still inside the skew window (the second pass must see them used, not expired)
    await asyncio.sleep(30 - time.time() % 30 + 0.1)
    codes = [pyotp.TOTP(s).now() for s in secrets]

    async def validate(i: int) -> int | str:
        reply = await http.post(f"/v1/totp/code/k{i}", json={"code": codes[i]})
        if reply.status_code == 200:
            return "valid" if reply.json()["data"]["valid"] else "invalid"
        return reply.status_code

    jobs = [lambda i=i: validate(i) for i in range(keys)]
    seconds, statuses, cpu = await run_all(concurrency, jobs)
    line("TOTP validate (valid, first use)", keys, seconds, statuses, cpu)
    seconds, statuses, cpu = await run_all(concurrency, jobs)
    line("TOTP validate (replay, refused)", keys, seconds, statuses, cpu)


async def bench_ssh(http: httpx.AsyncClient, workdir: Path, count: int, concurrency: int) -> None:
    key = workdir / "user"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    public_key = key.with_suffix(".pub").read_text()
    for mount, ca in (
        ("ssh-ed", {"key_type": "ed25519"}),
        ("ssh-rsa", {"key_type": "rsa", "key_bits": 3072}),
    ):
        await http.post(f"/v1/sys/mounts/{mount}", json={"type": "ssh"})
        await http.post(f"/v1/{mount}/config/ca", json={"generate_signing_key": True, **ca})
        await http.post(
            f"/v1/{mount}/roles/dev",
            json={"key_type": "ca", "allow_user_certificates": True, "allowed_users": "*"},
        )

        async def sign(mount: str = mount) -> int:
            reply = await http.post(
                f"/v1/{mount}/sign/dev",
                json={"public_key": public_key, "valid_principals": "alice", "ttl": "1h"},
            )
            return reply.status_code

        seconds, statuses, cpu = await run_all(concurrency, [sign] * count)
        label = "ed25519" if mount == "ssh-ed" else "RSA-3072"
        line(f"SSH sign ({label} CA)", count, seconds, statuses, cpu)


async def bench_mfa(http: httpx.AsyncClient, base: str, logins: int) -> None:
    await http.post("/v1/sys/auth/userpass", json={"type": "userpass"})
    auths = (await http.get("/v1/sys/auth")).json()["data"]
    accessor = auths["userpass/"]["accessor"]
    users = [f"u{i}" for i in range(2 * logins + 1)]
    for user in users:
        await http.post(f"/v1/auth/userpass/users/{user}", json={"password": "pw"})
    async with httpx.AsyncClient(base_url=base, timeout=60) as anon:

        async def login(user: str, **headers: str) -> dict[str, Any]:
            reply = await anon.post(
                f"/v1/auth/userpass/login/{user}", json={"password": "pw"}, headers=headers
            )
            reply.raise_for_status()
            return dict(reply.json())

        cpu: dict[str, float] = {}
        plain = []
        before = server_cpu()
        for _ in range(logins):
            started = time.perf_counter()
            await login(users[-1])
            plain.append(time.perf_counter() - started)
        cpu["plain"] = server_cpu() - before
        method_id = (
            await http.post("/v1/identity/mfa/method/totp", json={"issuer": "bench"})
        ).json()["data"]["method_id"]
        totps: dict[str, pyotp.TOTP] = {}
        for user in users[:-1]:
            await login(user)  # creates the entity
            entity = (
                await http.post(
                    "/v1/identity/lookup/entity",
                    json={"alias_name": user, "alias_mount_accessor": accessor},
                )
            ).json()["data"]["id"]
            url = (
                await http.post(
                    "/v1/identity/mfa/method/totp/admin-generate",
                    json={"method_id": method_id, "entity_id": entity},
                )
            ).json()["data"]["url"]
            totps[user] = pyotp.parse_uri(url)
        await http.post(
            "/v1/identity/mfa/login-enforcement/bench",
            json={"mfa_method_ids": [method_id], "auth_method_accessors": [accessor]},
        )
        header, two_step = [], []
        before = server_cpu()
        for i in range(logins):
            user = users[i]
            started = time.perf_counter()
            answer = await login(user, **{"X-Vault-MFA": f"{method_id}:{totps[user].now()}"})
            header.append(time.perf_counter() - started)
            assert answer["auth"]["client_token"]
        cpu["header"] = server_cpu() - before
        before = server_cpu()
        for i in range(logins):
            user = users[logins + i]
            started = time.perf_counter()
            pending = await login(user)
            request_id = pending["auth"]["mfa_requirement"]["mfa_request_id"]
            reply = await anon.post(
                "/v1/sys/mfa/validate",
                json={
                    "mfa_request_id": request_id,
                    "mfa_payload": {method_id: [totps[user].now()]},
                },
            )
            two_step.append(time.perf_counter() - started)
            assert reply.status_code == 200, reply.text
        cpu["two_step"] = server_cpu() - before
    base_ms = statistics.median(plain) * 1000
    base_cpu = cpu["plain"] / logins * 1000
    for label, samples, spent in (
        ("userpass login, no MFA", plain, cpu["plain"]),
        ("userpass login + X-Vault-MFA", header, cpu["header"]),
        ("userpass login + sys/mfa/validate", two_step, cpu["two_step"]),
    ):
        median = statistics.median(samples) * 1000
        per_login = spent / logins * 1000
        print(f"{label:<34} server CPU {per_login:6.1f} ms/login (+{per_login - base_cpu:4.1f} ms)")
        print(
            f"{label:<34} median {median:7.1f} ms   (+{median - base_ms:5.1f} ms, n={len(samples)})"
        )


async def bench_mfa_approle(http: httpx.AsyncClient, base: str, logins: int) -> None:
    """The gate's own cost, without argon2: approle logins (one role per login, so each
    MFA login has its own entity and time step) on a mount without and one with MFA."""
    method_id = (
        await http.post("/v1/identity/mfa/method/totp", json={"issuer": "bench-ar"})
    ).json()["data"]["method_id"]
    creds: dict[str, list[tuple[str, str]]] = {}
    for mount in ("ar-plain", "ar-mfa"):
        await http.post(f"/v1/sys/auth/{mount}", json={"type": "approle"})
        creds[mount] = []
        for i in range(logins):
            await http.post(f"/v1/auth/{mount}/role/r{i}", json={"token_policies": ["default"]})
            role_id = (await http.get(f"/v1/auth/{mount}/role/r{i}/role-id")).json()["data"][
                "role_id"
            ]
            secret_id = (await http.post(f"/v1/auth/{mount}/role/r{i}/secret-id")).json()["data"][
                "secret_id"
            ]
            creds[mount].append((role_id, secret_id))
    accessor = (await http.get("/v1/sys/auth")).json()["data"]["ar-mfa/"]["accessor"]
    async with httpx.AsyncClient(base_url=base, timeout=60) as anon:
        totps = []
        for role_id, secret_id in creds["ar-mfa"]:
            await anon.post(
                "/v1/auth/ar-mfa/login", json={"role_id": role_id, "secret_id": secret_id}
            )
            entity = (
                await http.post(
                    "/v1/identity/lookup/entity",
                    json={"alias_name": role_id, "alias_mount_accessor": accessor},
                )
            ).json()["data"]["id"]
            url = (
                await http.post(
                    "/v1/identity/mfa/method/totp/admin-generate",
                    json={"method_id": method_id, "entity_id": entity},
                )
            ).json()["data"]["url"]
            totps.append(pyotp.parse_uri(url))
        await http.post(
            "/v1/identity/mfa/login-enforcement/bench-ar",
            json={"mfa_method_ids": [method_id], "auth_method_accessors": [accessor]},
        )
        if 30 - time.time() % 30 < 10:
            await asyncio.sleep(30 - time.time() % 30 + 0.1)
        spent: dict[str, float] = {}
        for mount in ("ar-plain", "ar-mfa"):
            before = server_cpu()
            for i, (role_id, secret_id) in enumerate(creds[mount]):
                headers = (
                    {"X-Vault-MFA": f"{method_id}:{totps[i].now()}"} if mount == "ar-mfa" else {}
                )
                reply = await anon.post(
                    f"/v1/auth/{mount}/login",
                    json={"role_id": role_id, "secret_id": secret_id},
                    headers=headers,
                )
                assert reply.status_code == 200 and reply.json()["auth"]["client_token"], reply.text
            spent[mount] = (server_cpu() - before) / logins * 1000
    print(
        f"{'approle login, no MFA':<34} server CPU {spent['ar-plain']:6.2f} ms/login\n"
        f"{'approle login + X-Vault-MFA':<34} server CPU {spent['ar-mfa']:6.2f} ms/login"
        f" (+{spent['ar-mfa'] - spent['ar-plain']:.2f} ms: the MFA gate)"
    )


async def main_async(args: argparse.Namespace, server: Server, workdir: Path) -> None:
    base = f"http://127.0.0.1:{server.port}"
    limits = httpx.Limits(max_connections=args.concurrency)
    async with httpx.AsyncClient(
        base_url=base, headers={"X-Vault-Token": server.token}, limits=limits, timeout=60
    ) as http:
        await bench_totp(http, args.keys, args.concurrency)
        await bench_ssh(http, workdir, args.signs, args.concurrency)
        await bench_mfa(http, base, args.logins)
        await bench_mfa_approle(http, base, 10 * args.logins)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--signs", type=int, default=1000)
    parser.add_argument("--logins", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        port = free_port()
        server = Server(
            ["-dev", f"-dev-listen-address=127.0.0.1:{port}", f"-dev-dir={workdir / 'data'}"],
            port,
            workdir,
        )
        _SERVER[0] = server.proc.pid
        try:
            asyncio.run(main_async(args, server, workdir))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
