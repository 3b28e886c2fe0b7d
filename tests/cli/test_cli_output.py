"""Rendering as Vault's CLI renders: Go %v values, human durations, columnized tables."""

from __future__ import annotations

from strongroom.cli._output import (
    columns,
    field_value,
    go_value,
    human_duration,
    pad_equal_signs,
    render_json,
    render_list,
    render_secret,
    render_yaml,
    secret_rows,
    table,
)


def test_go_value_matches_percent_v() -> None:
    assert go_value(None) == "<nil>"
    assert go_value(True) == "true"
    assert go_value(["a", "b"]) == "[a b]"
    assert go_value({"b": 2, "a": [1, None]}) == "map[a:[1 <nil>] b:2]"
    assert go_value([]) == "[]"
    assert go_value(3) == "3"


def test_human_duration_trims_like_vault() -> None:
    assert human_duration(2764800) == "768h"
    assert human_duration(3600) == "1h"
    assert human_duration(3601) == "1h1s"
    assert human_duration(3660) == "1h1m"
    assert human_duration(90) == "1m30s"
    assert human_duration(60) == "1m"
    assert human_duration(0) == "0s"
    assert human_duration("120") == "2m"
    assert human_duration("forever") == "forever"


def test_table_layout_is_columnized_with_four_spaces() -> None:
    text = table(["Key", "Value"], [["refresh_interval", "768h"], ["value", "itsasecret"]])
    assert text.splitlines() == [
        "Key                 Value",
        "---                 -----",
        "refresh_interval    768h",
        "value               itsasecret",
    ]
    assert columns([]) == ""


def test_secret_rows_lease_auth_and_durations() -> None:
    rows = secret_rows({"lease_duration": 2764800, "lease_id": "", "data": {"ttl": 90, "x": "y"}})
    assert rows == [["refresh_interval", "768h"], ["ttl", "1m30s"], ["x", "y"]]
    leased = secret_rows({"lease_duration": 60, "lease_id": "db/creds/1", "renewable": True})
    assert leased == [
        ["lease_id", "db/creds/1"],
        ["lease_duration", "1m"],
        ["lease_renewable", "true"],
    ]
    auth = {
        "client_token": "hvs.x",
        "accessor": "acc",
        "lease_duration": 0,
        "renewable": False,
        "policies": ["root"],
        "token_policies": ["root"],
        "metadata": {"user": "bob"},
    }
    assert secret_rows({"auth": auth}) == [
        ["token", "hvs.x"],
        ["token_accessor", "acc"],
        ["token_duration", "∞"],
        ["token_renewable", "false"],
        ["token_policies", '["root"]'],
        ["identity_policies", "[]"],
        ["policies", '["root"]'],
        ["token_meta_user", "bob"],
    ]


def test_render_secret_json_is_the_whole_document_with_two_space_indent() -> None:
    document = {"request_id": "r", "data": {"a": 1}}
    assert (
        render_secret(document, "json")
        == '{\n  "request_id": "r",\n  "data": {\n    "a": 1\n  }\n}'
    )
    assert render_json([]) == "[]"
    assert render_secret({"data": {}}, "table") == ""


def test_render_list_table_and_json() -> None:
    assert render_list(["a", "b/"], "table") == "Keys\n----\na\nb/"
    assert render_list(["a"], "json") == '[\n  "a"\n]'


def test_render_yaml_quotes_what_yaml_would_misread() -> None:
    text = render_yaml({"b": [1, {"x": "yes"}], "a": "plain", "c": "a: b", "d": None})
    assert text.splitlines() == [
        "a: plain",
        "b:",
        "- 1",
        '- x: "yes"',
        'c: "a: b"',
        "d: null",
    ]


def test_field_value_prefers_auth_then_data() -> None:
    document = {
        "auth": {"client_token": "hvs.t", "accessor": "a"},
        "data": {"token": "shadowed", "other": 1},
        "lease_duration": 30,
    }
    assert field_value(document, "token") == "hvs.t"
    assert field_value(document, "other") == 1
    assert field_value(document, "refresh_interval") == 30
    assert field_value(document, "missing") is None


def test_pad_equal_signs_centres_the_header() -> None:
    assert pad_equal_signs("Secret Path", len("secret/data/creds")) == "== Secret Path =="
    assert pad_equal_signs("Data", 3) == "Data"
