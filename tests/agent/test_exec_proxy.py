"""Exec mode, the API proxy with its cache, and generate-config, against a real server."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import httpx
import hvac
import pytest

from strongroom.agent.config import load_agent_config
from tests.agent.conftest import StartAgent
from tests.agent.dbhelp import database_mount
from tests.agent.helpers import AgentProcess, read, unique, wait_for
from tests.pg import PgCluster
from tests.serverproc import ServerProcess, free_port

CHILD = """
import json, os, signal, sys, time
out = sys.argv[1]
with open(out, "a") as f:
    f.write(json.dumps({"pid": os.getpid(), "user": os.environ.get("APP_USER"),
                        "password": os.environ.get("APP_PASSWORD")}) + "\\n")
code = int(os.environ.get("EXIT_WITH", "-1"))
if code >= 0:
    sys.exit(code)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
while True:
    time.sleep(0.1)
"""


@pytest.fixture
def kv2(root: hvac.Client) -> str:
    mount = unique("kv")
    root.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
    return mount


@pytest.fixture
def token_file(root: hvac.Client, tmp_path: Path) -> str:
    token = root.auth.token.create(policies=["root"], ttl="1h")["auth"]["client_token"]
    (tmp_path / "in-token").write_text(token)
    return token


EXEC = """
vault { address = "{addr}" }
auto_auth {
  method "token_file" {
    config = { token_file_path = "{dir}/in-token" }
  }
}
template_config { static_secret_render_interval = "1s" }
env_template "APP_USER" {
  contents = "{{ with secret \\"{kv}/data/app\\" }}{{ .Data.data.user }}{{ end }}"
  error_on_missing_key = true
}
env_template "APP_PASSWORD" {
  contents = "{{ with secret \\"{kv}/data/app\\" }}{{ .Data.data.password }}{{ end }}"
}
exec {
  command = ["{python}", "{dir}/child.py", "{dir}/child.log"]
  restart_on_secret_changes = "{restart}"
  restart_stop_signal = "SIGTERM"
}
"""


def child_runs(path: Path) -> list[dict]:
    return [json.loads(line) for line in read(path).splitlines()]


@pytest.mark.parametrize("restart", ["always", "never"])
def test_exec_restarts_the_child_on_change(
    start_agent: StartAgent,
    root: hvac.Client,
    kv2: str,
    token_file: str,
    tmp_path: Path,
    restart: str,
) -> None:
    (tmp_path / "child.py").write_text(CHILD)
    root.secrets.kv.v2.create_or_update_secret(
        "app", {"user": "u1", "password": "p1"}, mount_point=kv2
    )
    agent = start_agent(EXEC, kv=kv2, python=sys.executable, restart=restart)
    log = tmp_path / "child.log"
    first = wait_for(lambda: child_runs(log), what=lambda: agent.log())
    assert first == [{"pid": first[0]["pid"], "user": "u1", "password": "p1"}]
    root.secrets.kv.v2.create_or_update_secret(
        "app", {"user": "u1", "password": "p2"}, mount_point=kv2
    )
    if restart == "always":
        runs = wait_for(
            lambda: len(child_runs(log)) == 2 and child_runs(log),
            timeout=10,
            what=lambda: agent.log(),
        )
        assert runs[1]["password"] == "p2" and runs[1]["pid"] != runs[0]["pid"]
        with pytest.raises(ProcessLookupError):
            os.kill(runs[0]["pid"], 0)  # the old child is gone
    else:
        time.sleep(2.5)  # two render intervals: the change is seen, the child left alone
        assert len(child_runs(log)) == 1
    assert agent.running()
    agent.stop()
    assert agent.wait_exit() == 0


def test_exec_child_exit_code_is_the_agents(
    start_agent: StartAgent, root: hvac.Client, kv2: str, token_file: str, tmp_path: Path
) -> None:
    (tmp_path / "child.py").write_text(CHILD)
    root.secrets.kv.v2.create_or_update_secret(
        "app", {"user": "u", "password": "p"}, mount_point=kv2
    )
    agent = start_agent(
        EXEC, kv=kv2, python=sys.executable, restart="always", env={"EXIT_WITH": "3"}
    )
    assert agent.wait_exit() == 3, agent.log()
    assert child_runs(tmp_path / "child.log")[0]["user"] == "u"
    assert "APP_PASSWORD" not in agent.log() and '"p"' not in agent.log()


PROXY = """
vault { address = "{addr}" }
auto_auth {
  method "token_file" {
    config = { token_file_path = "{dir}/in-token" }
  }
}
listener "tcp" {
  address = "127.0.0.1:{port}"
  tls_disable = true
}
api_proxy { use_auto_auth_token = true }
cache {}
"""


def test_proxy_serves_cached_leases_and_forwards_the_rest(
    start_agent: StartAgent,
    root: hvac.Client,
    kv2: str,
    token_file: str,
    pg: PgCluster,
    tmp_path: Path,
    dev_server: ServerProcess,
) -> None:
    mount = database_mount(root, pg, default_ttl="1h", max_ttl="2h")
    port = free_port()
    agent = start_agent(PROXY, port=port)
    agent.wait_log("API proxy listening")
    agent.wait_log("authenticated")
    # no token (not even ~/.vault-token): the agent adds its own
    proxy = hvac.Client(url=f"http://127.0.0.1:{port}", token="")
    wait_for(lambda: proxy.sys.read_health_status(method="GET"), what=lambda: agent.log())

    # leased secrets: one credential, served from the cache
    first = proxy.read(f"{mount}/creds/app")
    second = proxy.read(f"{mount}/creds/app")
    assert first["lease_id"] and second["lease_id"] == first["lease_id"]
    assert second["data"] == first["data"]
    leases = root.sys.list_leases(f"{mount}/creds/app/")["data"]["keys"]
    assert len(leases) == 1

    # everything else is forwarded: KV reads see every change, LIST works
    root.secrets.kv.v2.create_or_update_secret("k", {"v": "1"}, mount_point=kv2)
    assert proxy.secrets.kv.v2.read_secret_version("k", mount_point=kv2)["data"]["data"] == {
        "v": "1"
    }
    root.secrets.kv.v2.create_or_update_secret("k", {"v": "2"}, mount_point=kv2)
    assert proxy.secrets.kv.v2.read_secret_version("k", mount_point=kv2)["data"]["data"] == {
        "v": "2"
    }
    assert proxy.secrets.kv.v2.list_secrets("", mount_point=kv2)["data"]["keys"] == ["k"]

    # a revocation through the proxy evicts the cached lease
    proxy.sys.revoke_lease(first["lease_id"])
    third = proxy.read(f"{mount}/creds/app")
    assert third["lease_id"] != first["lease_id"]
    assert proxy.read(f"{mount}/creds/app")["lease_id"] == third["lease_id"]

    # cache-clear by hand
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
        assert http.post("/agent/v1/cache-clear", json={"type": "all"}).status_code == 200
        bad = http.post("/agent/v1/cache-clear", json={"type": "bogus"})
        assert bad.status_code == 400 and "errors" in bad.json()
    assert proxy.read(f"{mount}/creds/app")["lease_id"] != third["lease_id"]

    # errors pass through unchanged
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
        missing = http.get(f"/v1/{kv2}/data/nope")
        assert missing.status_code == 404


def test_proxy_caches_tokens_and_evicts_on_revoke_self(
    start_agent: StartAgent, root: hvac.Client, token_file: str, tmp_path: Path
) -> None:
    port = free_port()
    agent = start_agent(PROXY, port=port)
    agent.wait_log("API proxy listening")
    agent.wait_log("authenticated")
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
        body = {"policies": ["default"], "ttl": "1h", "meta": {"n": "1"}}
        one = http.post("/v1/auth/token/create", json=body).json()["auth"]["client_token"]
        again = http.post("/v1/auth/token/create", json=body).json()["auth"]["client_token"]
        assert again == one  # the same request got the cached token
        revoked = http.post("/v1/auth/token/revoke-self", headers={"X-Vault-Token": one})
        assert revoked.status_code == 204
        fresh = http.post("/v1/auth/token/create", json=body).json()["auth"]["client_token"]
        assert fresh != one
        # a request that names its own token is not given the agent's
        own = http.get("/v1/auth/token/lookup-self", headers={"X-Vault-Token": fresh}).json()
        assert own["data"]["meta"] == {"n": "1"}


def test_generate_config_env_template(
    root: hvac.Client, kv2: str, dev_server: ServerProcess, tmp_path: Path
) -> None:
    import subprocess

    root.secrets.kv.v2.create_or_update_secret(
        "foo", {"user": "admin", "password": "s3cr3t"}, mount_point=kv2
    )
    root.secrets.kv.v2.create_or_update_secret("dir/bar", {"key": "v"}, mount_point=kv2)
    home = tmp_path / "home"
    home.mkdir()
    (home / ".vault-token").write_text(dev_server.root_token)
    (tmp_path / "child.py").write_text(CHILD)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
    env.update(HOME=str(home), VAULT_ADDR=dev_server.addr)
    out = tmp_path / "generated.hcl"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "strongroom.cli",
            "agent",
            "generate-config",
            "-type=env-template",
            f"-exec={sys.executable} {tmp_path}/child.py {tmp_path}/child.log",
            f"-path={kv2}/foo",
            f"-path={kv2}/dir/*",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert f'Successfully generated "{out}"' in result.stdout
    config = load_agent_config(str(out))
    names = [e.name for e in config.env_templates]
    assert names == ["DIR_BAR_KEY", "FOO_PASSWORD", "FOO_USER"]
    assert config.auto_auth is not None and config.auto_auth.method.type == "token_file"
    assert config.exec is not None and config.exec.command[1].endswith("child.py")
    text = out.read_text()
    assert "s3cr3t" not in text
    assert f'{{{{ with secret \\"{kv2}/data/foo\\" }}}}{{{{ .Data.data.password }}}}' in text
    # and the generated file runs
    (tmp_path / "child.py").write_text(
        CHILD.replace('os.environ.get("APP_USER")', 'os.environ.get("FOO_USER")')
    )
    agent = AgentProcess(out, tmp_path, env={"HOME": str(home)}).start()
    try:
        runs = wait_for(lambda: child_runs(tmp_path / "child.log"), what=lambda: agent.log())
        assert runs[0]["user"] == "admin"
    finally:
        agent.stop()
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "strongroom.cli",
            "agent",
            "generate-config",
            "-type=other",
            "-path=x",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1 and "env-template" in bad.stderr


def test_proxy_concurrent_identical_requests_share_one_lease(
    start_agent: StartAgent, root: hvac.Client, token_file: str, pg: PgCluster, tmp_path: Path
) -> None:
    import asyncio

    mount = database_mount(root, pg, default_ttl="1h", max_ttl="2h")
    port = free_port()
    agent = start_agent(PROXY, port=port)
    agent.wait_log("API proxy listening")
    agent.wait_log("authenticated")

    async def burst() -> set[str]:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            answers = await asyncio.gather(*(http.get(f"/v1/{mount}/creds/app") for _ in range(20)))
        assert all(a.status_code == 200 for a in answers)
        return {a.json()["lease_id"] for a in answers}

    seen: set[str] = set()
    for _ in range(10):
        leases = asyncio.run(burst())
        assert len(leases) == 1  # twenty clients, one credential
        seen |= leases
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            http.post("/agent/v1/cache-clear", json={"type": "all"}).raise_for_status()
    assert len(seen) == 10
    listed = root.sys.list_leases(f"{mount}/creds/app/")["data"]["keys"]
    assert len(listed) == 10  # the server issued exactly one per round
