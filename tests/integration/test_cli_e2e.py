"""The ``strongroom`` CLI end to end, against real servers over HTTP.

Most invocations call :func:`strongroom.cli.main.run` in process (the same code path as the
console script, with the environment and streams injected); a few run ``python -m
strongroom.cli`` as a child process to check real exit codes and environment handling.
The dev server is shared by the session, so every test works under its own names.
"""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from strongroom.cli.main import run
from tests.serverproc import ServerProcess


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def ok(self) -> Result:
        assert self.code == 0, self
        return self


class CLI:
    """Invoke the CLI with a fixed environment (overridable per call)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)

    def __call__(self, *argv: str, stdin: str = "", **env: str) -> Result:
        merged = {**self.env, **env}
        merged = {k: v for k, v in merged.items() if v}  # an empty override unsets
        out, err = io.StringIO(), io.StringIO()
        code = run(list(argv), merged, out, err, stdin=io.StringIO(stdin))
        return Result(code, out.getvalue(), err.getvalue())


def _unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def cli(dev_server: ServerProcess, home: Path) -> CLI:
    return CLI(
        {
            "STRONGROOM_ADDR": dev_server.addr,
            "STRONGROOM_TOKEN": dev_server.root_token,
            "HOME": str(home),
        }
    )


# -- status and login ----------------------------------------------------------------------------


def test_status(cli: CLI) -> None:
    result = cli("status").ok()
    assert "Sealed          false" in result.out
    assert "Initialized     true" in result.out
    status = cli("status", "-format=json").ok().json()
    assert status["sealed"] is False and status["initialized"] is True
    assert status["storage_type"] == "sqlite"


def test_login_stores_token_in_private_helper_file(
    dev_server: ServerProcess, cli: CLI, home: Path
) -> None:
    helper = home / ".vault-token"  # Vault's token helper file
    result = cli("login", dev_server.root_token, STRONGROOM_TOKEN="")
    assert result.code == 0, result
    assert "Success! You are now authenticated" in result.out
    assert stat.S_IMODE(helper.stat().st_mode) == 0o600
    assert helper.read_text().strip() == dev_server.root_token
    assert [p.name for p in home.iterdir()] == [".vault-token"]  # no temp file left
    # later commands use the stored token
    assert cli("token", "lookup", "-field=policies", STRONGROOM_TOKEN="").ok().out == "[root]\n"
    # a bad token is refused and does not replace the stored one
    bad = cli("login", "hvs.not-a-token", STRONGROOM_TOKEN="")
    assert bad.code == 2 and "permission denied" in bad.err
    assert helper.read_text().strip() == dev_server.root_token
    # -token-only prints just the token; -no-store leaves the file alone
    assert cli("login", "-token-only", dev_server.root_token).ok().out.strip() == (
        dev_server.root_token
    )
    helper.unlink()
    cli("login", "-no-store", dev_server.root_token, STRONGROOM_TOKEN="").ok()
    assert not helper.exists()
    # the file older Strongroom releases wrote is read too
    (home / ".strongroom-token").write_text(dev_server.root_token)
    assert cli("token", "lookup", "-field=policies", STRONGROOM_TOKEN="").ok().out == "[root]\n"
    (home / ".strongroom-token").unlink()
    missing = cli("token", "lookup", STRONGROOM_TOKEN="")
    assert missing.code == 2 and "403" in missing.err


def test_login_token_from_stdin(dev_server: ServerProcess, cli: CLI, home: Path) -> None:
    cli("login", "-", stdin=dev_server.root_token + "\n", STRONGROOM_TOKEN="").ok()
    assert (home / ".vault-token").read_text().strip() == dev_server.root_token


# -- kv ------------------------------------------------------------------------------------------


def test_kv_v2_lifecycle(cli: CLI) -> None:
    path = f"secret/{_unique('app')}"
    written = cli("kv", "put", path, "password=s3cret", "user=bob").ok()
    assert "version            1" in written.out
    got = cli("kv", "get", path).ok()
    assert "password    s3cret" in got.out and f"{path.replace('/', '/data/', 1)}" in got.out
    assert cli("kv", "get", "-field=password", path).ok().out == "s3cret\n"
    document = cli("kv", "get", "-format=json", path).ok().json()
    assert document["data"]["data"] == {"password": "s3cret", "user": "bob"}
    assert document["data"]["metadata"]["version"] == 1
    mount, name = path.split("/", 1)
    assert cli("kv", "get", f"-mount={mount}", "-field=user", name).ok().out == "bob\n"
    # patch merges; the old version stays readable
    cli("kv", "patch", path, "extra=1").ok()
    latest = cli("kv", "get", "-format=json", path).ok().json()["data"]
    assert latest["data"] == {"password": "s3cret", "user": "bob", "extra": "1"}
    assert latest["metadata"]["version"] == 2
    assert cli("kv", "get", "-version=1", "-field=extra", path).code == 1  # no such field
    assert cli("kv", "get", "-version=1", "-field=user", path).ok().out == "bob\n"
    cli("kv", "patch", "-method=rw", path, "-remove-data=extra").ok()
    assert "extra" not in cli("kv", "get", "-format=json", path).ok().json()["data"]["data"]
    # check-and-set
    cas = cli("kv", "put", "-cas=1", path, "a=b")
    assert cas.code == 2 and "check-and-set" in cas.err
    # list and metadata
    parent = path.rsplit("/", 1)[0]
    assert name in cli("kv", "list", "-format=json", parent).ok().json()
    assert name in cli("kv", "list", parent).ok().out.split()
    cli("kv", "metadata", "put", "-max-versions=5", "-custom-metadata=team=a", path).ok()
    meta = cli("kv", "metadata", "get", "-format=json", path).ok().json()["data"]
    assert meta["max_versions"] == 5 and meta["current_version"] == 3
    assert meta["custom_metadata"] == {"team": "a"}
    assert "===== Version 3 =====" in cli("kv", "metadata", "get", path).ok().out
    # delete, undelete, destroy
    cli("kv", "delete", path).ok()
    deleted = cli("kv", "get", "-format=json", path).ok().json()["data"]
    assert deleted["data"] is None and deleted["metadata"]["deletion_time"]
    cli("kv", "undelete", "-versions=3", path).ok()
    assert cli("kv", "get", "-field=user", path).ok().out == "bob\n"
    cli("kv", "destroy", "-versions=3", path).ok()
    destroyed = cli("kv", "get", "-format=json", path).ok().json()["data"]
    assert destroyed["data"] is None and destroyed["metadata"]["destroyed"] is True
    assert cli("kv", "get", "-field=user", path).code == 2
    cli("kv", "delete", "-versions=1", path).ok()
    assert cli("kv", "get", "-version=1", "-field=user", path).code == 2
    cli("kv", "metadata", "delete", path).ok()
    gone = cli("kv", "get", path)
    assert gone.code == 2 and "No value found" in gone.err
    assert cli("kv", "undelete", path).code == 1  # -versions is required


def test_kv_v1_mount(cli: CLI) -> None:
    mount = _unique("kv1")
    enabled = cli("secrets", "enable", f"-path={mount}", "-description=v1 store", "kv").ok()
    assert f"at: {mount}/" in enabled.out
    cli("kv", "put", f"{mount}/team/db", "password=pw1").ok()
    assert cli("kv", "get", "-field=password", f"{mount}/team/db").ok().out == "pw1\n"
    document = cli("kv", "get", "-format=json", f"{mount}/team/db").ok().json()
    assert document["data"] == {"password": "pw1"}
    assert "db" in cli("kv", "list", f"{mount}/team").ok().out.split()
    assert cli("kv", "metadata", "get", f"{mount}/team/db").code == 1
    assert cli("kv", "undelete", "-versions=1", f"{mount}/team/db").code == 1
    assert cli("kv", "patch", f"{mount}/team/db", "a=b").code == 2
    cli("kv", "delete", f"{mount}/team/db").ok()
    assert cli("kv", "get", f"{mount}/team/db").code == 2
    cli("secrets", "disable", mount).ok()


def test_kv_put_from_stdin_and_files(cli: CLI, tmp_path: Path) -> None:
    path = f"secret/{_unique('stdin')}"
    cli("kv", "put", path, "-", stdin='{"a": "1", "b": {"c": true}}').ok()
    assert cli("kv", "get", "-format=json", path).ok().json()["data"]["data"] == {
        "a": "1",
        "b": {"c": True},
    }
    value = tmp_path / "value.txt"
    value.write_text("from-a-file")
    cli("kv", "put", path, f"cert=@{value}").ok()
    assert cli("kv", "get", "-field=cert", path).ok().out == "from-a-file\n"
    cli("kv", "metadata", "delete", path).ok()


# -- policies ------------------------------------------------------------------------------------

POLICY = """path "secret/data/app/*" {
capabilities=["read","list"]
}
# the metadata, for listing
path   "secret/metadata/*"   { capabilities = ["list"] }
"""


def test_policy_commands(cli: CLI, tmp_path: Path) -> None:
    name = _unique("reader")
    policy_file = tmp_path / "reader.hcl"
    policy_file.write_text(POLICY)
    cli("policy", "fmt", str(policy_file)).ok()
    formatted = policy_file.read_text()
    assert '  capabilities = ["read", "list"]' in formatted
    assert "# the metadata, for listing" in formatted
    assert cli("policy", "fmt", str(policy_file)).ok()  # idempotent
    assert policy_file.read_text() == formatted
    bad = tmp_path / "bad.hcl"
    bad.write_text('nonsense "x" { }\n')
    assert cli("policy", "fmt", str(bad)).code == 1
    written = cli("policy", "write", name.upper(), str(policy_file)).ok()
    assert f"Uploaded policy: {name}" in written.out  # names are lowercased
    assert cli("policy", "read", name).ok().out == formatted
    assert name in cli("policy", "list").ok().out.split()
    assert name in cli("policy", "list", "-format=json").ok().json()
    cli("policy", "write", name, "-", stdin='path "x/*" { capabilities = ["read"] }\n').ok()
    read = cli("policy", "read", "-format=json", name).ok().json()
    assert read["data"]["policy"] == 'path "x/*" { capabilities = ["read"] }\n'
    cli("policy", "delete", name).ok()
    missing = cli("policy", "read", name)
    assert missing.code == 2 and "No policy named" in missing.err
    invalid = cli("policy", "write", name, "-", stdin="path {")
    assert invalid.code == 2


# -- tokens --------------------------------------------------------------------------------------


def test_token_commands(cli: CLI) -> None:
    policy = _unique("tok")
    cli("policy", "write", policy, "-", stdin=POLICY).ok()
    created = cli(
        "token", "create", f"-policy={policy}", "-ttl=1h", "-display-name=e2e", "-format=json"
    ).ok()
    auth = created.json()["auth"]
    token, accessor = auth["client_token"], auth["accessor"]
    assert auth["policies"] == ["default", policy] and auth["lease_duration"] == 3600
    only = cli("token", "create", "-policy=default", "-field=token").ok().out.strip()
    assert only.startswith("hvs.")
    looked = cli("token", "lookup", "-format=json", token).ok().json()["data"]
    assert looked["accessor"] == accessor and looked["display_name"] == "token-e2e"
    by_accessor = cli("token", "lookup", "-accessor", "-format=json", accessor).ok().json()
    assert by_accessor["data"]["id"] == ""  # an accessor never reveals the token
    assert cli("token", "lookup", "-field=policies", STRONGROOM_TOKEN=token).ok().out == (
        f"[default {policy}]\n"
    )
    renewed = cli("token", "renew", "-increment=30m", "-format=json", token).ok().json()
    assert renewed["auth"]["lease_duration"] == 1800
    assert cli("token", "renew", "-field=token_duration", STRONGROOM_TOKEN=token).ok()
    caps = cli("token", "capabilities", token, "secret/data/app/x").ok()
    assert caps.out == "list, read\n"
    assert cli("token", "capabilities", token, "sys/mounts").ok().out == "deny\n"
    own = cli("token", "capabilities", "secret/data/app/x", STRONGROOM_TOKEN=token).ok()
    assert own.out == "list, read\n"
    assert cli("token", "capabilities", "-format=json", token, "secret/data/app/x").ok().json() == [
        "list",
        "read",
    ]
    cli("token", "revoke", token).ok()
    revoked = cli("token", "lookup", token)
    assert revoked.code == 2
    only_accessor = cli("token", "lookup", "-field=accessor", only).ok().out.strip()
    cli("token", "revoke", "-accessor", only_accessor).ok()
    assert cli("token", "lookup", only).code == 2
    self_token = cli("token", "create", "-field=token").ok().out.strip()
    cli("token", "revoke", "-self", STRONGROOM_TOKEN=self_token).ok()
    assert cli("token", "lookup", self_token).code == 2
    cli("policy", "delete", policy).ok()


# -- mounts --------------------------------------------------------------------------------------


def test_secrets_commands(cli: CLI) -> None:
    path, moved = _unique("eng"), _unique("moved")
    cli("secrets", "enable", f"-path={path}", "-version=2", "-description=e2e engine", "kv").ok()
    listed = cli("secrets", "list").ok()
    assert any(
        line.startswith(f"{path}/ ") and "e2e engine" in line for line in listed.out.split("\n")
    )
    mounts = cli("secrets", "list", "-format=json").ok().json()
    assert mounts[f"{path}/"]["type"] == "kv"
    assert mounts[f"{path}/"]["options"] == {"version": "2"}
    cli(
        "secrets", "tune", "-default-lease-ttl=1h", "-max-lease-ttl=2h", "-description=t", path
    ).ok()
    tuned = cli("secrets", "list", "-format=json").ok().json()[f"{path}/"]
    assert tuned["config"]["default_lease_ttl"] == 3600
    assert tuned["config"]["max_lease_ttl"] == 7200
    assert tuned["description"] == "t"
    assert f"{path}/" in cli("secrets", "list", "-detailed").ok().out
    cli("kv", "put", f"{path}/k", "v=1").ok()
    assert cli("secrets", "move", path, moved).ok().out
    after = cli("secrets", "list", "-format=json").ok().json()
    assert f"{path}/" not in after and f"{moved}/" in after
    assert cli("kv", "get", "-field=v", f"{moved}/k").ok().out == "1\n"
    duplicate = cli("secrets", "enable", f"-path={moved}", "kv")
    assert duplicate.code == 2
    cli("secrets", "disable", moved).ok()
    assert f"{moved}/" not in cli("secrets", "list", "-format=json").ok().json()
    assert cli("secrets", "enable", "-path=x", "no-such-engine").code == 2


# -- operator key-status / rotate ----------------------------------------------------------------


def test_key_status_and_rotate(cli: CLI) -> None:
    before = cli("operator", "key-status", "-format=json").ok().json()
    term = before["data"]["term"] if "data" in before else before["term"]
    assert "Key Term" in cli("operator", "key-status").ok().out
    rotated = cli("operator", "rotate").ok()
    assert "Success! Rotated key" in rotated.out
    after = cli("operator", "key-status", "-format=json").ok().json()
    assert (after["data"]["term"] if "data" in after else after["term"]) == term + 1
    # data written before the rotation still reads
    path = f"secret/{_unique('rot')}"
    cli("kv", "put", path, "a=1").ok()
    cli("operator", "rotate").ok()
    assert cli("kv", "get", "-field=a", path).ok().out == "1\n"


# -- generic read / write / list / delete --------------------------------------------------------


def test_generic_commands(cli: CLI) -> None:
    name = _unique("gen")
    written = cli("write", f"secret/data/{name}", "-", stdin='{"data": {"k": "v"}}').ok()
    assert "version" in written.out
    assert cli("read", "-field=data", f"secret/data/{name}").ok().out == "map[k:v]\n"
    document = cli("read", "-format=json", f"secret/data/{name}").ok().json()
    assert document["data"]["data"] == {"k": "v"}
    assert cli("read", f"secret/data/{name}", "version=1").ok()
    assert f"{name}" in cli("list", "secret/metadata").ok().out.split()
    assert name in cli("list", "-format=json", "secret/metadata/").ok().json()
    cli("write", f"sys/policies/acl/{name}", 'policy=path "a" { capabilities = ["read"] }').ok()
    assert "capabilities" in cli("read", "-field=policy", f"sys/policies/acl/{name}").ok().out
    cli("delete", f"sys/policies/acl/{name}").ok()
    cli("delete", f"secret/metadata/{name}").ok()
    missing = cli("read", f"secret/data/{name}")
    assert missing.code == 2 and "No value found" in missing.err
    assert cli("list", f"secret/metadata/{name}-nothing").code == 2
    assert cli("write", f"secret/data/{name}").code == 1  # no data and no -force
    bad = cli("write", f"secret/data/{name}", "data=not-an-object")
    assert bad.code == 2 and "Code: 400" in bad.err


# -- exit codes and environment ------------------------------------------------------------------


def test_exit_codes(cli: CLI) -> None:
    limited = cli("token", "create", "-policy=default", "-field=token").ok().out.strip()
    denied = cli("read", "sys/mounts", STRONGROOM_TOKEN=limited)
    assert denied.code == 2 and "Code: 403" in denied.err and "permission denied" in denied.err
    assert cli("secrets", "list", STRONGROOM_TOKEN=limited).code == 2
    assert cli("kv", "get").code == 1  # usage
    usage = cli("kv", "get", "-no-such-flag", "secret/x")
    assert usage.code == 1 and "flag provided but not defined" in usage.err
    assert cli("no-such-command").code == 1
    assert cli("kv", "get", f"secret/{_unique('missing')}").code == 2
    assert cli("read", "-format=yamlish", "secret/data/x").code == 1
    unreachable = cli("kv", "get", "secret/x", STRONGROOM_ADDR="http://127.0.0.1:1")
    assert unreachable.code == 2 and "ConnectError" in unreachable.err
    assert cli("status", STRONGROOM_ADDR="http://127.0.0.1:1").code == 1
    assert cli("token", "lookup", "hvs.nope").code == 2
    assert cli("kv", "-h").code == 0
    assert cli("kv", "get", "-h").ok().out.startswith("Usage: strongroom kv get")


def test_kv_with_a_narrow_policy(cli: CLI) -> None:
    policy = _unique("narrow")
    cli("policy", "write", policy, "-", stdin=POLICY).ok()
    path = f"secret/app/{_unique('x')}"
    cli("kv", "put", path, "k=v").ok()
    token = cli("token", "create", f"-policy={policy}", "-field=token").ok().out.strip()
    assert cli("kv", "get", "-field=k", path, STRONGROOM_TOKEN=token).ok().out == "v\n"


def test_vault_environment_fallback(dev_server: ServerProcess, cli: CLI) -> None:
    vault_only = {
        "STRONGROOM_ADDR": "",
        "STRONGROOM_TOKEN": "",
        "VAULT_ADDR": dev_server.addr,
        "VAULT_TOKEN": dev_server.root_token,
    }
    assert cli("token", "lookup", "-field=policies", **vault_only).ok().out == "[root]\n"
    # STRONGROOM_* wins over VAULT_*
    assert cli(
        "token",
        "lookup",
        "-field=policies",
        VAULT_ADDR="http://127.0.0.1:1",
        VAULT_TOKEN="hvs.wrong",
    ).ok()
    # -address wins over both
    assert cli("status", f"-address={dev_server.addr}", STRONGROOM_ADDR="http://127.0.0.1:1").ok()
    assert cli("status", "-format=json", VAULT_FORMAT="yaml").ok().json()["sealed"] is False
    assert cli("status", STRONGROOM_FORMAT="json").ok().json()["sealed"] is False


def _child(env: Mapping[str, str], *argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "STRONGROOM_"))}
    return subprocess.run(
        [sys.executable, "-m", "strongroom.cli", *argv],
        env={**clean, **env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_module_entry_point(dev_server: ServerProcess, home: Path) -> None:
    env = {"VAULT_ADDR": dev_server.addr, "VAULT_TOKEN": dev_server.root_token, "HOME": str(home)}
    path = f"secret/{_unique('proc')}"
    assert _child(env, "kv", "put", path, "answer=42").returncode == 0
    got = _child(env, "kv", "get", "-field=answer", path)
    assert got.returncode == 0 and got.stdout == "42\n"
    assert _child(env, "kv", "get", f"{path}-missing").returncode == 2
    assert _child(env, "kv", "get").returncode == 1
    denied = _child({**env, "VAULT_TOKEN": "hvs.invalid"}, "kv", "get", path)
    assert denied.returncode == 2 and "403" in denied.stderr
    assert _child(env, "status").returncode == 0
    assert _child(env, "version").stdout.startswith("Strongroom v")


# -- operator flows on a fresh, sealed server ----------------------------------------------------


@pytest.fixture
def fresh_cli(fresh_server: ServerProcess, home: Path) -> CLI:
    return CLI({"STRONGROOM_ADDR": fresh_server.addr, "HOME": str(home)})


def test_init_unseal_seal(fresh_cli: CLI) -> None:
    cli = fresh_cli
    assert cli("operator", "init", "-status").code == 2
    status = cli("status")
    assert status.code == 2 and "Initialized        false" in status.out
    assert cli("operator", "init", "-key-shares=2", "-key-threshold=3").code == 1
    init = cli("operator", "init", "-key-shares=3", "-key-threshold=2", "-format=json").ok().json()
    assert len(init["unseal_keys_b64"]) == 3 and len(init["unseal_keys_hex"]) == 3
    assert init["unseal_threshold"] == 2 and init["root_token"].startswith("hvs.")
    assert cli("operator", "init", "-status").ok().out.startswith("Strongroom is initialized")
    assert cli("operator", "init", "-key-shares=1", "-key-threshold=1").code == 2  # again
    first = cli("operator", "unseal", init["unseal_keys_b64"][0]).ok()
    assert "Unseal Progress    1/2" in first.out
    assert cli("operator", "unseal", "-reset").ok()
    assert "Unseal Progress    0/2" in cli("status").out
    cli("operator", "unseal", init["unseal_keys_b64"][0]).ok()
    assert cli("operator", "unseal", "not-a-key").code == 2
    cli("operator", "unseal", init["unseal_keys_b64"][0]).ok()
    done = cli("operator", "unseal", "-", stdin=init["unseal_keys_hex"][2] + "\n").ok()
    assert "Sealed          false" in done.out
    assert cli("status").code == 0
    token = init["root_token"]
    sealed_by_nobody = cli("operator", "seal", STRONGROOM_TOKEN="hvs.nobody")
    assert sealed_by_nobody.code == 2
    assert "Success! Strongroom is sealed." in cli("operator", "seal", STRONGROOM_TOKEN=token).out
    assert cli("status").code == 2
    assert cli("kv", "get", "secret/x", STRONGROOM_TOKEN=token).code == 2


def _init_and_unseal(cli: CLI, shares: int = 3, threshold: int = 2) -> dict[str, Any]:
    init = cli(
        "operator", "init", f"-key-shares={shares}", f"-key-threshold={threshold}", "-format=json"
    ).ok()
    result: dict[str, Any] = init.json()
    for key in result["unseal_keys_b64"][:threshold]:
        cli("operator", "unseal", key).ok()
    cli.env["STRONGROOM_TOKEN"] = result["root_token"]
    return result


def test_generate_root_with_server_otp(fresh_cli: CLI) -> None:
    cli = fresh_cli
    init = _init_and_unseal(cli)
    keys = init["unseal_keys_b64"]
    assert cli("operator", "generate-root", keys[0]).code == 1  # nothing in progress
    started = cli("operator", "generate-root", "-init", "-format=json").ok().json()
    otp = started["otp"]
    assert started["started"] is True and len(otp) == started["otp_length"] == 28
    status = cli("operator", "generate-root", "-status", "-format=json").ok().json()
    assert status["otp"] == "" and status["progress"] == 0  # the OTP is shown once only
    cli("operator", "generate-root", keys[0]).ok()
    done = cli("operator", "generate-root", "-format=json", "-", stdin=keys[1]).ok().json()
    assert done["complete"] is True
    decoded = cli("operator", "generate-root", f"-decode={done['encoded_token']}", f"-otp={otp}")
    new_root = decoded.ok().out.strip()
    assert new_root.startswith("hvs.") and new_root != init["root_token"]
    policies = cli("token", "lookup", "-field=policies", STRONGROOM_TOKEN=new_root).ok()
    assert policies.out == "[root]\n"
    assert cli("operator", "generate-root", "-decode=abc").code == 1  # -otp is required
    # cancel
    cli("operator", "generate-root", "-init").ok()
    cli("operator", "generate-root", "-cancel").ok()
    assert cli("operator", "generate-root", "-status", "-format=json").json()["started"] is False


def test_generate_root_with_operator_otp(fresh_cli: CLI) -> None:
    cli = fresh_cli
    keys = _init_and_unseal(cli)["unseal_keys_b64"]
    otp = cli("operator", "generate-root", "-generate-otp").ok().out.strip()
    assert len(otp) == 28
    cli("operator", "generate-root", "-init", f"-otp={otp}").ok()
    cli("operator", "generate-root", keys[0]).ok()
    done = cli("operator", "generate-root", "-format=json", keys[1]).ok().json()
    decoded = cli("operator", "generate-root", f"-decode={done['encoded_token']}", f"-otp={otp}")
    new_root = decoded.ok().out.strip()
    assert new_root.startswith("hvs.")
    assert cli("token", "lookup", "-field=policies", STRONGROOM_TOKEN=new_root).ok()


def test_rekey(fresh_cli: CLI) -> None:
    cli = fresh_cli
    keys = _init_and_unseal(cli)["unseal_keys_b64"]
    started = cli("operator", "rekey", "-init", "-key-shares=1", "-key-threshold=1").ok()
    assert "Rekey Progress           0/2" in started.out
    assert "Started                  true" in cli("operator", "rekey", "-status").ok().out
    cli("operator", "rekey", keys[0]).ok()
    done = cli("operator", "rekey", "-format=json", keys[2]).ok().json()
    assert done["complete"] is True and len(done["keys_base64"]) == 1
    new_key = done["keys_base64"][0]
    token = cli.env["STRONGROOM_TOKEN"]
    cli("operator", "seal").ok()
    assert cli("operator", "unseal", keys[0]).code == 2  # the old shares are void
    assert "Sealed          false" in cli("operator", "unseal", new_key).ok().out
    # rekey with verification: the new shares prove themselves before they count
    cli.env["STRONGROOM_TOKEN"] = token
    cli("operator", "rekey", "-init", "-key-shares=3", "-key-threshold=2", "-verify").ok()
    issued = cli("operator", "rekey", "-format=json", new_key).ok().json()
    assert issued["verification_required"] is True
    fresh = issued["keys_base64"]
    verifying = cli("operator", "rekey", "-verify", "-status").ok()
    assert "Verification Progress    0/2" in verifying.out
    cli("operator", "rekey", "-verify", fresh[0]).ok()
    verified = cli("operator", "rekey", "-verify", fresh[2]).ok()
    assert "Rekey verification successful" in verified.out
    cli("operator", "seal").ok()
    cli("operator", "unseal", fresh[1]).ok()
    assert "Sealed          false" in cli("operator", "unseal", fresh[0]).ok().out
    # cancel
    cli("operator", "rekey", "-init", "-key-shares=1", "-key-threshold=1").ok()
    cli("operator", "rekey", "-cancel").ok()
    assert "Started    false" in cli("operator", "rekey", "-status").ok().out
