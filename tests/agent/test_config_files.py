"""Several configuration files make one agent configuration: ``-config`` repeated and
configuration directories, merged as Vault Agent merges them."""

from __future__ import annotations

from pathlib import Path

import hvac
import pytest

from strongroom.agent.config import AgentConfigError, load_agent_config
from tests.agent.conftest import StartAgent
from tests.agent.helpers import read, unique, wait_for

VAULT_A = """
vault { address = "http://127.0.0.1:1" }
log_level = "debug"
template {
  contents = "a"
  destination = "{dir}/a.txt"
}
listener "tcp" {
  address = "127.0.0.1:8101"
  tls_disable = true
}
"""

AUTH_B = """
vault { address = "http://127.0.0.1:2" }
auto_auth {
  method "token_file" {
    config = { token_file_path = "{dir}/token" }
  }
}
template {
  contents = "b"
  destination = "b.txt"
}
"""

EXTRA_JSON = """{
  "exit_after_auth": true,
  "listener": [{"tcp": {"address": "127.0.0.1:8102", "tls_disable": true}}]
}
"""


def _write(path: Path, text: str, tmp: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.replace("{dir}", str(tmp)))
    return path


def test_directory_and_files_merge_in_order(tmp_path: Path) -> None:
    confdir = tmp_path / "conf.d"
    _write(confdir / "10-vault.hcl", VAULT_A, tmp_path)
    _write(confdir / "20-auth.hcl", AUTH_B, tmp_path)
    # not configuration files: left out, as Vault leaves them out
    _write(confdir / "notes.txt", "garbage {", tmp_path)
    _write(confdir / ".30-hidden.hcl", "garbage {", tmp_path)
    _write(confdir / "40-edit.hcl~", "garbage {", tmp_path)
    _write(confdir / "sub" / "50-nested.hcl", "garbage {", tmp_path)
    extra = _write(tmp_path / "extra.json", EXTRA_JSON, tmp_path)

    config = load_agent_config(str(confdir), str(extra))

    # repeated blocks add up, in file order
    assert [t.destination for t in config.templates] == [
        str(tmp_path / "a.txt"),
        str(confdir / "b.txt"),  # relative paths: to the file that names them
    ]
    assert [listener.address for listener in config.listeners] == [
        "127.0.0.1:8101",
        "127.0.0.1:8102",
    ]
    # a block given twice: the later file's, whole
    assert config.vault.address == "http://127.0.0.1:2"
    # settings from whichever file has them
    assert config.log_level == "debug"
    assert config.exit_after_auth
    assert config.auto_auth is not None and config.auto_auth.method.type == "token_file"
    assert str(confdir / "10-vault.hcl") in config.path and str(extra) in config.path

    # alone, the first file has templates and no auto_auth: refused
    with pytest.raises(AgentConfigError, match=r"10-vault\.hcl:4: templates need"):
        load_agent_config(str(confdir / "10-vault.hcl"))


def test_checks_span_files_and_errors_name_the_file(tmp_path: Path) -> None:
    env = _write(
        tmp_path / "env.hcl",
        '\n\nenv_template "FOO" {\n  contents = "x"\n}\n',
        tmp_path,
    )
    auth = _write(tmp_path / "auth.hcl", AUTH_B.split("template {")[0], tmp_path)
    # env_template here, exec nowhere: the error names the env_template's file and line
    with pytest.raises(AgentConfigError, match=r"env\.hcl:3: \"env_template\" needs an \"exec\""):
        load_agent_config(str(auth), str(env))
    # exec in a third file completes it
    exec_file = _write(tmp_path / "exec.hcl", 'exec { command = ["true"] }\n', tmp_path)
    config = load_agent_config(str(auth), str(env), str(exec_file))
    assert config.exec is not None and [e.name for e in config.env_templates] == ["FOO"]

    bad = _write(tmp_path / "d" / "20-bad.hcl", "\nvault {\n  adress = 1\n}\n", tmp_path)
    _write(tmp_path / "d" / "10-good.hcl", AUTH_B, tmp_path)
    with pytest.raises(AgentConfigError, match=r"20-bad\.hcl:3: unknown key \"adress\""):
        load_agent_config(str(bad.parent))
    (tmp_path / "empty").mkdir()
    with pytest.raises(AgentConfigError, match=r"no \.hcl or \.json configuration files"):
        load_agent_config(str(tmp_path / "empty"))
    with pytest.raises(AgentConfigError, match="cannot read the configuration"):
        load_agent_config(str(tmp_path / "missing.hcl"))


def test_agent_runs_on_a_directory_plus_a_file(
    start_agent: StartAgent, root: hvac.Client, tmp_path: Path
) -> None:
    mount = unique("kv")
    root.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
    root.secrets.kv.v2.create_or_update_secret("app", {"user": "merged"}, mount_point=mount)
    token = root.auth.token.create(policies=["root"], ttl="1h")["auth"]["client_token"]
    (tmp_path / "in-token").write_text(token)
    confdir = tmp_path / "agent.d"
    confdir.mkdir()
    (confdir / "10-auth.hcl").write_text(
        f"""
vault {{ address = "{root.url}" }}
auto_auth {{
  method "token_file" {{
    config = {{ token_file_path = "{tmp_path}/in-token" }}
  }}
  sink "file" {{
    config = {{ path = "{tmp_path}/sink-token" }}
  }}
}}
"""
    )
    (confdir / "20-template.hcl").write_text(
        f"""
template {{
  contents = "{{{{ with secret \\"{mount}/data/app\\" }}}}{{{{ .Data.data.user }}}}{{{{ end }}}}"
  destination = "{tmp_path}/from-dir.txt"
}}
"""
    )
    # the -config file the fixture writes holds one more template
    agent = start_agent(
        """
template {
  contents = "{{ with secret \\"{kv}/data/app\\" }}file:{{ .Data.data.user }}{{ end }}"
  destination = "{dir}/from-file.txt"
}
""",
        f"-config={confdir}",
        kv=mount,
    )
    wait_for(lambda: read(tmp_path / "sink-token") == token, what="the token in the sink")
    wait_for(lambda: read(tmp_path / "from-dir.txt") == "merged", what="the directory's template")
    wait_for(lambda: read(tmp_path / "from-file.txt") == "file:merged", what="the file's template")
    assert agent.running()


def test_persistent_cache_is_refused_by_name(tmp_path: Path) -> None:
    from strongroom.agent.config import parse_agent_config

    text = """
auto_auth {
  method "token_file" {
    config = { token_file_path = "/t" }
  }
}
listener "tcp" {
  address = "127.0.0.1:8100"
  tls_disable = true
}
cache {
  persist "kubernetes" {
    path = "/vault/agent-cache"
  }
}
"""
    with pytest.raises(AgentConfigError, match=r"agent\.hcl:12: cache \"persist\".*not supported"):
        parse_agent_config(text, "hcl", "agent.hcl")
