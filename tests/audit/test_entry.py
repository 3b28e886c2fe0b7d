"""Vault's entry shape, what is hashed, and per-device formatting from one shared input."""

from __future__ import annotations

import orjson

from strongroom.audit import AuditAuth, AuditEvent, FormatOptions, MountInfo, Salt, format_entry
from strongroom.logical import Auth, Connection, Operation, Request, Response

SALT = Salt(b"k" * 32)
TOKEN = "hvs.TOKENTOKENTOKENTOKEN1234"
ACCESSOR = "ACCESSORaccessor12345678"


def event(**kwargs: object) -> AuditEvent:
    request = Request(
        operation=Operation.UPDATE,
        path="secret/data/app",
        data={"data": {"password": "s3cret", "port": 5432}, "options": {"cas": 1}},
        id="rid-1",
        client_token=TOKEN,
        connection=Connection(remote_addr="192.0.2.9", remote_port=5555),
    )
    auth = AuditAuth(
        accessor=ACCESSOR,
        display_name="userpass-alice",
        policies=("default", "dev"),
        token_policies=("default", "dev"),
        metadata={"team": "a"},
        entity_id="ent-1",
        token_type="service",
        token_ttl=3600,
        token_issue_time="2026-01-01T00:00:00Z",
    )
    mount = MountInfo("secret/", "kv", "kv_1234", "secret", frozenset(), frozenset({"version"}))
    values: dict[str, object] = {
        "request": request,
        "operation": Operation.CREATE,
        "auth": auth,
        "mount": mount,
    }
    values.update(kwargs)
    return AuditEvent(**values)  # type: ignore[arg-type]


def test_request_entry_shape_and_hashing() -> None:
    entry = format_entry("request", event(), SALT, FormatOptions(), "2026-01-01T00:00:01Z")
    assert list(entry)[:6] == ["time", "type", "seq", "prev_hash", "auth", "request"]
    assert entry["type"] == "request" and "response" not in entry and "error" not in entry
    auth = entry["auth"]
    assert auth["client_token"] == SALT.hmac(TOKEN) and auth["accessor"] == SALT.hmac(ACCESSOR)
    assert auth["display_name"] == "userpass-alice" and auth["entity_id"] == "ent-1"
    assert auth["metadata"] == {"team": "a"} and auth["policies"] == ["default", "dev"]
    assert auth["token_ttl"] == 3600 and auth["token_issue_time"] == "2026-01-01T00:00:00Z"
    request = entry["request"]
    assert request["operation"] == "create" and request["path"] == "secret/data/app"
    assert request["namespace"] == {"id": "root"} and request["id"] == "rid-1"
    assert request["mount_point"] == "secret/" and request["mount_type"] == "kv"
    assert request["client_token"] == SALT.hmac(TOKEN)
    assert request["client_token_accessor"] == SALT.hmac(ACCESSOR)
    assert request["data"] == {
        "data": {"password": SALT.hmac("s3cret"), "port": 5432},
        "options": {"cas": 1},
    }
    assert request["remote_address"] == "192.0.2.9" and request["remote_port"] == 5555
    text = orjson.dumps(entry)
    assert b"s3cret" not in text and TOKEN.encode() not in text and ACCESSOR.encode() not in text


def test_response_entry_hashes_the_minted_auth_and_keeps_non_hmac_keys() -> None:
    minted = Auth(
        client_token="hvs.NEWNEWNEWNEWNEWNEWNEWNEW1",
        accessor="NEWACCESSOR0000000000000",
        policies=("default",),
        lease_duration=60,
        entity_id="ent-2",
    )
    response = Response(
        data={"version": "2", "note": "n"},
        auth=minted,
        warnings=["w"],
        lease_id="kv/x/1",
        wrap_info={"token": "hvs.WRAP", "accessor": "WACC", "ttl": 30},
    )
    entry = format_entry(
        "response", event(response=response), SALT, FormatOptions(), "2026-01-01T00:00:02Z"
    )
    body = entry["response"]
    assert body["data"] == {"version": "2", "note": SALT.hmac("n")}
    assert body["auth"]["client_token"] == SALT.hmac(minted.client_token)
    assert body["auth"]["accessor"] == SALT.hmac(minted.accessor)
    assert body["auth"]["entity_id"] == "ent-2"
    assert body["secret"] == {"lease_id": "kv/x/1"} and body["warnings"] == ["w"]
    assert body["wrap_info"] == {
        "token": SALT.hmac("hvs.WRAP"),
        "accessor": SALT.hmac("WACC"),
        "ttl": 30,
    }
    assert entry["request"]["data"]["data"]["password"] == SALT.hmac("s3cret")


def test_hmac_accessor_false_keeps_accessors_in_clear_only() -> None:
    entry = format_entry(
        "request", event(), SALT, FormatOptions(hmac_accessor=False), "2026-01-01T00:00:01Z"
    )
    assert entry["auth"]["accessor"] == ACCESSOR
    assert entry["request"]["client_token_accessor"] == ACCESSOR
    assert entry["auth"]["client_token"] == SALT.hmac(TOKEN)


def test_log_raw_and_hashed_devices_format_the_same_event_independently() -> None:
    shared = event()
    before = orjson.dumps(shared.request.data)
    raw = format_entry("request", shared, None, FormatOptions(), "t")
    hashed = format_entry("request", shared, SALT, FormatOptions(), "t")
    again = format_entry("request", shared, Salt(b"z" * 32), FormatOptions(), "t")
    assert raw["request"]["data"]["data"]["password"] == "s3cret"
    assert raw["auth"]["client_token"] == TOKEN
    assert hashed["request"]["data"]["data"]["password"] == SALT.hmac("s3cret")
    assert again["request"]["data"]["data"]["password"] not in ("s3cret", SALT.hmac("s3cret"))
    assert orjson.dumps(shared.request.data) == before
    assert b"s3cret" not in orjson.dumps(hashed)


def test_errors_and_a_missing_identity() -> None:
    bare = AuditEvent(
        request=Request(operation=Operation.READ, path="secret/data/x", client_token="bad"),
        operation=Operation.READ,
        error="permission denied",
    )
    entry = format_entry("request", bare, SALT, FormatOptions(), "t")
    assert entry["error"] == "permission denied"
    assert entry["auth"]["client_token"] == SALT.hmac("bad") and entry["auth"]["accessor"] == ""
    assert entry["request"]["mount_point"] == ""


def test_elide_list_responses() -> None:
    listing = AuditEvent(
        request=Request(operation=Operation.LIST, path="secret/metadata/"),
        operation=Operation.LIST,
        response=Response(data={"keys": ["a", "b", "c"]}),
    )
    entry = format_entry("response", listing, SALT, FormatOptions(elide_list_responses=True), "t")
    assert entry["response"]["data"] == {"keys": 3}
