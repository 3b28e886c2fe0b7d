"""read / write / list / delete, the error line, exit codes, and the top-level dispatcher."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.cli.fakevault import ADDR, TOKEN, FakeServer, Runner, secret


def test_read_prints_a_key_value_table(cli: Runner, server: FakeServer) -> None:
    server.on(
        "GET",
        "secret/foo",
        200,
        secret({"value": "s3", "list": ["a", "b"]}, lease_duration=2764800),
    )
    result = cli("read", "secret/foo")
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        "Key                 Value",
        "---                 -----",
        "refresh_interval    768h",
        "list                [a b]",
        "value               s3",
    ]
    seen = server.last("GET")
    assert seen.path == "secret/foo"
    assert seen.headers["X-Vault-Token"] == TOKEN
    assert seen.headers["X-Vault-Request"] == "true"
    assert seen.url.startswith(ADDR + "/v1/")


def test_read_format_json_prints_the_whole_response(cli: Runner, server: FakeServer) -> None:
    document = secret({"value": "s3"})
    server.on("GET", "secret/foo", 200, document)
    result = cli("read", "-format=json", "secret/foo")
    assert json.loads(result.out) == document
    assert '\n  "request_id"' in result.out


def test_format_from_environment(cli: Runner, server: FakeServer) -> None:
    server.on("GET", "secret/foo", 200, secret({"value": "s3"}))
    result = cli("read", "secret/foo", env={"VAULT_FORMAT": "json"})
    assert json.loads(result.out)["data"] == {"value": "s3"}
    bad = cli("read", "-format=xml", "secret/foo")
    assert bad.code == 1
    assert "Invalid output format" in bad.err


def test_read_field_prints_raw_value(cli: Runner, server: FakeServer) -> None:
    server.on("GET", "secret/foo", 200, secret({"value": "s3", "n": [1, 2]}))
    assert cli("read", "-field=value", "secret/foo").out == "s3\n"
    assert cli("read", "secret/foo", "-field=n").out == "[1 2]\n"
    assert cli("read", "-field=n", "-format=json", "secret/foo").out == "[\n  1,\n  2\n]\n"
    missing = cli("read", "-field=nope", "secret/foo")
    assert missing.code == 1
    assert 'Field "nope" not present in secret' in missing.err


def test_read_missing_is_exit_2(cli: Runner) -> None:
    result = cli("read", "/secret/missing")
    assert result.code == 2
    assert result.err == "No value found at secret/missing\n"


def test_read_extra_pairs_are_query_parameters(cli: Runner, server: FakeServer) -> None:
    server.on("GET", "pki/cert/ca", 200, secret({"certificate": "PEM"}))
    assert cli("read", "pki/cert/ca", "a=1", "b=2").code == 0
    assert server.last().params == {"a": "1", "b": "2"}


def test_api_error_is_one_line_with_code_and_errors(cli: Runner, server: FakeServer) -> None:
    server.on("GET", "secret/foo", 403, {"errors": ["permission denied", "1 error\n\t* more"]})
    result = cli("read", "secret/foo")
    assert result.code == 2
    assert result.out == ""
    assert result.err.count("\n") == 1
    assert result.err.startswith("Error reading secret/foo: Code: 403 (GET ")
    assert f"{ADDR}/v1/secret/foo" in result.err
    assert "Errors: permission denied; 1 error * more" in result.err


def test_transport_failure_is_exit_2(server: FakeServer, cli: Runner) -> None:
    def refuse(request: httpx.Request) -> tuple[int, object]:
        raise httpx.ConnectError("connection refused", request=request)

    server.on_call("GET", "secret/foo", refuse)
    result = cli("read", "secret/foo")
    assert result.code == 2
    assert "Error reading secret/foo: ConnectError: connection refused" in result.err


def test_write_sends_json_body_with_put(cli: Runner, server: FakeServer) -> None:
    server.on("PUT", "auth/userpass/users/bob", 204)
    result = cli("write", "auth/userpass/users/bob", "password=long", "policies=a", "policies=b")
    assert result.code == 0
    assert result.out == "Success! Data written to: auth/userpass/users/bob\n"
    assert server.last().body == {"password": "long", "policies": ["a", "b"]}
    assert server.last().headers["Content-Type"] == "application/json"


def test_write_prints_a_response_with_data(cli: Runner, server: FakeServer) -> None:
    server.on("PUT", "transit/encrypt/k", 200, secret({"ciphertext": "vault:v1:abc"}))
    result = cli("write", "-field=ciphertext", "transit/encrypt/k", "plaintext=aGk=")
    assert result.out == "vault:v1:abc\n"


def test_write_needs_data_or_force(cli: Runner, server: FakeServer) -> None:
    server.on("PUT", "sys/rotate", 204)
    refused = cli("write", "sys/rotate")
    assert refused.code == 1
    assert "Must supply data or use -force" in refused.err
    assert server.seen == []
    assert cli("write", "-f", "sys/rotate").code == 0
    assert server.last().body == {}


def test_write_json_from_stdin(cli: Runner, server: FakeServer) -> None:
    server.on("PUT", "secret/x", 204)
    assert cli("write", "secret/x", "-", stdin='{"a": {"nested": true}}').code == 0
    assert server.last().body == {"a": {"nested": True}}


def test_list_uses_get_with_list_true_and_prints_keys(cli: Runner, server: FakeServer) -> None:
    server.on("LIST", "secret/dir/", 200, secret({"keys": ["a", "sub/"]}))
    result = cli("list", "secret/dir")
    assert result.out == "Keys\n----\na\nsub/\n"
    seen = server.last()
    assert seen.headers.get("X-Vault-Token") == TOKEN
    assert seen.params == {"list": "true"}
    as_json = cli("list", "-format=json", "secret/dir/")
    assert json.loads(as_json.out) == ["a", "sub/"]


def test_list_missing_is_exit_2(cli: Runner) -> None:
    result = cli("list", "secret/none")
    assert result.code == 2
    assert result.err == "No value found at secret/none/\n"


def test_delete(cli: Runner, server: FakeServer) -> None:
    server.on("DELETE", "secret/x", 204)
    result = cli("delete", "secret/x")
    assert result.out == "Success! Data deleted (if it existed) at: secret/x\n"
    assert server.calls() == [("DELETE", "secret/x")]


@pytest.mark.parametrize(
    "argv",
    [("read",), ("read", "-nope", "x"), ("list", "a", "b"), ("frobnicate",), ("kv",)],
)
def test_usage_errors_exit_1(cli: Runner, server: FakeServer, argv: tuple[str, ...]) -> None:
    result = cli(*argv)
    assert result.code == 1
    assert result.err
    assert server.seen == []


def test_help_and_version(cli: Runner) -> None:
    top = cli("-h")
    assert top.code == 0
    assert "Common commands:" in top.out
    assert "kv" in top.out
    assert cli().code == 1
    group = cli("kv", "-h")
    assert group.code == 0
    assert "metadata" in group.out
    command = cli("kv", "get", "-h")
    assert command.code == 0
    assert "Usage: strongroom kv get" in command.out
    assert "-mount" in command.out
    assert cli("version").out.startswith("Strongroom v")
