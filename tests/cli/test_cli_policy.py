"""policy: sys/policies/acl calls and the local formatter."""

from __future__ import annotations

import json
from pathlib import Path

from strongroom.cli._policy import format_hcl
from tests.cli.fakevault import FakeServer, Runner, secret

POLICY = 'path "secret/*" {\n  capabilities = ["read"]\n}\n'


def test_policy_write_from_file_and_stdin(cli: Runner, server: FakeServer, tmp_path: Path) -> None:
    server.on("PUT", "sys/policies/acl/ops", 204)
    policy_file = tmp_path / "ops.hcl"
    policy_file.write_text(POLICY)
    result = cli("policy", "write", "OPS", str(policy_file))
    assert result.out == "Success! Uploaded policy: ops\n"
    assert server.last().body == {"policy": POLICY}
    assert cli("policy", "write", "ops", "-", stdin=POLICY).code == 0
    assert server.last().body == {"policy": POLICY}
    assert cli("policy", "write", "ops", str(tmp_path / "missing")).code == 1


def test_policy_read_list_delete(cli: Runner, server: FakeServer) -> None:
    server.on("GET", "sys/policies/acl/ops", 200, secret({"name": "ops", "policy": POLICY}))
    assert cli("policy", "read", "ops").out == POLICY
    assert json.loads(cli("policy", "read", "-format=json", "ops").out)["data"]["name"] == "ops"
    missing = cli("policy", "read", "nope")
    assert (missing.code, missing.err) == (2, "No policy named: nope\n")
    server.on("LIST", "sys/policies/acl", 200, secret({"keys": ["default", "ops"]}))
    assert cli("policy", "list").out == "default\nops\n"
    assert json.loads(cli("policy", "list", "-format=json").out) == ["default", "ops"]
    server.on("DELETE", "sys/policies/acl/ops", 204)
    assert cli("policy", "delete", "ops").out == "Success! Deleted policy: ops\n"


def test_format_hcl_reindents_aligns_and_keeps_comments() -> None:
    messy = (
        "# Read-only access\n"
        'path   "secret/*"{\n'
        'capabilities=[ "read" ,"list" ]\n'
        '    min_wrapping_ttl="1s" // lower bound\n'
        "  allowed_parameters = {\n"
        '"a"=[]\n'
        "}\n"
        "}\n"
        "\n\n\n"
        'path "secret/*" { capabilities = ["deny"] }\n'
    )
    assert format_hcl(messy) == (
        "# Read-only access\n"
        'path "secret/*" {\n'
        '  capabilities     = ["read", "list"]\n'
        '  min_wrapping_ttl = "1s" // lower bound\n'
        "  allowed_parameters = {\n"
        '    "a" = []\n'
        "  }\n"
        "}\n"
        "\n"
        'path "secret/*" { capabilities = ["deny"] }\n'
    )
    assert format_hcl(format_hcl(messy)) == format_hcl(messy)


def test_policy_fmt_rewrites_the_file(cli: Runner, server: FakeServer, tmp_path: Path) -> None:
    policy_file = tmp_path / "p.hcl"
    policy_file.write_text('path "a/*" {\ncapabilities = ["read"]\n}')
    result = cli("policy", "fmt", str(policy_file))
    assert result.out == f"Success! Formatted policy: {policy_file}\n"
    assert policy_file.read_text() == 'path "a/*" {\n  capabilities = ["read"]\n}\n'
    assert server.seen == []


def test_policy_fmt_rejects_invalid_policies(cli: Runner, tmp_path: Path) -> None:
    broken = tmp_path / "broken.hcl"
    broken.write_text('path "a" { capabilities = [')
    assert cli("policy", "fmt", str(broken)).code == 1
    assert broken.read_text() == 'path "a" { capabilities = ['
    wrong = tmp_path / "wrong.hcl"
    wrong.write_text('pth "a" {}\n')
    result = cli("policy", "fmt", str(wrong))
    assert result.code == 1
    assert 'invalid key "pth"' in result.err
    assert cli("policy", "fmt", str(tmp_path / "none.hcl")).code == 1
