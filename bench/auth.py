"""Auth-method benchmark: logins per second with wrk against a real Strongroom dev server.

Run ``python bench/auth.py`` from the repository root with the project's virtualenv. It starts
``strongroom server -dev``, enables userpass (64 users, one password), approle (one role, one
unlimited secret ID) and jwt (RS256 and ES256 public keys, one role), then runs wrk -t2 -c32
against each login endpoint (userpass: -c8 with a 10 s timeout, since argon2id bounds it to
tens of logins per second). Every successful login mints and durably stores a token, so the
figures include token creation. Prints logins/s, p50/p99 latency, the argon2id parameters
userpass uses, and token lookup-self on the same server for scale. Reported, never asserted.

Two more rows measure a templated ACL policy: a userpass user whose only token policy, ``tmpl``,
grants read on ``secret/data/{{identity.entity.name}}/*`` and ``auth/token/lookup-self``, logs in
once (which creates its identity entity); wrk then runs token lookup-self and a KV v2 read of
``secret/data/<entity name>/x`` (written first as root) with that user's token, to compare with
the root token's lookup-self.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(HERE.parent))

import httpx  # noqa: E402
from bench.run import Result, Server, _ms, free_port, run_wrk, wait_port  # noqa: E402
from joserfc import jws  # noqa: E402
from joserfc.jwk import ECKey, RSAKey  # noqa: E402

from strongroom.auth.userpass._passwords import ARGON2_PARAMETERS  # noqa: E402

LUA = HERE / "lua"
USERS = 64
TEMPLATED_POLICY = """
path "secret/data/{{identity.entity.name}}/*" {
  capabilities = ["read"]
}
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
"""


def _signed(key: RSAKey | ECKey, alg: str) -> str:
    now = int(time.time())
    claims = {"iss": "https://bench", "sub": "bench", "aud": "strongroom", "iat": now}
    claims["exp"] = now + 3600
    return jws.serialize_compact({"alg": alg}, json.dumps(claims), key, algorithms=[alg])


def run_wrk_patient(
    name: str, url: str, script: Path, seconds: int, env: dict[str, str], connections: int
) -> Result:
    """wrk with fewer connections and a 10 s timeout, for argon2-bound logins: at -c32 a
    ~40 logins/s endpoint queues past wrk's default 2 s timeout and reports errors that only
    measure the queue."""
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency"]
    out = subprocess.run(
        [*cmd, "-s", str(script), url],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=True,
    ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    # anchored: "75.50%" in the thread-stats table must not pass for the 50th percentile
    p50 = re.search(r"^\s*50%\s+(\S+)", out, re.MULTILINE)
    p99 = re.search(r"^\s*99%\s+(\S+)", out, re.MULTILINE)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    timeouts = re.search(r"Socket errors: .*?timeout (\d+)", out)
    errors = sum(int(m.group(1)) for m in (non_2xx, timeouts) if m)
    return Result(
        name,
        float(rps.group(1)) if rps else 0.0,
        _ms(p50.group(1)) if p50 else 0.0,
        _ms(p99.group(1)) if p99 else 0.0,
        errors,
    )


def prepare(client: httpx.Client) -> dict[str, str]:
    """Enable and configure the three methods; the env vars the Lua scripts read."""
    password = secrets.token_urlsafe(16)
    for kind in ("userpass", "approle", "jwt"):
        client.post(f"/v1/sys/auth/{kind}", json={"type": kind}).raise_for_status()
    for n in range(USERS):
        client.post(
            f"/v1/auth/userpass/users/user-{n}",
            json={"password": password, "token_policies": "bench"},
        ).raise_for_status()
    client.post("/v1/auth/approle/role/bench", json={"token_policies": "bench"}).raise_for_status()
    role_id = client.get("/v1/auth/approle/role/bench/role-id").json()["data"]["role_id"]
    secret_id = client.post("/v1/auth/approle/role/bench/secret-id").json()["data"]["secret_id"]
    rsa_key, ec_key = RSAKey.generate_key(2048), ECKey.generate_key("P-256")
    client.post(
        "/v1/auth/jwt/config",
        json={
            "jwt_validation_pubkeys": [
                rsa_key.as_pem(private=False).decode(),
                ec_key.as_pem(private=False).decode(),
            ],
            "bound_issuer": "https://bench",
        },
    ).raise_for_status()
    client.post(
        "/v1/auth/jwt/role/bench",
        json={
            "role_type": "jwt",
            "user_claim": "sub",
            "bound_audiences": "strongroom",
            "token_policies": "bench",
        },
    ).raise_for_status()
    return {
        "BENCH_PASSWORD": password,
        "BENCH_USERS": str(USERS),
        "BENCH_ROLE_ID": role_id,
        "BENCH_SECRET_ID": secret_id,
        "BENCH_JWT_RS256": _signed(rsa_key, "RS256"),
        "BENCH_JWT_ES256": _signed(ec_key, "ES256"),
    }


def prepare_templated(client: httpx.Client) -> dict[str, str]:
    """Policy ``tmpl``, a userpass user with it, one login (creating the identity entity) and
    the secret the templated path grants; the env vars kv_read_path.lua and lookup_self.lua read.
    Needs userpass enabled (``prepare``)."""
    client.put("/v1/sys/policies/acl/tmpl", json={"policy": TEMPLATED_POLICY}).raise_for_status()
    password = secrets.token_urlsafe(16)
    client.post(
        "/v1/auth/userpass/users/tmpl-user",
        json={"password": password, "token_policies": "tmpl"},
    ).raise_for_status()
    login = httpx.post(
        f"{client.base_url}/v1/auth/userpass/login/tmpl-user",
        json={"password": password},
        timeout=60,
    )
    login.raise_for_status()
    token = login.json()["auth"]["client_token"]
    own = client.get("/v1/auth/token/lookup-self", headers={"X-Vault-Token": token})
    own.raise_for_status()
    entity_id = own.json()["data"]["entity_id"]
    entity = client.get(f"/v1/identity/entity/id/{entity_id}")
    entity.raise_for_status()
    path = f"/v1/secret/data/{entity.json()['data']['name']}/x"
    client.post(path, json={"data": {"username": "svc", "password": "p" * 24}}).raise_for_status()
    check = client.get(path, headers={"X-Vault-Token": token})  # the policy really grants it
    check.raise_for_status()
    return {"VAULT_TOKEN": token, "BENCH_KV_PATH": path}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    opts = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 1
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="strongroom-bench-auth-") as tmp:
        workdir = Path(tmp)
        port = free_port()
        server = Server(
            ["-dev", f"-dev-listen-address=127.0.0.1:{port}", f"-dev-dir={workdir / 'data'}"],
            port,
            workdir,
        )
        try:
            wait_port(port)
            url = f"http://127.0.0.1:{port}"
            with httpx.Client(
                base_url=url, headers={"X-Vault-Token": server.token}, timeout=60
            ) as client:
                env = prepare(client)
                templated = prepare_templated(client)
            seconds = opts.seconds
            results.append(
                run_wrk(
                    "token lookup-self (for scale)",
                    url,
                    LUA / "lookup_self.lua",
                    seconds,
                    {"VAULT_TOKEN": server.token},
                )
            )
            results.append(
                run_wrk(
                    "token lookup-self with a templated policy",
                    url,
                    LUA / "lookup_self.lua",
                    seconds,
                    templated,
                )
            )
            results.append(
                run_wrk(
                    "KV v2 read through a templated policy",
                    url,
                    LUA / "kv_read_path.lua",
                    seconds,
                    templated,
                )
            )
            results.append(
                run_wrk_patient(
                    "userpass login (argon2id, c8)",
                    url,
                    LUA / "login_userpass.lua",
                    seconds,
                    env,
                    connections=8,
                )
            )
            results.append(run_wrk("approle login", url, LUA / "login_approle.lua", seconds, env))
            for alg in ("RS256", "ES256"):
                results.append(
                    run_wrk(
                        f"jwt login ({alg})",
                        url,
                        LUA / "login_jwt.lua",
                        seconds,
                        {**env, "BENCH_JWT": env[f"BENCH_JWT_{alg}"]},
                    )
                )
        finally:
            server.stop()

    params = ARGON2_PARAMETERS
    print()
    print(
        f"userpass hashes with {params['type']}: m={params['memory_kib']} KiB, "
        f"t={params['time_cost']}, p={params['parallelism']}"
    )
    print(f"{'benchmark':41} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for result in results:
        print(
            f"{result.name:41} {result.rps:10.0f} {result.p50_ms:8.2f} {result.p99_ms:8.2f} "
            f"{result.errors:7d}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
