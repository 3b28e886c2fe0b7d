"""login, the token helper file, token precedence, and the token commands."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from strongroom.cli._client import (
    Client,
    CommandError,
    read_token_helper,
    resolve_settings,
    write_token_helper,
)
from tests.cli.fakevault import TOKEN, FakeServer, Runner, secret

LOOKUP = secret(
    {
        "accessor": "acc-1",
        "policies": ["default", "ops"],
        "identity_policies": [],
        "meta": {"team": "ops"},
        "ttl": 3600,
        "renewable": True,
        "id": "hvs.typed",
    }
)
AUTH = secret(
    None,
    auth={
        "client_token": "hvs.from-login",
        "accessor": "acc-2",
        "policies": ["default"],
        "token_policies": ["default"],
        "identity_policies": [],
        "metadata": {"username": "bob"},
        "lease_duration": 2764800,
        "renewable": True,
    },
)
NO_ENV_TOKEN = {"STRONGROOM_TOKEN": "<unset>"}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_login_with_token_validates_and_stores_it(
    cli: Runner, server: FakeServer, home: Path
) -> None:
    server.on("GET", "auth/token/lookup-self", 200, LOOKUP)
    result = cli("login", "hvs.typed", env=NO_ENV_TOKEN)
    assert result.code == 0, result.err
    assert server.last().headers["X-Vault-Token"] == "hvs.typed"
    helper = home / ".vault-token"
    assert helper.read_text() == "hvs.typed"
    assert _mode(helper) == 0o600
    assert "Success! You are now authenticated." in result.out
    rows = [line.split(None, 1) for line in result.out.splitlines() if line.startswith("token")]
    assert ["token", "hvs.typed"] in rows
    assert ["token_duration", "1h"] in rows
    assert ["token_policies", '["default" "ops"]'] in rows
    assert ["token_meta_team", "ops"] in rows
    assert result.err == ""
    assert sorted(p.name for p in home.iterdir()) == [".vault-token"]


def test_login_replaces_a_loose_helper_file_atomically(
    cli: Runner, server: FakeServer, home: Path
) -> None:
    server.on("GET", "auth/token/lookup-self", 200, LOOKUP)
    helper = home / ".vault-token"
    helper.write_text("old")
    helper.chmod(0o644)
    assert cli("login", "-", env=NO_ENV_TOKEN, stdin="hvs.typed\n").code == 0
    assert helper.read_text() == "hvs.typed"
    assert _mode(helper) == 0o600


def test_login_rejected_token_is_not_stored(cli: Runner, server: FakeServer, home: Path) -> None:
    server.on("GET", "auth/token/lookup-self", 403, {"errors": ["permission denied"]})
    result = cli("login", "hvs.bad", env=NO_ENV_TOKEN)
    assert result.code == 2
    assert "hvs.bad" not in result.err
    assert not (home / ".vault-token").exists()


def test_login_warns_when_an_env_token_takes_precedence(cli: Runner, server: FakeServer) -> None:
    server.on("GET", "auth/token/lookup-self", 200, LOOKUP)
    result = cli("login", "hvs.typed")
    assert result.code == 0
    assert "STRONGROOM_TOKEN" in result.err


def test_login_userpass_posts_credentials_without_a_token(
    cli: Runner, server: FakeServer, home: Path
) -> None:
    server.on("PUT", "auth/userpass/login/bob", 200, AUTH)
    result = cli("login", "-method=userpass", "username=bob", "password=pw")
    assert result.code == 0, result.err
    seen = server.last()
    assert seen.body == {"password": "pw"}
    assert "X-Vault-Token" not in seen.headers
    assert (home / ".vault-token").read_text() == "hvs.from-login"
    assert "token_meta_username    bob" in result.out


def test_login_userpass_prompts_for_password_and_honours_path(
    cli: Runner, server: FakeServer
) -> None:
    server.on("PUT", "auth/people/login/bob", 200, AUTH)
    result = cli("login", "-method=userpass", "-path=people", "username=bob", stdin="pw2\n")
    assert result.code == 0, result.err
    assert server.last().body == {"password": "pw2"}


def test_login_other_methods_post_pairs(cli: Runner, server: FakeServer) -> None:
    server.on("PUT", "auth/approle/login", 200, AUTH)
    result = cli("login", "-method=approle", "role_id=r", "secret_id=s", "-token-only")
    assert result.out == "hvs.from-login\n"
    assert server.last().body == {"role_id": "r", "secret_id": "s"}


def test_login_no_store_and_no_print(cli: Runner, server: FakeServer, home: Path) -> None:
    server.on("PUT", "auth/approle/login", 200, AUTH)
    result = cli("login", "-method=approle", "-no-store", "-no-print", "role_id=r")
    assert (result.code, result.out) == (0, "")
    assert not (home / ".vault-token").exists()
    assert "not stored" in result.err
    assert cli("login", "-method=userpass", "password=x").code == 1


def test_helper_token_is_used_by_later_commands(
    cli: Runner, server: FakeServer, home: Path
) -> None:
    server.on("GET", "secret/x", 200, secret({"a": "b"}))
    # the file older Strongroom releases wrote, then Vault's helper file, which wins
    (home / ".strongroom-token").write_text("hvs.strongroom-file")
    cli("read", "secret/x", env=NO_ENV_TOKEN)
    assert server.last().headers["X-Vault-Token"] == "hvs.strongroom-file"
    (home / ".vault-token").write_text("hvs.vault-file\n")
    cli("read", "secret/x", env=NO_ENV_TOKEN)
    assert server.last().headers["X-Vault-Token"] == "hvs.vault-file"
    cli("read", "secret/x", env={"STRONGROOM_TOKEN": "<unset>", "VAULT_TOKEN": "hvs.venv"})
    assert server.last().headers["X-Vault-Token"] == "hvs.venv"
    cli("read", "secret/x", env={"VAULT_TOKEN": "hvs.venv"})
    assert server.last().headers["X-Vault-Token"] == TOKEN


def test_no_token_anywhere_sends_no_header(cli: Runner, server: FakeServer) -> None:
    server.on("GET", "sys/seal-status", 200, {"sealed": True, "t": 1})
    cli("status", env={"STRONGROOM_TOKEN": "<unset>", "HOME": "<unset>"})
    assert "X-Vault-Token" not in server.last().headers


def test_address_precedence(cli: Runner, server: FakeServer) -> None:
    server.on("GET", "secret/x", 200, secret({"a": "b"}))
    cli("read", "secret/x", env={"STRONGROOM_ADDR": "<unset>", "VAULT_ADDR": "http://v:1"})
    assert server.last().url.startswith("http://v:1/v1/")
    cli("read", "secret/x", env={"STRONGROOM_ADDR": "http://s:2", "VAULT_ADDR": "http://v:1"})
    assert server.last().url.startswith("http://s:2/v1/")
    cli("read", "-address=http://flag:3/", "secret/x")
    assert server.last().url == "http://flag:3/v1/secret/x"
    cli("read", "secret/x", env={"STRONGROOM_ADDR": "<unset>"})
    assert server.last().url == "https://127.0.0.1:8200/v1/secret/x"


def test_tls_settings_precedence(tmp_path: Path) -> None:
    env = {
        "VAULT_CACERT": "/v/ca.pem",
        "STRONGROOM_CACERT": "/s/ca.pem",
        "VAULT_CLIENT_CERT": "/v/c.pem",
        "VAULT_CLIENT_KEY": "/v/k.pem",
        "VAULT_SKIP_VERIFY": "true",
    }
    settings = resolve_settings(env)
    assert settings.ca_cert == "/s/ca.pem"
    assert (settings.client_cert, settings.client_key) == ("/v/c.pem", "/v/k.pem")
    assert settings.skip_verify is True
    assert resolve_settings(env, skip_verify=False).skip_verify is False
    assert resolve_settings(env, ca_cert="/flag.pem").ca_cert == "/flag.pem"
    assert resolve_settings({"STRONGROOM_SKIP_VERIFY": "0"}).skip_verify is False
    assert "hvs" not in repr(resolve_settings({"STRONGROOM_TOKEN": "hvs.secret"}))
    context = resolve_settings({"STRONGROOM_SKIP_VERIFY": "1"}).ssl_context()
    assert context.check_hostname is False


def test_missing_ca_file_is_a_local_error() -> None:
    settings = resolve_settings({"STRONGROOM_CACERT": "/nonexistent/ca.pem"})
    with pytest.raises(CommandError, match="TLS") as caught:
        Client(settings)
    assert caught.value.code == 1
    Client(resolve_settings({"STRONGROOM_ADDR": "https://x:1"})).close()


def test_token_helper_functions(home: Path) -> None:
    env = {"HOME": str(home)}
    assert read_token_helper(env) == ""
    path = write_token_helper(env, "hvs.t")
    assert path == home / ".vault-token"
    assert read_token_helper(env) == "hvs.t"
    assert read_token_helper({}) == ""


def test_token_create_body_and_output(cli: Runner, server: FakeServer) -> None:
    server.on("POST", "auth/token/create", 200, AUTH)
    result = cli(
        "token",
        "create",
        "-policy=a",
        "-policy=b,c",
        "-ttl=1h",
        "-explicit-max-ttl=2h",
        "-period=30m",
        "-use-limit=3",
        "-display-name=ci",
        "-metadata=team=ops",
        "-no-default-policy",
    )
    assert result.code == 0, result.err
    assert server.last().body == {
        "renewable": True,
        "policies": ["a", "b", "c"],
        "ttl": "1h",
        "explicit_max_ttl": "2h",
        "period": "30m",
        "num_uses": 3,
        "display_name": "ci",
        "meta": {"team": "ops"},
        "no_default_policy": True,
    }
    assert "token                  hvs.from-login" in result.out
    assert "token_duration         768h" in result.out
    assert cli("token", "create", "-field=token").out == "hvs.from-login\n"
    document = json.loads(cli("token", "create", "-format=json").out)
    assert document["auth"]["client_token"] == "hvs.from-login"


def test_token_create_orphan_role_and_not_renewable(cli: Runner, server: FakeServer) -> None:
    server.on("POST", "auth/token/create-orphan", 200, AUTH)
    server.on("POST", "auth/token/create/deploy", 200, AUTH)
    cli("token", "create", "-orphan", "-renewable=false")
    assert server.last().path == "auth/token/create-orphan"
    assert server.last().body == {"renewable": False}
    cli("token", "create", "-role=deploy")
    assert server.last().path == "auth/token/create/deploy"


def test_token_lookup_variants(cli: Runner, server: FakeServer) -> None:
    server.on("GET", "auth/token/lookup-self", 200, LOOKUP)
    server.on("POST", "auth/token/lookup", 200, LOOKUP)
    server.on("POST", "auth/token/lookup-accessor", 200, LOOKUP)
    assert ["accessor", "acc-1"] in [
        line.split() for line in cli("token", "lookup").out.splitlines()
    ]
    cli("token", "lookup", "hvs.other")
    assert server.last().body == {"token": "hvs.other"}
    cli("token", "lookup", "-accessor", "acc-1")
    assert server.last().body == {"accessor": "acc-1"}
    assert cli("token", "lookup", "-accessor").code == 1


def test_token_renew_variants(cli: Runner, server: FakeServer) -> None:
    for path in ("renew-self", "renew", "renew-accessor"):
        server.on("PUT", f"auth/token/{path}", 200, AUTH)
    cli("token", "renew", "-increment=1h")
    assert (server.last().path, server.last().body) == (
        "auth/token/renew-self",
        {"increment": "1h"},
    )
    cli("token", "renew", "-i", "30m", "hvs.x")
    assert server.last().body == {"increment": "30m", "token": "hvs.x"}
    cli("token", "renew", "-accessor", "acc")
    assert server.last().body == {"accessor": "acc"}


@pytest.mark.parametrize(
    ("argv", "path", "body"),
    [
        (("hvs.x",), "auth/token/revoke", {"token": "hvs.x"}),
        (("-self",), "auth/token/revoke-self", {}),
        (("-accessor", "acc"), "auth/token/revoke-accessor", {"accessor": "acc"}),
        (("-mode=orphan", "hvs.x"), "auth/token/revoke-orphan", {"token": "hvs.x"}),
        (("-mode=path", "auth/userpass/"), "sys/leases/revoke-prefix/auth/userpass/", {}),
    ],
)
def test_token_revoke_modes(
    cli: Runner, server: FakeServer, argv: tuple[str, ...], path: str, body: dict[str, str]
) -> None:
    server.on("PUT", path, 204)
    result = cli("token", "revoke", *argv)
    assert result.out == "Success! Revoked token (if it existed)\n"
    assert (server.last().method, server.last().path, server.last().body) == ("PUT", path, body)


def test_token_revoke_usage(cli: Runner) -> None:
    assert cli("token", "revoke").code == 1
    assert cli("token", "revoke", "-self", "hvs.x").code == 1
    assert cli("token", "revoke", "-accessor", "-mode=orphan", "a").code == 1
    assert cli("token", "revoke", "-mode=weird", "a").code == 1


def test_token_capabilities(cli: Runner, server: FakeServer) -> None:
    answer = secret({"secret/x": ["read", "create"], "capabilities": ["read", "create"]})
    for path in ("capabilities-self", "capabilities", "capabilities-accessor"):
        server.on("POST", f"sys/{path}", 200, answer)
    assert cli("token", "capabilities", "secret/x").out == "create, read\n"
    assert server.last().body == {"paths": ["secret/x"]}
    cli("token", "capabilities", "hvs.other", "secret/x")
    assert server.last().body == {"token": "hvs.other", "paths": ["secret/x"]}
    cli("token", "capabilities", "-accessor", "acc", "secret/x")
    assert server.last().body == {"accessor": "acc", "paths": ["secret/x"]}
    as_json = cli("token", "capabilities", "-format=json", "secret/x")
    assert json.loads(as_json.out) == ["create", "read"]
