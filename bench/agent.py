"""Agent benchmark: template renders per second, the agent's memory with 100 templates, and
the API proxy's cached reads against the server's direct reads.

Run ``python bench/agent.py`` from the repository root with the project's virtualenv. It
starts ``strongroom server -dev`` (and a throwaway PostgreSQL cluster, tests/pg.py, for a
leased secret), then:

* **renders/s, engine**: 1,000 distinct templates (each reads a KV v2 secret, ranges over its
  keys, pipes through functions) compiled once and rendered against fetched secrets, in
  process: the template language's own speed;
* **renders/s, end to end**: an agent process with 1,000 templates over 1,000 KV secrets,
  from start to the last file written (auth, fetching, rendering, atomic writes);
* **RSS with 100 templates**: the agent process's resident memory once all are rendered;
* **proxy**: requests/s through an agent listener with ``cache {}`` for a leased database
  credential (served from the cache) and a KV read (forwarded), against the server's own
  KV read, ``--concurrency`` (8) clients for ``--seconds`` (3) each.

Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # run as a script: make ``tests`` importable
    sys.path.insert(0, str(HERE.parent))

import httpx  # noqa: E402
from psycopg import sql  # noqa: E402

from strongroom.agent.template import SecretValue, compile_template  # noqa: E402
from tests.pg import PgCluster  # noqa: E402
from tests.serverproc import ServerProcess, free_port, start_dev_server  # noqa: E402

TEMPLATE = (
    '{{ with secret "secret/data/app%d" }}'
    "user={{ .Data.data.user }}\n"
    '{{ range $k, $v := .Data.data }}{{ $k | toUpper }}={{ $v | printf "%%q" }}\n{{ end }}'
    "{{ .Data.data | toJSON | base64Encode }}\n{{ end }}"
)


class Table:
    def __init__(self, secrets: dict[str, Any]) -> None:
        self.secrets = secrets

    def resolve(self, dependency: Any) -> Any:
        return self.secrets.get(dependency.path)


def engine_renders(count: int, rounds: int) -> float:
    templates = [compile_template(TEMPLATE % i, f"t{i}") for i in range(count)]
    table = Table(
        {
            f"secret/data/app{i}": SecretValue(
                {"data": {"data": {"user": f"u{i}", "password": "p" * 16, "port": 5432}}}
            )
            for i in range(count)
        }
    )
    started = time.perf_counter()
    for _ in range(rounds):
        for template in templates:
            template.render(table)
    return count * rounds / (time.perf_counter() - started)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def agent_config(server: ServerProcess, workdir: Path, templates: int, extra: str = "") -> Path:
    (workdir / "token").write_text(server.root_token)
    blocks = [
        f'template {{\n  contents = "{{{{ with secret \\"secret/data/app{i}\\" }}}}'
        f'{{{{ .Data.data.user }}}}:{{{{ .Data.data.password }}}}{{{{ end }}}}"\n'
        f'  destination = "{workdir}/out/{i}.txt"\n}}\n'
        for i in range(templates)
    ]
    config = workdir / f"agent-{templates}.hcl"
    config.write_text(
        f'vault {{ address = "{server.addr}" }}\n'
        f'auto_auth {{\n  method "token_file" {{\n    config = {{ token_file_path = '
        f'"{workdir}/token" }}\n  }}\n}}\n' + extra + "".join(blocks)
    )
    return config


def start_agent(config: Path, workdir: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
    log = open(workdir / f"{config.stem}.log", "ab")  # the process keeps it
    return subprocess.Popen(
        [sys.executable, "-m", "strongroom.cli", "agent", f"-config={config}"],
        stdout=log,
        stderr=log,
        env=env,
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def end_to_end(server: ServerProcess, workdir: Path, templates: int) -> tuple[float, float]:
    out = workdir / "out"
    shutil.rmtree(out, ignore_errors=True)
    config = agent_config(server, workdir, templates)
    started = time.perf_counter()
    proc = start_agent(config, workdir)
    try:
        while sum(1 for p in out.glob("*.txt")) < templates if out.exists() else True:
            if proc.poll() is not None:
                raise RuntimeError((workdir / f"{config.stem}.log").read_text())
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        time.sleep(1.0)  # settle
        return elapsed, rss_mb(proc.pid)
    finally:
        stop(proc)


async def rate(url: str, headers: dict[str, str], seconds: float, concurrency: int) -> float:
    done = 0
    deadline = time.perf_counter() + seconds
    async with httpx.AsyncClient(headers=headers, timeout=30) as client:

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                response = await client.get(url)
                response.raise_for_status()
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done / (time.perf_counter() - started)


def proxy_bench(server: ServerProcess, workdir: Path, seconds: float, concurrency: int) -> None:
    root = server.client(server.root_token)
    with PgCluster() as pg:
        with pg.admin() as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}").format(
                    sql.Identifier("bench_admin"), sql.Literal("bench-admin-pw")
                )
            )
        root.sys.enable_secrets_engine("database", path="db")
        root.secrets.database.configure(
            name="pg",
            plugin_name="postgresql-database-plugin",
            allowed_roles=["app"],
            connection_url=pg.template_url(),
            username="bench_admin",
            password="bench-admin-pw",  # noqa: S106 - a throwaway cluster's
            mount_point="db",
        )
        root.secrets.database.create_role(
            name="app",
            db_name="pg",
            default_ttl="1h",
            max_ttl="2h",
            mount_point="db",
            creation_statements=[
                "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' "
                "VALID UNTIL '{{expiration}}';"
            ],
        )
        port = free_port()
        (workdir / "token").write_text(server.root_token)
        config = workdir / "proxy.hcl"
        config.write_text(
            f'vault {{ address = "{server.addr}" }}\n'
            f'auto_auth {{\n  method "token_file" {{\n    config = {{ token_file_path = '
            f'"{workdir}/token" }}\n  }}\n}}\n'
            f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n}}\n'
            "api_proxy { use_auto_auth_token = true }\ncache {}\n"
        )
        proc = start_agent(config, workdir)
        try:
            proxy = f"http://127.0.0.1:{port}"
            for _ in range(200):
                try:
                    if httpx.get(f"{proxy}/v1/db/creds/app", timeout=5).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
            direct = asyncio.run(
                rate(
                    f"{server.addr}/v1/secret/data/app0",
                    {"X-Vault-Token": server.root_token},
                    seconds,
                    concurrency,
                )
            )
            cached = asyncio.run(rate(f"{proxy}/v1/db/creds/app", {}, seconds, concurrency))
            forwarded = asyncio.run(rate(f"{proxy}/v1/secret/data/app0", {}, seconds, concurrency))
        finally:
            stop(proc)
    print(f"server direct KV read:          {direct:8.0f} req/s")
    print(f"proxy cached lease read:        {cached:8.0f} req/s  ({cached / direct:.2f}x direct)")
    print(
        f"proxy forwarded KV read:        {forwarded:8.0f} req/s  "
        f"({forwarded / direct:.2f}x direct)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--templates", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    print(
        f"engine: {engine_renders(args.templates, 5):8.0f} renders/s "
        f"({args.templates} templates x 5 rounds, in process)"
    )
    workdir = Path(tempfile.mkdtemp(prefix="bench-agent-"))
    server = start_dev_server(workdir)
    try:
        client = server.client(server.root_token)
        for i in range(args.templates):
            client.secrets.kv.v2.create_or_update_secret(
                f"app{i}", {"user": f"u{i}", "password": "p" * 16}, mount_point="secret"
            )
        elapsed, rss = end_to_end(server, workdir, args.templates)
        print(
            f"end to end: {args.templates} templates rendered and written in {elapsed:.2f} s "
            f"({args.templates / elapsed:.0f} renders/s, agent start included); "
            f"RSS {rss:.0f} MiB"
        )
        _, rss100 = end_to_end(server, workdir, 100)
        print(f"agent RSS with 100 templates rendered: {rss100:.1f} MiB")
        proxy_bench(server, workdir, args.seconds, args.concurrency)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
