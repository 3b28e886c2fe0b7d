"""Templates end to end: a real server, a real agent process, real files and commands."""

from __future__ import annotations

import time
from pathlib import Path

import hvac
import psycopg
import pytest

from tests.agent.conftest import StartAgent
from tests.agent.dbhelp import database_mount
from tests.agent.helpers import AgentProcess, read, unique, wait_for, write_config
from tests.pg import PgCluster
from tests.serverproc import ServerProcess, start_dev_server

TOKEN_FILE = """
vault { address = "{addr}" }
auto_auth {
  method "token_file" {
    config = { token_file_path = "{dir}/in-token" }
  }
}
template_config {
  static_secret_render_interval = "1s"
}
"""


@pytest.fixture
def token_file(root: hvac.Client, tmp_path: Path) -> str:
    token = root.auth.token.create(policies=["root"], ttl="1h")["auth"]["client_token"]
    (tmp_path / "in-token").write_text(token)
    return token


@pytest.fixture
def kv2(root: hvac.Client) -> str:
    mount = unique("kv")
    root.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
    return mount


def count_lines(path: Path) -> int:
    return len(read(path).splitlines())


def test_render_update_within_interval_and_command_once(
    start_agent: StartAgent, root: hvac.Client, kv2: str, token_file: str, tmp_path: Path
) -> None:
    root.secrets.kv.v2.create_or_update_secret(
        "app", {"user": "admin", "password": "one"}, mount_point=kv2
    )
    (tmp_path / "app.ctmpl").write_text(
        '{{- with secret "' + kv2 + '/data/app" -}}\n'
        "user={{ .Data.data.user }}\npassword={{ .Data.data.password }}\n"
        "version={{ .Data.metadata.version }}\n"
        "{{- end }}\n"
    )
    agent = start_agent(
        TOKEN_FILE
        + """
template {
  source = "{dir}/app.ctmpl"
  destination = "{dir}/out/app.conf"
  perms = "0600"
  command = "echo ran >> {dir}/ran.log"
}
template {
  contents = "{{ with secret \\"{kv}/data/app\\" }}{{ .Data.data.user | toUpper }}{{ end }}"
  destination = "{dir}/out/user.txt"
  command = "echo ran >> {dir}/ran.log"
}
""",
        kv=kv2,
    )
    out = tmp_path / "out" / "app.conf"
    wait_for(
        lambda: read(out) == "user=admin\npassword=one\nversion=1\n",
        what=lambda: f"the first render\n{agent.log()}",
    )
    assert out.stat().st_mode & 0o777 == 0o600  # create_dest_dirs made out/
    # the files of one pass are written concurrently: the other may land a moment later
    wait_for(lambda: read(tmp_path / "out" / "user.txt") == "ADMIN")
    wait_for(lambda: count_lines(tmp_path / "ran.log") == 1)
    inode = out.stat().st_ino
    time.sleep(2.5)  # two static intervals with nothing changed: no write, no command
    assert out.stat().st_ino == inode
    assert count_lines(tmp_path / "ran.log") == 1
    root.secrets.kv.v2.create_or_update_secret(
        "app", {"user": "admin", "password": "two"}, mount_point=kv2
    )
    wait_for(lambda: "password=two" in read(out), timeout=10)
    assert read(out) == "user=admin\npassword=two\nversion=2\n"
    assert out.stat().st_ino != inode  # replaced by rename, not rewritten in place
    time.sleep(1.5)
    assert count_lines(tmp_path / "ran.log") == 2  # once for the change, shared command once
    assert not list((tmp_path / "out").glob(".strongroom-*"))  # no temp files left
    assert "two" not in agent.log() and "one" not in agent.log().replace("done", "")


def test_backup_perms_kept_and_error_on_missing_key(
    start_agent: StartAgent, root: hvac.Client, kv2: str, token_file: str, tmp_path: Path
) -> None:
    root.secrets.kv.v2.create_or_update_secret("cfg", {"a": "1"}, mount_point=kv2)
    existing = tmp_path / "existing.txt"
    existing.write_text("old content")
    existing.chmod(0o640)
    agent = start_agent(
        TOKEN_FILE
        + """
template {
  contents = "a={{ with secret \\"{kv}/data/cfg\\" }}{{ .Data.data.a }}{{ end }}"
  destination = "{dir}/existing.txt"
  backup = true
}
template {
  contents = "{{ with secret \\"{kv}/data/cfg\\" }}{{ .Data.data.missing }}{{ end }}"
  destination = "{dir}/strict.txt"
  error_on_missing_key = true
}
""",
        kv=kv2,
    )
    wait_for(lambda: read(existing) == "a=1", what=lambda: agent.log())
    assert existing.stat().st_mode & 0o777 == 0o640  # no perms: the old file's are kept
    assert read(tmp_path / "existing.txt.bak") == "old content"
    agent.wait_log('map has no entry for key "missing"')
    assert not (tmp_path / "strict.txt").exists()
    root.secrets.kv.v2.create_or_update_secret(
        "cfg", {"a": "1", "missing": "here"}, mount_point=kv2
    )
    wait_for(lambda: read(tmp_path / "strict.txt") == "here", timeout=10)


def test_delimiters_and_json_contents(
    start_agent: StartAgent, root: hvac.Client, kv2: str, token_file: str, tmp_path: Path
) -> None:
    root.secrets.kv.v2.create_or_update_secret("j", {"x": "1", "y": ["a", "b"]}, mount_point=kv2)
    (tmp_path / "t.json.tmpl").write_text(
        '{"literal": "{{ not a tag }}", "data": [[ with secret "' + kv2 + '/data/j" ]]'
        "[[ .Data.data | toJSON ]][[ end ]]}"
    )
    start_agent(
        TOKEN_FILE
        + """
template {
  source = "{dir}/t.json.tmpl"
  destination = "{dir}/t.json"
  left_delimiter = "[["
  right_delimiter = "]]"
}
"""
    )
    wait_for(lambda: read(tmp_path / "t.json"))
    assert read(tmp_path / "t.json") == (
        '{"literal": "{{ not a tag }}", "data": {"x":"1","y":["a","b"]}}'
    )


def test_command_timeout_is_enforced(
    start_agent: StartAgent, root: hvac.Client, kv2: str, token_file: str, tmp_path: Path
) -> None:
    root.secrets.kv.v2.create_or_update_secret("t", {"v": "1"}, mount_point=kv2)
    agent = start_agent(
        TOKEN_FILE
        + """
template {
  contents = "{{ with secret \\"{kv}/data/t\\" }}{{ .Data.data.v }}{{ end }}"
  destination = "{dir}/t.txt"
  exec {
    command = ["sleep", "30"]
    timeout = "1s"
  }
}
""",
        kv=kv2,
    )
    agent.wait_log("timed out after 1.0s")
    assert agent.running()


def test_revoked_token_reauth_and_templates_continue(
    start_agent: StartAgent, root: hvac.Client, kv2: str, dev_server: ServerProcess, tmp_path: Path
) -> None:
    root.sys.create_or_update_policy(f"read-{kv2}", f'path "{kv2}/*" {{ capabilities = ["read"] }}')
    mount = unique("approle")
    root.sys.enable_auth_method("approle", path=mount)
    root.write(f"auth/{mount}/role/app", token_policies=f"read-{kv2}", token_ttl="1h")
    (tmp_path / "role-id").write_text(
        root.read(f"auth/{mount}/role/app/role-id")["data"]["role_id"]
    )
    (tmp_path / "secret-id").write_text(
        root.write(f"auth/{mount}/role/app/secret-id")["data"]["secret_id"]
    )
    root.secrets.kv.v2.create_or_update_secret("s", {"v": "1"}, mount_point=kv2)
    agent = start_agent(
        """
vault { address = "{addr}" }
auto_auth {
  method "approle" {
    mount_path = "auth/{mount}"
    config = {
      role_id_file_path = "{dir}/role-id"
      secret_id_file_path = "{dir}/secret-id"
    }
  }
  sink "file" { config = { path = "{dir}/token" } }
}
template_config { static_secret_render_interval = "1s" }
template {
  contents = "{{ with secret \\"{kv}/data/s\\" }}{{ .Data.data.v }}{{ end }}"
  destination = "{dir}/s.txt"
}
""",
        mount=mount,
        kv=kv2,
    )
    wait_for(lambda: read(tmp_path / "s.txt") == "1", what=lambda: agent.log())
    first = read(tmp_path / "token")
    root.auth.token.revoke(first)  # its TTL is an hour: only the 403 tells the agent
    root.secrets.kv.v2.create_or_update_secret("s", {"v": "2"}, mount_point=kv2)
    wait_for(lambda: read(tmp_path / "s.txt") == "2", timeout=15, what=lambda: agent.log())
    assert read(tmp_path / "token") != first


def test_server_down_backoff_and_nothing_stale_written(tmp_path: Path) -> None:
    (tmp_path / "own").mkdir()
    server = start_dev_server(tmp_path / "own")
    agent: AgentProcess | None = None
    try:
        root = server.client(server.root_token)
        root.secrets.kv.v2.create_or_update_secret("app", {"v": "good"}, mount_point="secret")
        (tmp_path / "in-token").write_text(server.root_token)
        config = write_config(
            tmp_path,
            TOKEN_FILE
            + """
template {
  contents = "{{ with secret \\"secret/data/app\\" }}{{ .Data.data.v }}{{ end }}"
  destination = "{dir}/app.txt"
}
template {
  contents = "{{ with secret \\"secret/data/later\\" }}{{ .Data.data.v }}{{ end }}"
  destination = "{dir}/later.txt"
}
""",
            addr=server.addr,
            dir=tmp_path,
        )
        agent = AgentProcess(config, tmp_path).start()
        wait_for(lambda: read(tmp_path / "app.txt") == "good", what=lambda: agent.log())
        agent.wait_log("secret/data/later")  # 404: retried, never written
        assert not (tmp_path / "later.txt").exists()
        server.kill()
        agent.wait_log("secret/data/app: ConnectError", count=4)
        assert read(tmp_path / "app.txt") == "good"  # the good file stays
        assert not (tmp_path / "later.txt").exists()
        assert agent.running()
        # the retries back off: the delays between attempts grow
        delays = [
            float(line.rsplit("retrying in ", 1)[1].rstrip("s"))
            for line in agent.log().splitlines()
            if "secret/data/app: ConnectError" in line and "retrying in" in line
        ]
        assert len(delays) >= 3 and delays == sorted(delays) and delays[-1] > delays[0]
    finally:
        if agent is not None:
            agent.stop()
        server.stop()


# -- a leased database credential ---------------------------------------------------------------


def test_leased_database_credential_rerendered_before_expiry(
    start_agent: StartAgent, root: hvac.Client, token_file: str, pg: PgCluster, tmp_path: Path
) -> None:
    mount = database_mount(root, pg, default_ttl="4s", max_ttl="6s")
    (tmp_path / "db.ctmpl").write_text(
        '{{ with secret "' + mount + '/creds/app" }}'
        "{{ .Data.username }} {{ .Data.password }} {{ .LeaseID }}{{ end }}"
    )
    agent = start_agent(
        TOKEN_FILE
        + """
template {
  source = "{dir}/db.ctmpl"
  destination = "{dir}/db.txt"
}
""",
        mount=mount,
    )
    first = wait_for(lambda: read(tmp_path / "db.txt"), what=lambda: agent.log()).split()
    assert first[2].startswith(f"{mount}/creds/app/")
    with psycopg.connect(pg.dsn(first[0], first[1])) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    # renewed at 2/3 of 4 s, then (max TTL 6 s near) replaced before the first lease ends
    started = time.monotonic()
    second = wait_for(
        lambda: (t := read(tmp_path / "db.txt").split()) != first and t,
        timeout=15,
        what=lambda: agent.log(),
    )
    assert time.monotonic() - started < 6
    assert second[0] != first[0]
    with psycopg.connect(pg.dsn(second[0], second[1])) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    lease = root.sys.read_lease(first[2])["data"]
    assert lease["ttl"] > 0  # the first credential was still alive when replaced
