"""pkiCert against the PKI engine, init-container mode (exit_after_auth with templates), JSON
logs, and the proxy's TLS listener, request-header check and re-login on a revoked token."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import httpx
import hvac
import pytest
from cryptography import x509

from tests.agent.conftest import StartAgent
from tests.agent.helpers import read, unique, wait_for
from tests.auth.helpers import issue, make_ca
from tests.serverproc import ServerProcess, free_port

TOKEN_FILE = """
vault { address = "{addr}" }
auto_auth {
  method "token_file" {
    config = { token_file_path = "{dir}/in-token" }
  }
}
"""


@pytest.fixture
def token_file(root: hvac.Client, tmp_path: Path) -> str:
    token = root.auth.token.create(policies=["root"], ttl="1h")["auth"]["client_token"]
    (tmp_path / "in-token").write_text(token)
    return token


def test_pki_cert_rendered_and_reissued_before_expiry(
    start_agent: StartAgent, root: hvac.Client, token_file: str, tmp_path: Path
) -> None:
    mount = unique("pki")
    root.sys.enable_secrets_engine("pki", path=mount)
    root.write(f"{mount}/root/generate/internal", common_name="agent test root", ttl="700h")
    root.write(
        f"{mount}/roles/web", allowed_domains="example.com", allow_subdomains=True, max_ttl="1h"
    )
    (tmp_path / "cert.ctmpl").write_text(
        '{{ with pkiCert "' + mount + '/issue/web" "common_name=a.example.com" "ttl=4s" }}'
        "{{ .Data.Cert }}{{ .Data.Key }}{{ .Data.CA }}{{ end }}"
    )
    agent = start_agent(
        TOKEN_FILE
        + """
template {
  source = "{dir}/cert.ctmpl"
  destination = "{dir}/bundle.pem"
  perms = "0600"
}
"""
    )
    first = wait_for(lambda: read(tmp_path / "bundle.pem"), what=lambda: agent.log())
    cert = x509.load_pem_x509_certificate(first.encode())
    assert cert.subject.rfc4514_string() == "CN=a.example.com"
    assert "PRIVATE KEY" in first and first.count("BEGIN CERTIFICATE") == 2
    # issued again at 85 % of its 4 s validity, before it ends
    second = wait_for(
        lambda: (t := read(tmp_path / "bundle.pem")) != first and t,
        timeout=15,
        what=lambda: agent.log(),
    )
    renewed = x509.load_pem_x509_certificate(second.encode())
    assert renewed.serial_number != cert.serial_number
    assert renewed.not_valid_before_utc <= cert.not_valid_after_utc


def test_init_container_mode_renders_then_exits(
    start_agent: StartAgent, root: hvac.Client, token_file: str, tmp_path: Path
) -> None:
    mount = unique("kv")
    root.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
    root.secrets.kv.v2.create_or_update_secret("a", {"v": "x"}, mount_point=mount)
    agent = start_agent(
        TOKEN_FILE
        + """
log_format = "json"
template {
  contents = "{{ with secret \\"{kv}/data/a\\" }}{{ .Data.data.v }}{{ end }}"
  destination = "{dir}/a.txt"
}
""",
        "-exit-after-auth",
        kv=mount,
    )
    assert agent.wait_exit() == 0, agent.log()
    assert read(tmp_path / "a.txt") == "x"
    lines = [json.loads(line) for line in agent.log().splitlines() if line.strip()]
    assert {"@timestamp", "@level", "@module", "@message"} <= set(lines[0])
    assert any(line["@message"] == "exit_after_auth: done" for line in lines)


def test_proxy_tls_listener_request_header_and_relogin(
    start_agent: StartAgent, root: hvac.Client, dev_server: ServerProcess, tmp_path: Path
) -> None:
    ca = make_ca("agent-listener-ca")
    cert, key = issue(ca, "localhost", server=True).write(tmp_path, "listener")
    context = ssl.create_default_context(cafile=None)
    context.load_verify_locations(cadata=ca.pem)
    mount = unique("approle")
    root.sys.enable_auth_method("approle", path=mount)
    root.write(f"auth/{mount}/role/app", token_policies="default", token_ttl="1h")
    (tmp_path / "role-id").write_text(
        root.read(f"auth/{mount}/role/app/role-id")["data"]["role_id"]
    )
    (tmp_path / "secret-id").write_text(
        root.write(f"auth/{mount}/role/app/secret-id")["data"]["secret_id"]
    )
    port = free_port()
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
listener "tcp" {
  address = "127.0.0.1:{port}"
  tls_cert_file = "{cert}"
  tls_key_file = "{key}"
  require_request_header = true
}
api_proxy { use_auto_auth_token = "force" }
""",
        mount=mount,
        port=port,
        cert=cert,
        key=key,
    )
    agent.wait_log("API proxy listening")
    first = wait_for(lambda: read(tmp_path / "token"))
    with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=context) as http:
        refused = http.get("/v1/auth/token/lookup-self")
        assert refused.status_code == 412 and "X-Vault-Request" in refused.json()["errors"][0]
        headers = {"X-Vault-Request": "true", "X-Vault-Token": "not-a-real-token"}
        looked = http.get("/v1/auth/token/lookup-self", headers=headers)
        assert looked.status_code == 200  # "force": the agent's token, not the caller's
        assert looked.json()["data"]["path"] == f"auth/{mount}/login"
        root.auth.token.revoke(first)
        assert http.get("/v1/auth/token/lookup-self", headers=headers).status_code == 403
        # the 403 on the agent's own token makes it check and log in again
        second = wait_for(
            lambda: (t := read(tmp_path / "token")) != first and t,
            timeout=15,
            what=lambda: agent.log(),
        )
        again = http.get("/v1/auth/token/lookup-self", headers=headers)
        assert again.status_code == 200 and again.json()["data"]["id"] == second


def test_proxy_retries_then_passes_the_failure_on(tmp_path: Path) -> None:
    from tests.agent.helpers import AgentProcess, write_config
    from tests.serverproc import start_dev_server

    (tmp_path / "own").mkdir()
    server = start_dev_server(tmp_path / "own")
    agent = None
    try:
        (tmp_path / "in-token").write_text(server.root_token)
        port = free_port()
        config = write_config(
            tmp_path,
            """
vault {
  address = "{addr}"
  retry { num_retries = 2 }
}
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
""",
            addr=server.addr,
            dir=tmp_path,
            port=port,
        )
        agent = AgentProcess(config, tmp_path).start()
        agent.wait_log("API proxy listening")
        agent.wait_log("authenticated")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            assert http.get("/v1/secret/config").status_code == 200
            server.client(server.root_token).sys.seal()
            sealed = http.get("/v1/secret/config")
            assert sealed.status_code == 503  # retried twice, then passed on as it came
            assert agent.log().count("HTTP 503; retry") == 2
            server.kill()
            down = http.get("/v1/secret/config")
            assert down.status_code == 502 and "could not reach" in down.json()["errors"][0]
            assert agent.log().count("ConnectError; retry") == 2
    finally:
        if agent is not None:
            agent.stop()
        server.stop()


def test_pki_cert_still_valid_on_disk_is_not_reissued_at_start(
    start_agent: StartAgent, root: hvac.Client, token_file: str, tmp_path: Path
) -> None:
    mount = unique("pki")
    root.sys.enable_secrets_engine("pki", path=mount)
    root.write(f"{mount}/root/generate/internal", common_name="agent test root", ttl="700h")
    root.write(
        f"{mount}/roles/web", allowed_domains="example.com", allow_subdomains=True, max_ttl="1h"
    )
    (tmp_path / "cert.ctmpl").write_text(
        '{{ with pkiCert "' + mount + '/issue/web" "common_name=b.example.com" "ttl=1h" }}'
        "{{ .Data.Cert }}{{ .Data.Key }}{{ .Data.CA }}{{ end }}"
    )
    config = (
        TOKEN_FILE
        + """
template {
  source = "{dir}/cert.ctmpl"
  destination = "{dir}/bundle.pem"
}
"""
    )
    agent = start_agent(config, name="first.hcl")
    first = wait_for(lambda: read(tmp_path / "bundle.pem"), what=lambda: agent.log())
    agent.stop()
    serials = root.list(f"{mount}/certs")["data"]["keys"]
    again = start_agent(config, name="second.hcl")
    again.wait_log("reusing the certificate")
    assert read(tmp_path / "bundle.pem") == first
    assert root.list(f"{mount}/certs")["data"]["keys"] == serials  # nothing new issued
    # an expired (here: unreadable) certificate is replaced at start
    again.stop()
    (tmp_path / "bundle.pem").write_text("no certificate here")
    third = start_agent(config, name="third.hcl")
    fresh = wait_for(
        lambda: "BEGIN CERTIFICATE" in (t := read(tmp_path / "bundle.pem")) and t,
        what=lambda: third.log(),
    )
    assert fresh != first


def test_exit_on_retry_failure(
    start_agent: StartAgent, root: hvac.Client, token_file: str, tmp_path: Path
) -> None:
    agent = start_agent(
        TOKEN_FILE.replace(
            'vault { address = "{addr}" }',
            'vault {\n  address = "{addr}"\n  retry { num_retries = 1 }\n}',
        )
        + """
template_config { exit_on_retry_failure = true }
template {
  contents = "{{ with secret \\"secret/data/never-written\\" }}{{ .Data.data.x }}{{ end }}"
  destination = "{dir}/never.txt"
}
"""
    )
    assert agent.wait_exit(timeout=30) == 1, agent.log()
    assert "templates could not be rendered" in agent.log()
    assert not (tmp_path / "never.txt").exists()
