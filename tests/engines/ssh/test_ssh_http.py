"""The SSH engine over HTTP against a real ``strongroom server -dev`` with hvac's SSH methods,
and a real OpenSSH ``sshd`` that trusts our CA keys (ed25519 and RSA-3072)."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import hvac
import hvac.exceptions
import pytest

from tests.engines.ssh.sshd import TEST_USER, Sshd, start_sshd
from tests.serverproc import ServerProcess


def keygen(directory: Path, name: str, key_type: str = "ed25519", bits: int = 0) -> Path:
    path = directory / name
    args = ["ssh-keygen", "-q", "-t", key_type, "-N", "", "-f", str(path)]
    if bits:
        args += ["-b", str(bits)]
    subprocess.run(args, check=True)
    return path


def describe(cert: Path) -> str:
    return subprocess.run(
        ["ssh-keygen", "-L", "-f", str(cert)], check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture(scope="module")
def client(dev_server: ServerProcess) -> hvac.Client:
    return dev_server.client(dev_server.root_token)


@pytest.fixture(scope="module")
def mounts(client: hvac.Client) -> Iterator[dict[str, str]]:
    """Two mounts: one with a generated ed25519 CA, one with a generated RSA-3072 CA."""
    ed, rsa = f"ssh-ed-{uuid.uuid4().hex[:6]}", f"ssh-rsa-{uuid.uuid4().hex[:6]}"
    client.sys.enable_secrets_engine("ssh", path=ed)
    client.sys.enable_secrets_engine("ssh", path=rsa)
    client.secrets.ssh.submit_ca_information(key_type="ed25519", mount_point=ed)
    client.secrets.ssh.submit_ca_information(key_type="rsa", key_bits=3072, mount_point=rsa)
    for mp in (ed, rsa):
        client.secrets.ssh.create_role(
            "dev",
            key_type="ca",
            allow_user_certificates=True,
            allowed_users=f"{TEST_USER},alice",
            default_user=TEST_USER,
            default_extensions={"permit-pty": ""},
            allowed_extensions="permit-pty,permit-port-forwarding",
            ttl="5m",
            max_ttl="1h",
            mount_point=mp,
        )
    try:
        yield {"ed25519": ed, "rsa": rsa}
    finally:
        client.sys.disable_secrets_engine(ed)
        client.sys.disable_secrets_engine(rsa)


@pytest.fixture(scope="module")
def sshd(
    dev_server: ServerProcess, mounts: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sshd]:
    # TrustedUserCAKeys comes from the unauthenticated public_key endpoint, as an operator's
    # provisioning script would fetch it
    lines = [
        httpx.get(f"{dev_server.addr}/v1/{mp}/public_key", timeout=10).text
        for mp in mounts.values()
    ]
    server = start_sshd(tmp_path_factory.mktemp("sshd"), "".join(lines))
    try:
        yield server
    finally:
        server.stop()


def sign(client: hvac.Client, mp: str, key: Path, **kwargs: Any) -> Path:
    reply = client.secrets.ssh.sign_ssh_key(
        "dev", public_key=key.with_suffix(".pub").read_text(), mount_point=mp, **kwargs
    )
    cert = key.parent / (key.name + "-cert.pub")
    cert.write_text(reply["data"]["signed_key"])
    return cert


def test_public_key_is_unauthenticated_text(
    dev_server: ServerProcess, client: hvac.Client, mounts: dict[str, str]
) -> None:
    for kind, mp in mounts.items():
        reply = httpx.get(f"{dev_server.addr}/v1/{mp}/public_key", timeout=10)
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/plain")
        expected = "ssh-ed25519 " if kind == "ed25519" else "ssh-rsa "
        assert reply.text.startswith(expected) and reply.text.endswith("\n")
        assert (
            client.secrets.ssh.read_public_key(mount_point=mp)["data"]["public_key"] == reply.text
        )


@pytest.mark.parametrize("ca", ["ed25519", "rsa"])
def test_sshd_accepts_a_key_we_signed(
    client: hvac.Client, mounts: dict[str, str], sshd: Sshd, tmp_path: Path, ca: str
) -> None:
    key = keygen(tmp_path, "id", "rsa" if ca == "rsa" else "ed25519", 3072 if ca == "rsa" else 0)
    before = int(time.time())
    cert = sign(client, mounts[ca], key, valid_principals=TEST_USER, ttl="10m")
    result = sshd.ssh(key, cert, TEST_USER)
    assert result.returncode == 0, result.stderr + sshd.log()
    assert result.stdout.strip() == "strongroom-ok"

    text = describe(cert)
    assert "user certificate" in text
    principals = re.search(r"Principals:\s*\n((?:\s{16}.*\n)+)", text)
    assert principals is not None and principals.group(1).split() == [TEST_USER]
    extensions = re.search(r"Extensions:\s*\n((?:\s{16}.*\n)+)", text)
    assert extensions is not None and extensions.group(1).split() == ["permit-pty"]
    assert re.search(r"Critical Options: \(none\)", text)
    signer = "ED25519" if ca == "ed25519" else "RSA"
    assert re.search(rf"Signing CA: {signer} SHA256:", text)
    if ca == "rsa":
        assert "(using rsa-sha2-256)" in text  # Vault's default for an RSA CA
    valid = re.search(r"Valid: from (\S+) to (\S+)", text)
    assert valid is not None
    start = time.mktime(time.strptime(valid.group(1), "%Y-%m-%dT%H:%M:%S"))
    end = time.mktime(time.strptime(valid.group(2), "%Y-%m-%dT%H:%M:%S"))
    assert end - start == 600 + 30  # ttl plus the role's default not_before_duration
    assert before - 31 <= start <= before - 29 + 5
    key_id = re.search(r'Key ID: "([^"]+)"', text)
    assert key_id is not None and key_id.group(1).startswith("vault-root-")


@pytest.mark.parametrize("signer", ["rsa-sha2-256", "rsa-sha2-512", "default"])
def test_rsa_ca_algorithm_signer(
    client: hvac.Client, mounts: dict[str, str], sshd: Sshd, tmp_path: Path, signer: str
) -> None:
    mp = mounts["rsa"]
    role = f"signer-{signer}"
    client.secrets.ssh.create_role(
        role,
        key_type="ca",
        allow_user_certificates=True,
        allowed_users=TEST_USER,
        algorithm_signer=signer,
        ttl="5m",
        mount_point=mp,
    )
    assert client.read(f"{mp}/roles/{role}")["data"]["algorithm_signer"] == signer
    key = keygen(tmp_path, "id")
    reply = client.secrets.ssh.sign_ssh_key(
        role,
        public_key=key.with_suffix(".pub").read_text(),
        valid_principals=TEST_USER,
        mount_point=mp,
    )
    cert = key.parent / (key.name + "-cert.pub")
    cert.write_text(reply["data"]["signed_key"])
    used = "rsa-sha2-256" if signer == "default" else signer
    assert f"(using {used})" in describe(cert)  # ssh-keygen verified the signature
    result = sshd.ssh(key, cert, TEST_USER)
    assert result.returncode == 0, result.stderr + sshd.log()
    assert result.stdout.strip() == "strongroom-ok"


def test_sshd_refuses_a_certificate_past_its_ttl(
    client: hvac.Client, mounts: dict[str, str], sshd: Sshd, tmp_path: Path
) -> None:
    key = keygen(tmp_path, "short")
    cert = sign(client, mounts["ed25519"], key, valid_principals=TEST_USER, ttl="1s")
    text = describe(cert)
    end = re.search(r"Valid: from \S+ to (\S+)", text)
    assert end is not None
    deadline = time.mktime(time.strptime(end.group(1), "%Y-%m-%dT%H:%M:%S"))
    while time.time() <= deadline + 1:
        time.sleep(0.2)
    result = sshd.ssh(key, cert, TEST_USER)
    assert result.returncode == 255
    assert "Permission denied" in result.stderr
    assert "expired" in sshd.log()


def test_sshd_refuses_a_principal_it_was_not_signed_for(
    client: hvac.Client, mounts: dict[str, str], sshd: Sshd, tmp_path: Path
) -> None:
    key = keygen(tmp_path, "alice")
    cert = sign(client, mounts["ed25519"], key, valid_principals="alice")  # allowed by role
    result = sshd.ssh(key, cert, TEST_USER)  # but not the login user
    assert result.returncode == 255 and "Permission denied" in result.stderr
    assert "not a listed principal" in sshd.log()


def test_issue_returns_a_working_key_pair(
    client: hvac.Client, mounts: dict[str, str], sshd: Sshd, tmp_path: Path
) -> None:
    data = client.write(
        f"{mounts['ed25519']}/issue/dev", key_type="ed25519", valid_principals=TEST_USER
    )["data"]
    assert data["private_key_type"] == "ed25519"
    assert data["signed_key"].startswith("ssh-ed25519-cert-v01@openssh.com ")
    key = tmp_path / "issued"
    key.write_text(data["private_key"])
    key.chmod(0o600)
    cert = tmp_path / "issued-cert.pub"
    cert.write_text(data["signed_key"])
    result = sshd.ssh(key, cert, TEST_USER)
    assert result.returncode == 0, result.stderr
    assert int(data["serial_number"], 16) == int(
        re.search(r"Serial: (\d+)", describe(cert)).group(1)  # type: ignore[union-attr]
    )


def _error(excinfo: pytest.ExceptionInfo[hvac.exceptions.VaultError]) -> str:
    return " ".join(excinfo.value.errors or [])


def test_bad_input_is_400(client: hvac.Client, mounts: dict[str, str], tmp_path: Path) -> None:
    mp = mounts["ed25519"]
    key = keygen(tmp_path, "k").with_suffix(".pub").read_text()
    ssh = client.secrets.ssh
    cases: list[tuple[dict[str, Any], str]] = [
        ({"public_key": "ssh-ed25519 AAAAbogus"}, "failed to parse public_key"),
        ({"public_key": "not a key"}, "failed to parse public_key"),
        ({"public_key": key, "valid_principals": "mallory"}, "mallory is not a valid value"),
        ({"public_key": key, "cert_type": "host"}, "cert_type 'host' is not allowed"),
        ({"public_key": key, "cert_type": "bogus"}, "either 'user' or 'host'"),
        ({"public_key": key, "ttl": "2h"}, "ttl is larger than maximum allowed 3600"),
        ({"public_key": key, "extensions": {"permit-X11-forwarding": ""}}, "not on allowed list"),
    ]
    for body, message in cases:
        with pytest.raises(hvac.exceptions.InvalidRequest) as info:
            ssh.sign_ssh_key("dev", mount_point=mp, **body)
        assert message in _error(info)
    with pytest.raises(hvac.exceptions.InvalidRequest) as info:
        ssh.sign_ssh_key("nope", public_key=key, mount_point=mp)
    assert "Unknown role" in _error(info)
    with pytest.raises(hvac.exceptions.InvalidRequest) as info:
        ssh.submit_ca_information(key_type="ed25519", mount_point=mp)
    assert "already configured" in _error(info)
    with pytest.raises(hvac.exceptions.InvalidRequest) as info:
        ssh.create_role("bad", key_type="bogus", mount_point=mp)
    assert "invalid key type" in _error(info)
    for signer in ("ssh-rsa", "rsa-sha2-384", "bogus"):
        with pytest.raises(hvac.exceptions.InvalidRequest) as info:
            ssh.create_role(
                "bad",
                key_type="ca",
                algorithm_signer=signer,
                mount_point=mp,
                allow_user_certificates=True,
            )
        assert "algorithm_signer" in _error(info)
    assert client.read(f"{mp}/roles/bad") is None


def test_roles_list_read_and_key_lengths(
    client: hvac.Client, mounts: dict[str, str], tmp_path: Path
) -> None:
    mp = mounts["ed25519"]
    ssh = client.secrets.ssh
    ssh.create_role(
        "strict",
        key_type="ca",
        allow_user_certificates=True,
        allowed_users="*",
        allowed_user_key_lengths={"rsa": [3072, 4096]},
        mount_point=mp,
    )
    role = ssh.read_role("strict", mount_point=mp)["data"]
    assert role["allowed_user_key_lengths"] == {"rsa": [3072, 4096]}
    assert role["key_type"] == "ca" and role["not_before_duration"] == 30
    listed = ssh.list_roles(mount_point=mp)["data"]
    assert {"dev", "strict"} <= set(listed["keys"])
    assert listed["key_info"]["strict"] == {"key_type": "ca"}
    ed = keygen(tmp_path, "ed").with_suffix(".pub").read_text()
    with pytest.raises(hvac.exceptions.InvalidRequest) as info:
        ssh.sign_ssh_key("strict", public_key=ed, valid_principals="x", mount_point=mp)
    assert "key of type ed25519 is not allowed" in _error(info)
    small = keygen(tmp_path, "small", "rsa", 2048).with_suffix(".pub").read_text()
    with pytest.raises(hvac.exceptions.InvalidRequest) as info:
        ssh.sign_ssh_key("strict", public_key=small, valid_principals="x", mount_point=mp)
    assert "invalid size: 2048" in _error(info)
    ok = keygen(tmp_path, "ok", "rsa", 3072).with_suffix(".pub").read_text()
    assert ssh.sign_ssh_key("strict", public_key=ok, valid_principals="x", mount_point=mp)


def test_host_certificates(client: hvac.Client, mounts: dict[str, str], tmp_path: Path) -> None:
    mp = mounts["ed25519"]
    ssh = client.secrets.ssh
    ssh.create_role(
        "hosts",
        key_type="ca",
        allow_host_certificates=True,
        allowed_domains="example.com",
        allow_subdomains=True,
        mount_point=mp,
    )
    key = keygen(tmp_path, "host").with_suffix(".pub").read_text()
    reply = ssh.sign_ssh_key(
        "hosts", public_key=key, cert_type="host", valid_principals="a.example.com", mount_point=mp
    )
    cert = tmp_path / "host-cert.pub"
    cert.write_text(reply["data"]["signed_key"])
    assert "host certificate" in describe(cert)
    for bad in ("example.com", "evil.com"):
        with pytest.raises(hvac.exceptions.InvalidRequest):
            ssh.sign_ssh_key(
                "hosts", public_key=key, cert_type="host", valid_principals=bad, mount_point=mp
            )


# ---- OTP mode ----------------------------------------------------------------------------


def test_otp_creds_and_verify(
    dev_server: ServerProcess, client: hvac.Client, mounts: dict[str, str]
) -> None:
    mp = mounts["ed25519"]
    ssh = client.secrets.ssh
    ssh.create_role(
        "otp", key_type="otp", default_user="bob", cidr_list="127.0.0.0/8", mount_point=mp
    )
    assert ssh.read_role("otp", mount_point=mp)["data"] == {
        "allowed_users": "",
        "cidr_list": "127.0.0.0/8",
        "default_user": "bob",
        "exclude_cidr_list": "",
        "key_type": "otp",
        "port": 22,
    }
    creds = ssh.generate_ssh_credentials("otp", ip="127.0.0.1", mount_point=mp)
    assert creds["lease_id"].startswith(f"{mp}/creds/otp/")
    data = creds["data"]
    assert data["key_type"] == "otp" and data["username"] == "bob" and data["port"] == 22
    anonymous = dev_server.client()
    verified = anonymous.secrets.ssh.verify_ssh_otp(data["key"], mount_point=mp)["data"]
    assert verified == {"ip": "127.0.0.1", "role_name": "otp", "username": "bob"}
    with pytest.raises(hvac.exceptions.InvalidRequest, match="OTP not found"):
        anonymous.secrets.ssh.verify_ssh_otp(data["key"], mount_point=mp)
    echo = anonymous.secrets.ssh.verify_ssh_otp("verify-echo-request", mount_point=mp)
    assert echo["data"] == {"message": "verify-echo-response"}

    with pytest.raises(hvac.exceptions.InvalidRequest, match="IP does not belong to role"):
        ssh.generate_ssh_credentials("otp", ip="10.0.0.1", mount_point=mp)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="allowed users list"):
        ssh.generate_ssh_credentials("otp", username="eve", ip="127.0.0.1", mount_point=mp)
    # zero-address roles cover any IP
    ssh.configure_zeroaddress_roles("otp", mount_point=mp)
    assert ssh.list_zeroaddress_roles(mount_point=mp)["data"] == {"roles": ["otp"]}
    assert ssh.generate_ssh_credentials("otp", ip="10.0.0.1", mount_point=mp)
    assert client.write(f"{mp}/lookup", ip="10.0.0.1")["data"] == {"roles": ["otp"]}
    ssh.delete_zeroaddress_role(mount_point=mp)

    # revoking the lease deletes the OTP
    creds = ssh.generate_ssh_credentials("otp", ip="127.0.0.2", mount_point=mp)
    client.sys.revoke_lease(creds["lease_id"])
    with pytest.raises(hvac.exceptions.InvalidRequest, match="OTP not found"):
        anonymous.secrets.ssh.verify_ssh_otp(creds["data"]["key"], mount_point=mp)


@pytest.mark.parametrize("round_", range(10))
def test_otp_verify_burst_exactly_one(
    dev_server: ServerProcess, client: hvac.Client, mounts: dict[str, str], round_: int
) -> None:
    mp = mounts["ed25519"]
    client.secrets.ssh.create_role(
        "burst", key_type="otp", default_user="bob", cidr_list="127.0.0.0/8", mount_point=mp
    )
    otp = client.secrets.ssh.generate_ssh_credentials("burst", ip="127.0.0.1", mount_point=mp)[
        "data"
    ]["key"]

    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=dev_server.addr, timeout=30) as http:
            replies = await asyncio.gather(
                *(http.post(f"/v1/{mp}/verify", json={"otp": otp}) for _ in range(20))
            )
        return [r.status_code for r in replies]

    codes = asyncio.run(burst())
    assert codes.count(200) == 1 and codes.count(400) == 19


def test_imported_ca_and_critical_options(
    client: hvac.Client, tmp_path: Path, dev_server: ServerProcess
) -> None:
    mp = f"ssh-imp-{uuid.uuid4().hex[:6]}"
    client.sys.enable_secrets_engine("ssh", path=mp)
    try:
        ssh = client.secrets.ssh
        ca = keygen(tmp_path, "ca")
        other = keygen(tmp_path, "other")
        with pytest.raises(hvac.exceptions.InvalidRequest, match="does not match"):
            ssh.submit_ca_information(
                private_key=ca.read_text(),
                public_key=other.with_suffix(".pub").read_text(),
                generate_signing_key=False,
                mount_point=mp,
            )
        with pytest.raises(hvac.exceptions.InvalidRequest, match="missing private_key"):
            ssh.submit_ca_information(
                public_key=ca.with_suffix(".pub").read_text(),
                generate_signing_key=False,
                mount_point=mp,
            )
        reply = ssh.submit_ca_information(
            private_key=ca.read_text(),
            public_key=ca.with_suffix(".pub").read_text(),
            generate_signing_key=False,
            mount_point=mp,
        )
        assert reply.status_code == 204
        published = httpx.get(f"{dev_server.addr}/v1/{mp}/public_key", timeout=10).text
        assert published.split()[:2] == ca.with_suffix(".pub").read_text().split()[:2]
        ssh.create_role(
            "forced",
            key_type="ca",
            allow_user_certificates=True,
            allowed_users="bob",
            allowed_critical_options="force-command",
            allow_user_key_ids=True,
            mount_point=mp,
        )
        key = keygen(tmp_path, "user")
        signed = ssh.sign_ssh_key(
            "forced",
            public_key=key.with_suffix(".pub").read_text(),
            valid_principals="bob",
            key_id="my-id",
            critical_options={"force-command": "echo forced"},
            mount_point=mp,
        )["data"]["signed_key"]
        cert = tmp_path / "user-cert.pub"
        cert.write_text(signed)
        text = describe(cert)
        fingerprint = subprocess.run(
            ["ssh-keygen", "-l", "-f", str(ca.with_suffix(".pub"))],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()[1]
        assert f"Signing CA: ED25519 {fingerprint}" in text
        assert 'Key ID: "my-id"' in text
        assert re.search(r"force-command echo forced", text)
        with pytest.raises(hvac.exceptions.InvalidRequest, match="critical options not on"):
            ssh.sign_ssh_key(
                "forced",
                public_key=key.with_suffix(".pub").read_text(),
                valid_principals="bob",
                critical_options={"source-address": "10.0.0.0/8"},
                mount_point=mp,
            )
        client.secrets.ssh.delete_ca_information(mount_point=mp)
        assert httpx.get(f"{dev_server.addr}/v1/{mp}/public_key", timeout=10).status_code == 400
    finally:
        client.sys.disable_secrets_engine(mp)


def test_allowed_users_template(
    dev_server: ServerProcess, client: hvac.Client, mounts: dict[str, str], tmp_path: Path
) -> None:
    mp = mounts["ed25519"]
    auth = f"up-ssh-{uuid.uuid4().hex[:6]}"
    client.sys.enable_auth_method("userpass", path=auth)
    try:
        client.sys.create_or_update_policy(
            f"ssh-{auth}", f'path "{mp}/sign/templated" {{ capabilities = ["update"] }}'
        )
        client.auth.userpass.create_or_update_user(
            "zoe", "pw", policies=[f"ssh-{auth}"], mount_point=auth
        )
        user = dev_server.client()
        user.auth.userpass.login("zoe", "pw", mount_point=auth)
        entity_id = user.auth.token.lookup_self()["data"]["entity_id"]
        assert entity_id
        client.secrets.ssh.create_role(
            "templated",
            key_type="ca",
            allow_user_certificates=True,
            allowed_users="u-{{identity.entity.id}},ops",
            allowed_users_template=True,
            mount_point=mp,
        )
        key = keygen(tmp_path, "zoe").with_suffix(".pub").read_text()
        signed = user.secrets.ssh.sign_ssh_key(
            "templated", public_key=key, valid_principals=f"u-{entity_id}", mount_point=mp
        )["data"]["signed_key"]
        cert = tmp_path / "zoe-cert.pub"
        cert.write_text(signed)
        assert f"u-{entity_id}" in describe(cert)
        with pytest.raises(hvac.exceptions.InvalidRequest, match="not a valid value"):
            user.secrets.ssh.sign_ssh_key(
                "templated", public_key=key, valid_principals="u-someone-else", mount_point=mp
            )
        # Vault's other selectors, filled by the ACL templating: the entity's name and
        # metadata, its alias on a mount (by accessor), default_user too
        accessor = client.sys.list_auth_methods()["data"][f"{auth}/"]["accessor"]
        client.write(f"identity/entity/id/{entity_id}", metadata={"unix": "zoe-ops"})
        entity_name = client.read(f"identity/entity/id/{entity_id}")["data"]["name"]
        client.write(
            f"{mp}/roles/templated",
            key_type="ca",
            allow_user_certificates=True,
            allowed_users=(
                "n-{{identity.entity.name}},{{identity.entity.metadata.unix}},"
                f"a-{{{{identity.entity.aliases.{accessor}.name}}}},"
                "{{identity.entity.metadata.missing}}"
            ),
            allowed_users_template=True,
            default_user=f"a-{{{{identity.entity.aliases.{accessor}.name}}}}",
            default_user_template=True,
        )
        for principal in (f"n-{entity_name}", "zoe-ops", "a-zoe"):
            signed = user.secrets.ssh.sign_ssh_key(
                "templated", public_key=key, valid_principals=principal, mount_point=mp
            )["data"]["signed_key"]
            cert.write_text(signed)
            assert principal in describe(cert)
        signed = user.secrets.ssh.sign_ssh_key("templated", public_key=key, mount_point=mp)
        cert.write_text(signed["data"]["signed_key"])
        principals = re.search(r"Principals:\s*\n((?:\s{16}.*\n)+)", describe(cert))
        assert principals is not None and principals.group(1).split() == ["a-zoe"]
        # an unfilled placeholder allows nothing (not "" and not the literal text)
        for refused in ("{{identity.entity.metadata.missing}}", "u-someone-else"):
            with pytest.raises(hvac.exceptions.InvalidRequest):
                user.secrets.ssh.sign_ssh_key(
                    "templated", public_key=key, valid_principals=refused, mount_point=mp
                )
        # a value that could widen the match counts as missing
        client.write(f"identity/entity/id/{entity_id}", metadata={"unix": "*"})
        with pytest.raises(hvac.exceptions.InvalidRequest, match="not a valid value"):
            user.secrets.ssh.sign_ssh_key(
                "templated", public_key=key, valid_principals="*", mount_point=mp
            )
        # a selector that is not an identity one is refused when the role is written
        with pytest.raises(hvac.exceptions.InvalidRequest, match="not supported"):
            client.secrets.ssh.create_role(
                "badtemplate",
                key_type="ca",
                allow_user_certificates=True,
                allowed_users="{{token.display_name}}",
                allowed_users_template=True,
                mount_point=mp,
            )
    finally:
        client.sys.disable_auth_method(auth)


def test_key_id_format_not_before_and_default_options(
    client: hvac.Client, mounts: dict[str, str], tmp_path: Path
) -> None:
    mp = mounts["ed25519"]
    client.write(
        f"{mp}/roles/formatted",
        key_type="ca",
        allow_user_certificates=True,
        allowed_users="*",
        key_id_format="custom-{{role_name}}-{{token_display_name}}",
        not_before_duration="5m",
        ttl="10m",
        default_critical_options={"source-address": "127.0.0.0/8"},
    )
    key = keygen(tmp_path, "fmt")
    before = int(time.time())
    signed = client.write(
        f"{mp}/sign/formatted",
        public_key=key.with_suffix(".pub").read_text(),
        valid_principals="alice,bob",
    )["data"]["signed_key"]
    cert = tmp_path / "fmt-cert.pub"
    cert.write_text(signed)
    text = describe(cert)
    assert 'Key ID: "custom-formatted-root"' in text
    assert "source-address 127.0.0.0/8" in text
    principals = re.search(r"Principals:\s*\n((?:\s{16}.*\n)+)", text)
    assert principals is not None and principals.group(1).split() == ["alice", "bob"]
    valid = re.search(r"Valid: from (\S+) to (\S+)", text)
    assert valid is not None
    start = time.mktime(time.strptime(valid.group(1), "%Y-%m-%dT%H:%M:%S"))
    end = time.mktime(time.strptime(valid.group(2), "%Y-%m-%dT%H:%M:%S"))
    assert end - start == 600 + 300
    assert before - 301 <= start <= before - 299 + 5
