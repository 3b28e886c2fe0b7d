"""Agent configuration: Vault Agent's HCL and JSON shapes, and bad configs refused with the
file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from strongroom.agent.config import AgentConfigError, load_agent_config, parse_agent_config

FULL = """
pid_file = "./pidfile"
exit_after_auth = false
log_level = "debug"
log_format = "json"

vault {
  address = "http://127.0.0.1:8200"
  tls_skip_verify = true
  retry {
    num_retries = 5
  }
}

auto_auth {
  method "approle" {
    mount_path = "auth/approle-x"
    min_backoff = "2s"
    config = {
      role_id_file_path = "/etc/agent/role-id"
      secret_id_file_path = "/etc/agent/secret-id"
      remove_secret_id_file_after_reading = false
    }
  }

  sink "file" {
    config = {
      path = "/tmp/file-foo"
    }
  }

  sink "file" {
    wrap_ttl = "5m"
    aad_env_var = "TEST_AAD_ENV"
    dh_type = "curve25519"
    dh_path = "/tmp/file-foo-dhpath2"
    config = {
      path = "/tmp/file-bar"
      mode = "0600"
    }
  }
}

cache {
  // An empty cache stanza still enables caching
}

api_proxy {
  use_auto_auth_token = "force"
}

listener "tcp" {
  address = "127.0.0.1:8100"
  tls_disable = true
}

template_config {
  static_secret_render_interval = "10m"
  exit_on_retry_failure = true
  max_connections_per_host = 20
}

template {
  contents     = "{{ with secret \\"secret/my-secret\\" }}{{ .Data.data.foo }}{{ end }}"
  destination  = "/tmp/agent/render-content.txt"
  perms = "0600"
  command = "touch /tmp/x"
  error_on_missing_key = true
}

template {
  contents    = "{{ timestamp }}"
  destination = "/tmp/agent/render.txt"
  exec {
    command = ["systemctl", "reload", "app"]
    timeout = "5s"
  }
}

telemetry {
  disable_hostname = true
}
"""


def test_vault_agent_example_config_parses() -> None:
    config = parse_agent_config(FULL, "hcl", "/etc/agent/agent.hcl")
    assert config.pid_file == "/etc/agent/pidfile"
    assert config.log_level == "debug" and config.log_format == "json"
    assert config.vault.address == "http://127.0.0.1:8200"
    assert config.vault.tls_skip_verify and config.vault.num_retries == 5
    assert config.auto_auth is not None
    method = config.auto_auth.method
    assert method.type == "approle" and method.mount_path == "auth/approle-x"
    assert method.min_backoff == 2.0
    assert method.config["remove_secret_id_file_after_reading"] is False
    first, second = config.auto_auth.sinks
    assert first.path == "/tmp/file-foo" and first.mode == 0o640 and not first.dh_type
    assert second.wrap_ttl == 300 and second.dh_type == "curve25519"
    assert second.mode == 0o600 and second.aad_env_var == "TEST_AAD_ENV"
    assert config.cache and config.api_proxy is not None
    assert config.api_proxy.use_auto_auth_token == "force"
    assert config.listeners[0].address == "127.0.0.1:8100"
    assert config.template_settings.static_secret_render_interval == 600
    assert config.template_settings.exit_on_retry_failure
    one, two = config.templates
    assert one.destination == "/tmp/agent/render-content.txt" and one.perms == 0o600
    assert one.command == ("/bin/sh", "-c", "touch /tmp/x") and one.error_on_missing_key
    assert two.command == ("systemctl", "reload", "app") and two.command_timeout == 5
    assert one.line == 63 and two.line == 71
    assert config.warnings == ("telemetry is not supported and is ignored",)


def test_method_with_type_inside_and_json_form(tmp_path: Path) -> None:
    hcl = """
auto_auth {
  method {
    type = "kubernetes"
    config = { role = "web" }
  }
}
template {
  contents = "x"
  destination = "out"
}
"""
    config = parse_agent_config(hcl, "hcl", str(tmp_path / "a.hcl"))
    assert config.auto_auth is not None
    assert config.auto_auth.method.type == "kubernetes"
    assert config.auto_auth.method.mount_path == "auth/kubernetes"
    assert config.templates[0].destination == str(tmp_path / "out")
    as_json = {
        "auto_auth": {
            "method": [{"type": "jwt", "config": {"path": "/var/jwt", "role": "r"}}],
            "sink": [{"type": "file", "config": {"path": "/tmp/s"}}],
        },
        "template": [{"contents": "{{ 1 }}", "destination": "/tmp/a"}],
        "exec": {"command": ["env"], "restart_on_secret_changes": "never"},
        "env_template": {"FOO": {"contents": "{{ 2 }}"}},
    }
    path = tmp_path / "agent.json"
    path.write_text(json.dumps(as_json, indent=2))
    config = load_agent_config(str(path))
    assert config.auto_auth is not None and config.auto_auth.method.type == "jwt"
    assert config.auto_auth.sinks[0].path == "/tmp/s"
    assert config.exec is not None and config.exec.restart_on_secret_changes == "never"
    assert [e.name for e in config.env_templates] == ["FOO"]


def _error(text: str, tmp_path: Path, name: str = "agent.hcl") -> str:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(AgentConfigError) as info:
        load_agent_config(str(path))
    return str(info.value)


GOOD_AUTH = """auto_auth {
  method "token_file" {
    config = { token_file_path = "/tmp/t" }
  }
}
"""


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (GOOD_AUTH + "\nfrobnicate {\n}\n", 7, 'unknown block or setting "frobnicate"'),
        (
            'auto_auth {\n  sink "file" {\n    config = { path = "/x" }\n  }\n}\n',
            1,
            'auto_auth needs a "method" block',
        ),
        (
            GOOD_AUTH + 'template {\n  destination = "/tmp/x"\n  contents = "a\n{{ if }}"\n}\n',
            9,
            "template syntax error: missing value for if",
        ),
        (
            GOOD_AUTH + 'template {\n  destination = "/tmp/x"\n  contents = "{{ nope 1 }}"\n}\n',
            8,
            'function "nope" not defined',
        ),
        (GOOD_AUTH + 'template {\n  contents = "x"\n}\n', 6, 'needs a "destination"'),
        ('auto_auth {\n  method "aws" {\n  }\n}\n', 2, 'unsupported auth method "aws"'),
        (
            'auto_auth {\n  method "approle" {\n    config = {}\n  }\n}\n',
            2,
            "needs config.role_id_file_path",
        ),
        (GOOD_AUTH + 'vault {\n  adress = "x"\n}\n', 7, 'unknown key "adress" in "vault"'),
        (GOOD_AUTH + 'exit_after_auth = "maybe"\n', 6, "expected a boolean"),
        ('auto_auth {\n  method "token_file" {\n  config = {\n', 3, "HCL syntax error"),
        (
            GOOD_AUTH + 'listener "tcp" {\n  address = "127.0.0.1:1"\n}\n',
            6,
            "a TLS listener needs tls_cert_file",
        ),
        (GOOD_AUTH + 'env_template "X" {\n  contents = "x"\n}\n', 6, 'needs an "exec" block'),
        (
            GOOD_AUTH.replace('"token_file" {', '"token_file" {\n    wrap_ttl = "5m"'),
            3,
            "set wrap_ttl on the sink instead",
        ),
        ('template {\n  contents = "x"\n  destination = "y"\n}\n', 1, 'need an "auto_auth"'),
        (
            GOOD_AUTH + 'api_proxy {\n  enforce_consistency = "sometimes"\n}\n',
            7,
            'enforce_consistency must be "always" or "never"',
        ),
        (
            GOOD_AUTH + 'api_proxy {\n  when_inconsistent = "shrug"\n}\n',
            7,
            'when_inconsistent must be "fail", "retry" or "forward"',
        ),
        ("", 1, "nothing to do"),
        (
            GOOD_AUTH.replace(
                "}\n}",
                '}\n  sink "file" {\n    dh_type = "rsa"\n    config = { path = "/s" }\n  }\n}',
            ),
            5,
            'dh_type must be "curve25519"',
        ),
    ],
)
def test_bad_config_names_file_and_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    error = _error(text, tmp_path)
    assert error.startswith(f"{tmp_path / 'agent.hcl'}:{line}: "), error
    assert message in error


def test_template_source_error_names_the_source_file(tmp_path: Path) -> None:
    source = tmp_path / "app.ctmpl"
    source.write_text('line one\n{{ with secret "x" }}\n{{ .Data.foo }\n')
    text = GOOD_AUTH + f'template {{\n  source = "{source}"\n  destination = "/tmp/o"\n}}\n'
    error = _error(text, tmp_path)
    assert error.startswith(f"{source}:3: template syntax error")
    assert "agent.hcl:6" in error


def test_json_errors(tmp_path: Path) -> None:
    assert ":3: JSON syntax error" in _error('{\n "auto_auth": {\n ,\n}', tmp_path, "a.json")
    error = _error(json.dumps({"auto_auth": {}, "bogus": 1}, indent=1), tmp_path, "b.json")
    assert ":3: " in error and "bogus" in error


def test_values_stay_out_of_errors(tmp_path: Path) -> None:
    error = _error(
        GOOD_AUTH + 'template {\n  contents = "s3cr3t {{ if }}"\n  destination = "/x"\n}\n',
        tmp_path,
    )
    assert "s3cr3t" not in error


def test_hcl_octal_modes(tmp_path: Path) -> None:
    text = (
        GOOD_AUTH.replace(
            "}\n}", '}\n  sink "file" {\n    config = { path = "/s", mode = 0600 }\n  }\n}'
        )
        + 'template {\n  contents = "x"\n  destination = "/d"\n  perms = 0640\n}\n'
    )
    config = parse_agent_config(text, "hcl", str(tmp_path / "a.hcl"))
    assert config.auto_auth is not None
    assert config.auto_auth.sinks[0].mode == 0o600
    assert config.templates[0].perms == 0o640
    as_json = json.dumps(
        {
            "auto_auth": {
                "method": {"token_file": {"config": {"token_file_path": "/t"}}},
                "sink": {"file": {"config": {"path": "/s", "mode": 384}}},
            }
        }
    )
    config = parse_agent_config(as_json, "json", str(tmp_path / "a.json"))
    assert config.auto_auth is not None and config.auto_auth.sinks[0].mode == 0o600


def test_heredoc_template_error_line(tmp_path: Path) -> None:
    text = GOOD_AUTH + (
        'template {\n  destination = "/tmp/x"\n  contents = <<EOT\nline one\n'
        '{{ with secret "a" }}\n{{ .Data.x | nosuch }}\n{{ end }}\nEOT\n}\n'
    )
    error = _error(text, tmp_path)
    assert error.startswith(f"{tmp_path / 'agent.hcl'}:11: "), error
    assert 'function "nosuch" not defined' in error


def test_consistency_settings_in_api_proxy_or_cache(tmp_path: Path) -> None:
    listener = 'listener "tcp" {\n  address = "127.0.0.1:8100"\n  tls_disable = true\n}\n'
    config = parse_agent_config(
        listener
        + 'api_proxy {\n  enforce_consistency = "always"\n  when_inconsistent = "fail"\n}\n',
        "hcl",
        str(tmp_path / "a.hcl"),
    )
    assert config.api_proxy is not None and not config.warnings
    assert config.api_proxy.enforce_consistency == "always"
    assert config.api_proxy.when_inconsistent == "fail"
    # Vault's consistency page spells "forward" out; older configs put both under cache {}
    config = parse_agent_config(
        listener
        + 'cache {\n  enforce_consistency = "always"\n'
        + '  when_inconsistent = "forward-active-node"\n}\n',
        "hcl",
        str(tmp_path / "b.hcl"),
    )
    assert config.api_proxy is not None and config.api_proxy.when_inconsistent == "forward"
    assert config.api_proxy.enforce_consistency == "always"
    default = parse_agent_config(listener, "hcl", str(tmp_path / "c.hcl"))
    assert default.api_proxy is None  # never, and a 412 retried within vault.retry
