"""secrets, auth and audit: the mount tables on sys/mounts, sys/auth and sys/audit."""

from __future__ import annotations

import json

from tests.cli.fakevault import FakeServer, Runner

MOUNTS = {
    "secret/": {
        "type": "kv",
        "accessor": "kv_1",
        "description": "key/value secret storage",
        "config": {"default_lease_ttl": 0, "max_lease_ttl": 3600},
        "options": {"version": "2"},
        "local": False,
        "seal_wrap": False,
        "uuid": "u-1",
    },
    "cubbyhole/": {"type": "cubbyhole", "accessor": "cubby_1", "description": "per-token"},
}


def test_secrets_enable_sends_type_config_and_options(cli: Runner, server: FakeServer) -> None:
    server.on("POST", "sys/mounts/team/kv", 204)
    result = cli(
        "secrets",
        "enable",
        "-path=team/kv/",
        "-description=Team secrets",
        "-version=2",
        "-default-lease-ttl=1h",
        "-max-lease-ttl=24h",
        "-audit-non-hmac-request-keys=a,b",
        "kv",
    )
    assert result.code == 0, result.err
    assert result.out == "Success! Enabled the kv secrets engine at: team/kv/\n"
    assert server.last().body == {
        "type": "kv",
        "description": "Team secrets",
        "config": {
            "default_lease_ttl": "1h",
            "max_lease_ttl": "24h",
            "audit_non_hmac_request_keys": ["a", "b"],
        },
        "options": {"version": "2"},
    }


def test_secrets_enable_kv_v2_and_default_path(cli: Runner, server: FakeServer) -> None:
    server.on("POST", "sys/mounts/kv-v2", 204)
    server.on("POST", "sys/mounts/transit", 204)
    assert cli("secrets", "enable", "kv-v2").code == 0
    assert server.last().body["type"] == "kv"
    assert server.last().body["options"] == {"version": "2"}
    cli("secrets", "enable", "-local", "-options=x=y", "transit")
    assert server.last().body == {
        "type": "transit",
        "description": "",
        "config": {},
        "options": {"x": "y"},
        "local": True,
    }


def test_secrets_enable_error(cli: Runner, server: FakeServer) -> None:
    server.on("POST", "sys/mounts/kv", 400, {"errors": ["path is already in use at kv/"]})
    result = cli("secrets", "enable", "kv")
    assert result.code == 2
    assert "path is already in use" in result.err


def test_secrets_list_table_detailed_and_json(cli: Runner, server: FakeServer) -> None:
    server.on("GET", "sys/mounts", 200, {"data": MOUNTS, **MOUNTS})
    result = cli("secrets", "list")
    assert result.out.splitlines() == [
        "Path          Type         Accessor    Description",
        "----          ----         --------    -----------",
        "cubbyhole/    cubbyhole    cubby_1     per-token",
        "secret/       kv           kv_1        key/value secret storage",
    ]
    detailed = cli("secrets", "list", "-detailed").out.splitlines()
    assert detailed[0].split()[:5] == ["Path", "Plugin", "Accessor", "Default", "TTL"]
    assert detailed[3].split()[3:5] == ["system", "1h"]
    assert "map[version:2]" in detailed[3]
    assert json.loads(cli("secrets", "list", "-format=json").out)["secret/"]["type"] == "kv"


def test_secrets_disable_tune_move(cli: Runner, server: FakeServer) -> None:
    server.on("DELETE", "sys/mounts/old", 204)
    server.on("POST", "sys/mounts/secret/tune", 204)
    server.on("POST", "sys/remount", 200, {"migration_id": "m-1"})
    assert cli("secrets", "disable", "old/").out == (
        "Success! Disabled the secrets engine (if it existed) at: old/\n"
    )
    tuned = cli("secrets", "tune", "-max-lease-ttl=2h", "-description=new", "-version=2", "secret")
    assert tuned.out == "Success! Tuned the secrets engine at: secret/\n"
    assert server.last().body == {
        "max_lease_ttl": "2h",
        "description": "new",
        "options": {"version": "2"},
    }
    moved = cli("secrets", "move", "secret", "vault")
    assert server.last().body == {"from": "secret/", "to": "vault/"}
    assert "migration ID m-1" in moved.out


def test_auth_enable_list_tune_disable(cli: Runner, server: FakeServer) -> None:
    server.on("POST", "sys/auth/people", 204)
    assert cli("auth", "enable", "-path=people", "userpass").out == (
        "Success! Enabled userpass auth method at: people/\n"
    )
    assert server.last().body == {"type": "userpass", "description": "", "config": {}}
    methods = {"token/": {"type": "token", "accessor": "auth_token_1", "description": "token"}}
    server.on("GET", "sys/auth", 200, {"data": methods})
    listed = cli("auth", "list").out.splitlines()
    assert listed[2].split() == ["token/", "token", "auth_token_1", "token"]
    assert "Token Type" in cli("auth", "list", "-detailed").out
    server.on("POST", "sys/auth/people/tune", 204)
    cli("auth", "tune", "-default-lease-ttl=10m", "people")
    assert server.last().body == {"default_lease_ttl": "10m"}
    server.on("DELETE", "sys/auth/people", 204)
    assert "Disabled the auth method" in cli("auth", "disable", "people").out


def test_audit_enable_list_disable(cli: Runner, server: FakeServer) -> None:
    server.on("PUT", "sys/audit/file", 204)
    result = cli("audit", "enable", "file", "file_path=/var/log/audit.log")
    assert result.out == "Success! Enabled the file audit device at: file/\n"
    assert server.last().body == {
        "type": "file",
        "description": "",
        "options": {"file_path": "/var/log/audit.log"},
    }
    server.on("GET", "sys/audit", 200, {"data": {}})
    empty = cli("audit", "list")
    assert (empty.code, empty.out) == (2, "No audit devices are enabled.\n")
    devices = {"file/": {"type": "file", "description": "", "options": {"file_path": "x"}}}
    server.on("GET", "sys/audit", 200, {"data": devices})
    listed = cli("audit", "list", "-detailed").out.splitlines()
    assert listed[0].split() == ["Path", "Type", "Description", "Replication", "Options"]
    assert listed[2].split() == ["file/", "file", "replicated", "map[file_path:x]"]
    server.on("DELETE", "sys/audit/file", 204)
    assert "Disabled audit device" in cli("audit", "disable", "file").out
