"""Auto-auth against a real server: every method, the sinks (plain, wrapped, DH-encrypted),
renewal, and a new login after revocation or at the max TTL."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import hvac
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from joserfc.jwk import RSAKey

from strongroom.agent.sink import dh_decrypt
from tests.agent.conftest import StartAgent
from tests.agent.helpers import read, unique, wait_for
from tests.auth.helpers import public_pem, sign
from tests.serverproc import ServerProcess


def lookup(server: ServerProcess, token: str) -> dict:
    with server.http(token) as http:
        response = http.get("/v1/auth/token/lookup-self")
        return response.json() if response.status_code == 200 else {}


def sink_token(path: Path) -> str:
    return read(path).strip()


def approle(root: hvac.Client, policies: str = "default", **role: object) -> tuple[str, str, str]:
    mount = unique("approle")
    root.sys.enable_auth_method("approle", path=mount)
    root.write(f"auth/{mount}/role/app", token_policies=policies, **role)
    role_id = root.read(f"auth/{mount}/role/app/role-id")["data"]["role_id"]
    secret_id = root.write(f"auth/{mount}/role/app/secret-id")["data"]["secret_id"]
    return mount, role_id, secret_id


APPROLE = """
vault { address = "{addr}" }
auto_auth {
  method "approle" {
    mount_path = "auth/{mount}"
    min_backoff = "1s"
    max_backoff = "2s"
    config = {
      role_id_file_path = "{dir}/role-id"
      secret_id_file_path = "{dir}/secret-id"
      {extra}
    }
  }
  sink "file" {
    config = { path = "{dir}/token" }
  }
}
"""


def test_token_file(
    start_agent: StartAgent, root: hvac.Client, dev_server: ServerProcess, tmp_path: Path
) -> None:
    token = root.auth.token.create(policies=["default"], ttl="1h")["auth"]["client_token"]
    (tmp_path / "in-token").write_text(token + "\n")
    agent = start_agent("""
vault { address = "{addr}" }
auto_auth {
  method "token_file" {
    config = { token_file_path = "{dir}/in-token" }
  }
  sink "file" {
    config = { path = "{dir}/token", mode = 0600 }
  }
}
""")
    assert wait_for(lambda: sink_token(tmp_path / "token")) == token
    assert (tmp_path / "token").stat().st_mode & 0o777 == 0o600
    assert agent.running()


def test_approle_login_removes_secret_id(
    start_agent: StartAgent, root: hvac.Client, dev_server: ServerProcess, tmp_path: Path
) -> None:
    mount, role_id, secret_id = approle(root)
    (tmp_path / "role-id").write_text(role_id)
    (tmp_path / "secret-id").write_text(secret_id)
    start_agent(APPROLE, mount=mount, extra="")
    token = wait_for(lambda: sink_token(tmp_path / "token"))
    info = lookup(dev_server, token)["data"]
    assert info["path"] == f"auth/{mount}/login"
    assert not (tmp_path / "secret-id").exists()  # remove_secret_id_file_after_reading
    assert (tmp_path / "token").stat().st_mode & 0o777 == 0o640


def test_approle_keeps_secret_id_when_asked(
    start_agent: StartAgent, root: hvac.Client, tmp_path: Path
) -> None:
    mount, role_id, secret_id = approle(root)
    (tmp_path / "role-id").write_text(role_id)
    (tmp_path / "secret-id").write_text(secret_id)
    start_agent(APPROLE, mount=mount, extra="remove_secret_id_file_after_reading = false")
    wait_for(lambda: sink_token(tmp_path / "token"))
    assert (tmp_path / "secret-id").read_text() == secret_id


def test_approle_wrapped_secret_id(
    start_agent: StartAgent, root: hvac.Client, dev_server: ServerProcess, tmp_path: Path
) -> None:
    mount, role_id, _ = approle(root)
    with dev_server.http(dev_server.root_token) as http:
        wrapped = http.post(
            f"/v1/auth/{mount}/role/app/secret-id", headers={"X-Vault-Wrap-TTL": "5m"}
        ).json()["wrap_info"]["token"]
    (tmp_path / "role-id").write_text(role_id)
    (tmp_path / "secret-id").write_text(wrapped)
    start_agent(
        APPROLE,
        mount=mount,
        extra=f'secret_id_response_wrapping_path = "auth/{mount}/role/app/secret-id"',
    )
    token = wait_for(lambda: sink_token(tmp_path / "token"))
    assert lookup(dev_server, token)["data"]["path"] == f"auth/{mount}/login"


def test_approle_wrapped_secret_id_from_elsewhere_is_refused(
    start_agent: StartAgent, root: hvac.Client, dev_server: ServerProcess, tmp_path: Path
) -> None:
    mount, role_id, secret_id = approle(root)
    with dev_server.http(dev_server.root_token) as http:
        # wrapped by sys/wrapping/wrap, not by the role's secret-id endpoint
        wrapped = http.post(
            "/v1/sys/wrapping/wrap",
            json={"secret_id": secret_id},
            headers={"X-Vault-Wrap-TTL": "5m"},
        ).json()["wrap_info"]["token"]
    (tmp_path / "role-id").write_text(role_id)
    (tmp_path / "secret-id").write_text(wrapped)
    agent = start_agent(
        APPROLE,
        mount=mount,
        extra=f'secret_id_response_wrapping_path = "auth/{mount}/role/app/secret-id"',
    )
    agent.wait_log("expected")
    assert not (tmp_path / "token").exists()
    assert wrapped not in agent.log() and secret_id not in agent.log()


@pytest.fixture(scope="module")
def sa_key() -> RSAKey:
    return RSAKey.generate_key(2048)


def test_kubernetes_service_account_jwt(
    start_agent: StartAgent,
    root: hvac.Client,
    dev_server: ServerProcess,
    tmp_path: Path,
    sa_key: RSAKey,
) -> None:
    mount = unique("kubernetes")
    root.sys.enable_auth_method("kubernetes", path=mount)
    # no kubernetes_host: the keys verify the JWT locally (no TokenReview call)
    root.write(
        f"auth/{mount}/config",
        kubernetes_host="",
        pem_keys=[public_pem(sa_key)],
        disable_local_ca_jwt=True,
    )
    root.write(
        f"auth/{mount}/role/web",
        bound_service_account_names="web",
        bound_service_account_namespaces="apps",
        token_policies="default",
        token_ttl="1h",
    )
    now = int(time.time())
    claims = {
        "iss": "https://kubernetes.default.svc.cluster.local",
        "aud": ["strongroom"],
        "iat": now - 10,
        "exp": now + 3600,
        "kubernetes.io": {
            "namespace": "apps",
            "pod": {"name": "web-0", "uid": "pod-uid"},
            "serviceaccount": {"name": "web", "uid": "sa-uid-web"},
        },
        "sub": "system:serviceaccount:apps:web",
    }
    (tmp_path / "sa-token").write_text(sign(claims, sa_key))
    agent = start_agent(
        """
vault { address = "{addr}" }
auto_auth {
  method "kubernetes" {
    mount_path = "auth/{mount}"
    config = {
      role = "web"
      token_path = "{dir}/sa-token"
    }
  }
  sink "file" { config = { path = "{dir}/token" } }
}
""",
        mount=mount,
    )
    token = wait_for(lambda: sink_token(tmp_path / "token"), what=lambda: f"a token\n{agent.log()}")
    info = lookup(dev_server, token)["data"]
    assert info["meta"]["service_account_name"] == "web"
    assert info["meta"]["service_account_namespace"] == "apps"
    assert (tmp_path / "sa-token").exists()  # the kubelet's file is never removed


def jwt_mount(root: hvac.Client, key: RSAKey) -> str:
    mount = unique("jwt")
    root.sys.enable_auth_method("jwt", path=mount)
    root.write(f"auth/{mount}/config", jwt_validation_pubkeys=[public_pem(key)])
    root.write(
        f"auth/{mount}/role/ci",
        role_type="jwt",
        user_claim="sub",
        bound_audiences="strongroom",
        token_policies="default",
        token_ttl="1h",
    )
    return mount


def a_jwt(key: RSAKey, subject: str) -> str:
    now = int(time.time())
    return sign({"sub": subject, "aud": "strongroom", "iat": now, "exp": now + 600}, key)


def test_jwt_file_read_removed_and_reread_on_change(
    start_agent: StartAgent,
    root: hvac.Client,
    dev_server: ServerProcess,
    tmp_path: Path,
    sa_key: RSAKey,
) -> None:
    mount = jwt_mount(root, sa_key)
    (tmp_path / "jwt").write_text(a_jwt(sa_key, "first"))
    start_agent(
        """
vault { address = "{addr}" }
auto_auth {
  enable_reauth_on_new_credentials = true
  method "jwt" {
    mount_path = "auth/{mount}"
    config = {
      path = "{dir}/jwt"
      role = "ci"
    }
  }
  sink "file" { config = { path = "{dir}/token" } }
}
""",
        mount=mount,
    )
    first = wait_for(lambda: sink_token(tmp_path / "token"))
    assert lookup(dev_server, first)["data"]["meta"]["role"] == "ci"
    wait_for(lambda: not (tmp_path / "jwt").exists(), what="the JWT file removed")
    (tmp_path / "jwt").write_text(a_jwt(sa_key, "second"))
    second = wait_for(lambda: (t := sink_token(tmp_path / "token")) != first and t)
    entity_first = lookup(dev_server, first)["data"]["entity_id"]
    entity_second = lookup(dev_server, second)["data"]["entity_id"]
    assert entity_first != entity_second  # logged in with the new subject


def test_cert_method(tmp_path: Path) -> None:
    from tests.auth.helpers import issue, make_ca
    from tests.serverproc import ServerProcess, free_port

    ca = make_ca("agent-test-ca")
    server_cert = issue(ca, "server", server=True)
    client_cert = issue(ca, "agent-client")
    cert_path, key_path = server_cert.write(tmp_path, "server")
    client_cert.write(tmp_path, "client")
    (tmp_path / "ca.pem").write_text(ca.pem)
    port = free_port()
    (tmp_path / "server.hcl").write_text(f"""
storage "inmem" {{}}
listener "tcp" {{
  address = "127.0.0.1:{port}"
  tls_cert_file = "{cert_path}"
  tls_key_file = "{key_path}"
  tls_client_ca_file = "{tmp_path / "ca.pem"}"
}}
""")
    server = ServerProcess(
        [f"-config={tmp_path / 'server.hcl'}"], port, tmp_path, scheme="https"
    ).start()
    agent = None
    try:
        client = hvac.Client(url=server.addr, verify=str(tmp_path / "ca.pem"))
        keys = client.sys.initialize(1, 1)
        client.sys.submit_unseal_key(keys["keys"][0])
        client.token = keys["root_token"]
        client.sys.enable_auth_method("cert")
        client.write("auth/cert/certs/agent", certificate=ca.pem, token_policies="default")
        from tests.agent.helpers import AgentProcess, write_config

        config = write_config(
            tmp_path,
            """
vault {
  address = "{addr}"
  ca_cert = "{dir}/ca.pem"
}
auto_auth {
  method "cert" {
    config = {
      name = "agent"
      client_cert = "{dir}/client.crt"
      client_key = "{dir}/client.key"
    }
  }
  sink "file" { config = { path = "{dir}/token" } }
}
""",
            addr=server.addr,
            dir=tmp_path,
        )
        agent = AgentProcess(config, tmp_path).start()
        token = wait_for(
            lambda: sink_token(tmp_path / "token"), what=lambda: f"a token\n{agent.log()}"
        )
        check = hvac.Client(url=server.addr, token=token, verify=str(tmp_path / "ca.pem"))
        assert check.auth.token.lookup_self()["data"]["path"] == "auth/cert/login"
        # tls_server_name: the certificate is checked against that name
        import asyncio

        from strongroom.agent._client import ServerUnavailable, VaultClient
        from strongroom.agent.config import VaultConfig

        async def health(name: str) -> dict:
            vault = VaultConfig(
                address=server.addr, ca_cert=str(tmp_path / "ca.pem"), tls_server_name=name
            )
            client = VaultClient(vault)
            try:
                return await client.request("GET", "sys/health")
            finally:
                await client.close()

        assert asyncio.run(health("localhost"))["initialized"] is True
        with pytest.raises(ServerUnavailable):
            asyncio.run(health("not-the-server.example"))
    finally:
        if agent is not None:
            agent.stop()
        server.stop()


def test_wrapped_and_dh_sinks(
    start_agent: StartAgent, root: hvac.Client, dev_server: ServerProcess, tmp_path: Path
) -> None:
    mount, role_id, secret_id = approle(root)
    (tmp_path / "role-id").write_text(role_id)
    (tmp_path / "secret-id").write_text(secret_id)
    private = X25519PrivateKey.generate()
    public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    (tmp_path / "dh.json").write_text(
        json.dumps({"curve25519_public_key": base64.b64encode(public).decode()})
    )
    start_agent(
        APPROLE.replace(
            '  sink "file" {',
            """  sink "file" {
    wrap_ttl = "5m"
    config = { path = "{dir}/wrapped" }
  }
  sink "file" {
    dh_type = "curve25519"
    dh_path = "{dir}/dh.json"
    derive_key = true
    aad = "my-app"
    config = { path = "{dir}/encrypted" }
  }
  sink "file" {""",
        ),
        mount=mount,
        extra="",
    )
    token = wait_for(lambda: sink_token(tmp_path / "token"))
    wrap_info = json.loads(wait_for(lambda: read(tmp_path / "wrapped")))
    assert wrap_info["creation_path"] == "sys/wrapping/wrap" and wrap_info["ttl"] == 300
    with dev_server.http(wrap_info["token"]) as http:
        unwrapped = http.post("/v1/sys/wrapping/unwrap").json()
    assert unwrapped["data"]["token"] == token
    envelope = wait_for(lambda: read(tmp_path / "encrypted")).encode()
    assert token.encode() not in envelope
    assert dh_decrypt(envelope, private, b"my-app", True).decode() == token
    with pytest.raises(Exception):  # noqa: B017 - the AEAD refuses another AAD
        dh_decrypt(envelope, private, b"other", True)


def test_renews_then_logs_in_again_after_revocation(
    start_agent: StartAgent, root: hvac.Client, dev_server: ServerProcess, tmp_path: Path
) -> None:
    mount, role_id, secret_id = approle(root, token_ttl="3s", token_max_ttl="1h")
    (tmp_path / "role-id").write_text(role_id)
    (tmp_path / "secret-id").write_text(secret_id)
    agent = start_agent(APPROLE, mount=mount, extra="")
    first = wait_for(lambda: sink_token(tmp_path / "token"))
    time.sleep(4)  # longer than the TTL: only renewal keeps it alive
    assert lookup(dev_server, first), agent.log()
    assert sink_token(tmp_path / "token") == first
    root.auth.token.revoke(first)
    second = wait_for(lambda: (t := sink_token(tmp_path / "token")) != first and t, timeout=15)
    assert lookup(dev_server, second)
    assert not lookup(dev_server, first)
    assert first not in agent.log() and second not in agent.log()


def test_logs_in_again_near_max_ttl(
    start_agent: StartAgent, root: hvac.Client, dev_server: ServerProcess, tmp_path: Path
) -> None:
    mount, role_id, secret_id = approle(root, token_ttl="2s", token_max_ttl="4s")
    (tmp_path / "role-id").write_text(role_id)
    (tmp_path / "secret-id").write_text(secret_id)
    start_agent(APPROLE, mount=mount, extra="")
    first = wait_for(lambda: sink_token(tmp_path / "token"))
    second = wait_for(lambda: (t := sink_token(tmp_path / "token")) != first and t, timeout=10)
    assert lookup(dev_server, second)


def test_exit_after_auth(start_agent: StartAgent, root: hvac.Client, tmp_path: Path) -> None:
    mount, role_id, secret_id = approle(root)
    (tmp_path / "role-id").write_text(role_id)
    (tmp_path / "secret-id").write_text(secret_id)
    agent = start_agent(
        'exit_after_auth = true\npid_file = "{dir}/pid"\n' + APPROLE, mount=mount, extra=""
    )
    assert agent.wait_exit() == 0, agent.log()
    assert sink_token(tmp_path / "token")
    assert not (tmp_path / "pid").exists()  # removed on exit


def test_bad_config_does_not_start(start_agent: StartAgent, tmp_path: Path) -> None:
    agent = start_agent(
        'vault { address = "{addr}" }\nauto_auth {\n  sink "file" {\n'
        '    config = { path = "{dir}/token" }\n  }\n}\n'
    )
    assert agent.wait_exit() == 1
    assert f'{tmp_path / "agent.hcl"}:2: auto_auth needs a "method" block' in agent.log()
    assert not (tmp_path / "token").exists()


def test_login_retries_with_backoff_until_the_credentials_appear(
    start_agent: StartAgent, root: hvac.Client, dev_server: ServerProcess, tmp_path: Path
) -> None:
    mount, role_id, secret_id = approle(root)
    agent = start_agent(APPROLE, mount=mount, extra="")
    agent.wait_log("auth failed", count=2)  # the role ID file is missing: retried
    (tmp_path / "role-id").write_text(role_id)
    (tmp_path / "secret-id").write_text(secret_id)
    token = wait_for(lambda: sink_token(tmp_path / "token"))
    assert lookup(dev_server, token)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("max_retries = 1", "auth failed 2 times in a row: giving up"),
        ("exit_on_err = true", "cannot read role ID"),
    ],
)
def test_auth_gives_up_when_told(
    start_agent: StartAgent, root: hvac.Client, tmp_path: Path, setting: str, message: str
) -> None:
    mount, _, _ = approle(root)  # no role-id file: every login fails
    agent = start_agent(
        APPROLE.replace('min_backoff = "1s"', f'min_backoff = "1s"\n    {setting}'),
        mount=mount,
        extra="",
    )
    assert agent.wait_exit(timeout=30) == 1, agent.log()
    assert message in agent.log()
