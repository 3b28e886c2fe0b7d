"""SIGHUP: the agent reads its configuration again and applies what Vault Agent applies
while running — the log level and its listeners' TLS certificates."""

from __future__ import annotations

import signal
import ssl
from pathlib import Path

import httpx
import hvac
from cryptography import x509

from tests.agent.conftest import StartAgent
from tests.agent.helpers import read, wait_for
from tests.auth.helpers import issue, make_ca
from tests.serverproc import free_port

CONFIG = """
vault { address = "{addr}" }
log_level = "{level}"
auto_auth {
  method "token_file" {
    config = { token_file_path = "{dir}/in-token" }
  }
  sink "file" { config = { path = "{dir}/token" } }
}
listener "tcp" {
  address = "127.0.0.1:{port}"
  tls_cert_file = "{cert}"
  tls_key_file = "{key}"
}
api_proxy { use_auto_auth_token = true }
"""


def served_serial(port: int) -> int:
    pem = ssl.get_server_certificate(("127.0.0.1", port))
    return x509.load_pem_x509_certificate(pem.encode()).serial_number


def test_sighup_reloads_certificates_and_log_level(
    start_agent: StartAgent, root: hvac.Client, tmp_path: Path
) -> None:
    token = root.auth.token.create(policies=["root"], ttl="1h")["auth"]["client_token"]
    (tmp_path / "in-token").write_text(token)
    ca = make_ca("agent-reload-ca")
    first = issue(ca, "localhost", server=True)
    cert, key = first.write(tmp_path, "listener")
    context = ssl.create_default_context()
    context.load_verify_locations(cadata=ca.pem)
    port = free_port()
    values = {"port": port, "cert": cert, "key": key}
    agent = start_agent(CONFIG, level="info", **values)
    agent.wait_log("API proxy listening")
    wait_for(lambda: read(tmp_path / "token") == token, what="the token in the sink")
    assert served_serial(port) == first.cert.serial_number

    def lookup() -> httpx.Response:
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=context) as http:
            return http.get("/v1/auth/token/lookup-self")

    assert lookup().status_code == 200
    assert "received request" not in agent.log()  # a debug line; the level is info

    # a new certificate in the same files, and log_level = "debug" in the config
    second = issue(ca, "localhost", server=True)
    second.write(tmp_path, "listener")
    agent.config_path.write_text(
        CONFIG.replace("{addr}", root.url)
        .replace("{dir}", str(tmp_path))
        .replace("{level}", "debug")
        .replace("{port}", str(port))
        .replace("{cert}", str(cert))
        .replace("{key}", str(key))
    )
    assert served_serial(port) == first.cert.serial_number  # nothing changes before SIGHUP
    assert agent.proc is not None
    agent.proc.send_signal(signal.SIGHUP)
    agent.wait_log("reload done")
    assert f"listener 127.0.0.1:{port}: certificate reloaded" in agent.log()
    assert served_serial(port) == second.cert.serial_number
    assert lookup().status_code == 200
    agent.wait_log("received request: GET /v1/auth/token/lookup-self")

    # a configuration that no longer parses: logged, the running one kept
    good_config = agent.config_path.read_text()
    agent.config_path.write_text(good_config + "\nlistener {\n")
    agent.proc.send_signal(signal.SIGHUP)
    agent.wait_log("reloading the configuration failed, keeping the running one")
    assert agent.running() and lookup().status_code == 200

    # a certificate file that does not load: the listener keeps the certificate it has
    agent.config_path.write_text(good_config)
    Path(cert).write_text("not a certificate\n")
    agent.proc.send_signal(signal.SIGHUP)
    agent.wait_log("the certificate could not be reloaded, keeping the old one")
    agent.wait_log("reload done", count=2)
    assert agent.running()
    assert served_serial(port) == second.cert.serial_number
    assert lookup().status_code == 200
    # the key file never shows up in the log
    assert second.key_pem.split("\n")[1] not in agent.log()
