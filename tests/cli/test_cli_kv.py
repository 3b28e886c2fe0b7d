"""kv: version detection through sys/internal/ui/mounts, v1 and v2 path building, output."""

from __future__ import annotations

import json

import pytest

from tests.cli.fakevault import FakeServer, Runner, secret

METADATA = {
    "created_time": "2024-01-02T03:04:05Z",
    "custom_metadata": None,
    "deletion_time": "",
    "destroyed": False,
    "version": 3,
}


@pytest.fixture
def v2(server: FakeServer) -> FakeServer:
    server.kv_mount("secret/", 2)
    server.on(
        "GET", "secret/data/app/db", 200, secret({"data": {"pw": "hunter2"}, "metadata": METADATA})
    )
    return server


@pytest.fixture
def v1(server: FakeServer) -> FakeServer:
    server.kv_mount("kv/", 1)
    server.on("GET", "kv/app", 200, secret({"pw": "old"}, lease_duration=2764800))
    return server


def test_get_v2_detects_the_mount_and_reads_data_path(cli: Runner, v2: FakeServer) -> None:
    result = cli("kv", "get", "secret/app/db")
    assert result.code == 0, result.err
    assert v2.calls() == [
        ("GET", "sys/internal/ui/mounts/secret/app/db"),
        ("GET", "secret/data/app/db"),
    ]
    assert result.out.splitlines() == [
        "== Secret Path ==",
        "secret/data/app/db",
        "",
        "======= Metadata =======",
        "Key                Value",
        "---                -----",
        "created_time       2024-01-02T03:04:05Z",
        "custom_metadata    <nil>",
        "deletion_time",
        "destroyed          false",
        "version            3",
        "",
        "== Data ==",
        "Key    Value",
        "---    -----",
        "pw     hunter2",
    ]


def test_get_v2_field_json_and_version(cli: Runner, v2: FakeServer) -> None:
    assert cli("kv", "get", "-field=pw", "secret/app/db").out == "hunter2\n"
    document = json.loads(cli("kv", "get", "-format=json", "secret/app/db").out)
    assert document["data"]["data"] == {"pw": "hunter2"}
    assert cli("kv", "get", "-version=2", "secret/app/db").code == 0
    assert v2.last().params == {"version": "2"}
    missing = cli("kv", "get", "-field=nope", "secret/app/db")
    assert missing.code == 1


def test_get_with_mount_flag(cli: Runner, v2: FakeServer) -> None:
    result = cli("kv", "get", "-mount=secret", "app/db")
    assert result.code == 0, result.err
    assert v2.calls() == [("GET", "sys/internal/ui/mounts/secret"), ("GET", "secret/data/app/db")]


def test_get_v1_reads_the_path_itself(cli: Runner, v1: FakeServer) -> None:
    result = cli("kv", "get", "kv/app")
    assert v1.calls()[-1] == ("GET", "kv/app")
    assert "== Secret Path ==" not in result.out
    assert "pw     old" in result.out
    assert cli("kv", "get", "-field=pw", "kv/app").out == "old\n"


def test_preflight_404_means_version_1(cli: Runner, server: FakeServer) -> None:
    server.on("GET", "old/x", 200, secret({"a": "b"}))
    assert cli("kv", "get", "-field=a", "old/x").out == "b\n"
    assert server.calls() == [("GET", "sys/internal/ui/mounts/old/x"), ("GET", "old/x")]


def test_preflight_permission_denied_is_reported(cli: Runner, server: FakeServer) -> None:
    server.on("GET", "sys/internal/ui/mounts/secret/x", 403, {"errors": ["permission denied"]})
    result = cli("kv", "get", "secret/x")
    assert result.code == 2
    assert "Code: 403" in result.err


def test_get_missing(cli: Runner, v2: FakeServer) -> None:
    result = cli("kv", "get", "secret/nothing")
    assert result.code == 2
    assert result.err == "No value found at secret/data/nothing\n"


def test_put_v2_wraps_data_and_cas(cli: Runner, server: FakeServer) -> None:
    server.kv_mount("secret/", 2)
    server.on("PUT", "secret/data/app", 200, secret(METADATA))
    result = cli("kv", "put", "-cas=0", "secret/app", "user=bob", "pw=x")
    assert result.code == 0, result.err
    assert server.last().body == {"data": {"user": "bob", "pw": "x"}, "options": {"cas": 0}}
    assert result.out.startswith("= Secret Path =\nsecret/data/app\n\n")
    assert "version            3" in result.out
    cli("kv", "put", "secret/app", "a=b")
    assert server.last().body == {"data": {"a": "b"}}
    assert cli("kv", "put", "-field=version", "secret/app", "a=b").out == "3\n"


def test_put_v2_from_stdin_json(cli: Runner, server: FakeServer) -> None:
    server.kv_mount("secret/", 2)
    server.on("PUT", "secret/data/app", 200, secret(METADATA))
    assert cli("kv", "put", "secret/app", "-", stdin='{"k": [1, 2]}').code == 0
    assert server.last().body == {"data": {"k": [1, 2]}}


def test_put_v1_sends_flat_body(cli: Runner, server: FakeServer) -> None:
    server.kv_mount("kv/", 1)
    server.on("PUT", "kv/app", 204)
    result = cli("kv", "put", "kv/app", "a=1")
    assert result.out == "Success! Data written to: kv/app\n"
    assert server.last().body == {"a": "1"}


def test_put_needs_data(cli: Runner, server: FakeServer) -> None:
    assert cli("kv", "put", "secret/app").code == 1
    assert server.seen == []


def test_patch_uses_merge_patch(cli: Runner, server: FakeServer) -> None:
    server.kv_mount("secret/", 2)
    server.on("PATCH", "secret/data/app", 200, secret(METADATA))
    result = cli("kv", "patch", "-cas=3", "secret/app", "b=2", "-remove-data=old")
    assert result.code == 0, result.err
    seen = server.last("PATCH")
    assert seen.headers["Content-Type"] == "application/merge-patch+json"
    assert seen.body == {"data": {"b": "2", "old": None}, "options": {"cas": 3}}


def test_patch_read_then_write(cli: Runner, v2: FakeServer) -> None:
    v2.on("PUT", "secret/data/app/db", 200, secret(METADATA))
    assert cli("kv", "patch", "-method=rw", "secret/app/db", "user=u").code == 0
    assert v2.last("PUT").body == {"data": {"pw": "hunter2", "user": "u"}, "options": {"cas": 3}}


def test_patch_on_v1_is_refused(cli: Runner, v1: FakeServer) -> None:
    result = cli("kv", "patch", "kv/app", "a=b")
    assert result.code == 2
    assert "version 2" in result.err


def test_delete_latest_or_versions(cli: Runner, server: FakeServer) -> None:
    server.kv_mount("secret/", 2)
    server.on("DELETE", "secret/data/app", 204)
    server.on("PUT", "secret/delete/app", 204)
    assert cli("kv", "delete", "secret/app").out == (
        "Success! Data deleted (if it existed) at: secret/data/app\n"
    )
    assert cli("kv", "delete", "-versions=1,2", "secret/app").code == 0
    assert server.last().path == "secret/delete/app"
    assert server.last().body == {"versions": [1, 2]}


def test_undelete_and_destroy(cli: Runner, server: FakeServer) -> None:
    server.kv_mount("secret/", 2)
    server.on("PUT", "secret/undelete/app", 204)
    server.on("PUT", "secret/destroy/app", 204)
    assert cli("kv", "undelete", "-versions=2", "secret/app").code == 0
    assert server.last().body == {"versions": [2]}
    result = cli("kv", "destroy", "-versions", "1", "-versions", "3", "secret/app")
    assert result.out == "Success! Data written to: secret/destroy/app\n"
    assert server.last().body == {"versions": [1, 3]}
    assert cli("kv", "destroy", "secret/app").code == 1


def test_version_2_only_commands_on_v1(cli: Runner, v1: FakeServer) -> None:
    result = cli("kv", "destroy", "-versions=1", "kv/app")
    assert result.code == 1
    assert "not supported on KV Version 1" in result.err
    assert cli("kv", "metadata", "get", "kv/app").code == 1


def test_list_v2_uses_metadata_path(cli: Runner, server: FakeServer) -> None:
    server.kv_mount("secret/", 2)
    server.on("LIST", "secret/metadata/app/", 200, secret({"keys": ["db", "web/"]}))
    result = cli("kv", "list", "secret/app")
    assert result.out == "Keys\n----\ndb\nweb/\n"
    assert cli("kv", "list", "secret/nothing").code == 2


def test_list_at_mount_root(cli: Runner, server: FakeServer) -> None:
    server.kv_mount("secret/", 2)
    server.on("LIST", "secret/metadata/", 200, secret({"keys": ["app/"]}))
    assert cli("kv", "list", "secret").code == 0
    assert cli("kv", "list", "-mount=secret", "").code == 0


def test_metadata_commands(cli: Runner, server: FakeServer) -> None:
    server.kv_mount("secret/", 2)
    versions = {"1": {"destroyed": False}, "10": {"destroyed": True}, "2": {"destroyed": False}}
    server.on("GET", "secret/metadata/app", 200, secret({"max_versions": 0, "versions": versions}))
    server.on("PUT", "secret/metadata/app", 204)
    server.on("PATCH", "secret/metadata/app", 204)
    server.on("DELETE", "secret/metadata/app", 204)
    shown = cli("kv", "metadata", "get", "secret/app")
    assert shown.out.index("Version 1 ") < shown.out.index("Version 2 ")
    assert shown.out.index("Version 2 ") < shown.out.index("Version 10 ")
    assert "max_versions" in shown.out
    put = cli(
        "kv",
        "metadata",
        "put",
        "-max-versions=5",
        "-cas-required",
        "-delete-version-after=1h",
        "-custom-metadata=owner=ops",
        "secret/app",
    )
    assert put.out == "Success! Data written to: secret/metadata/app\n"
    assert server.last().body == {
        "max_versions": 5,
        "cas_required": True,
        "delete_version_after": "1h",
        "custom_metadata": {"owner": "ops"},
    }
    assert cli("kv", "metadata", "patch", "-max-versions=2", "secret/app").code == 0
    assert server.last().method == "PATCH"
    assert server.last().headers["Content-Type"] == "application/merge-patch+json"
    assert cli("kv", "metadata", "patch", "secret/app").code == 1
    assert cli("kv", "metadata", "delete", "secret/app").code == 0
    assert server.last().method == "DELETE"
