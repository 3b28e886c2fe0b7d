"""Salted HMAC and the walk over request/response data (Vault's hashstructure rules)."""

from __future__ import annotations

import datetime
import hashlib
import hmac

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.audit import HMAC_PREFIX, Salt, hash_data
from strongroom.audit.hashing import MAX_DEPTH

SALT = Salt(b"s" * 32)


def h(value: str) -> str:
    return HMAC_PREFIX + hmac.new(b"s" * 32, value.encode(), hashlib.sha256).hexdigest()


def test_known_answer() -> None:
    assert SALT.hmac("hunter2") == h("hunter2")
    assert SALT.hmac("hunter2").startswith("hmac-sha256:") and len(SALT.hmac("")) == 12 + 64


def test_the_salt_keys_the_hmac_and_hides_itself() -> None:
    assert Salt(b"t" * 32).hmac("x") != SALT.hmac("x")
    assert "ss" not in repr(SALT)
    with pytest.raises(ValueError):
        Salt(b"short")


def test_strings_are_hashed_keys_and_other_leaves_are_not() -> None:
    data = {
        "password": "p",
        "n": 3,
        "f": 1.5,
        "ok": True,
        "nothing": None,
        "list": ["a", 2, {"k": "v"}],
        "nested": {"deeper": {"s": "x"}},
    }
    out = hash_data(data, SALT.hmac)
    assert out == {
        "password": h("p"),
        "n": 3,
        "f": 1.5,
        "ok": True,
        "nothing": None,
        "list": [h("a"), 2, {"k": h("v")}],
        "nested": {"deeper": {"s": h("x")}},
    }


def test_the_input_is_never_mutated() -> None:
    data = {"a": ["x", {"b": "y"}], "c": ("t",)}
    frozen = orjson.dumps(data)
    out = hash_data(data, SALT.hmac)
    assert orjson.dumps(data) == frozen
    assert out["a"] is not data["a"] and out["a"][1] is not data["a"][1]


def test_non_hmac_keys_keep_their_innermost_key_in_clear() -> None:
    data = {"username": "u", "password": "p", "tags": ["a", "b"], "meta": {"username": "n"}}
    out = hash_data(data, SALT.hmac, frozenset({"username", "tags"}))
    assert out["username"] == "u" and out["password"] == h("p")
    assert out["tags"] == ["a", "b"]  # list items sit under their map key
    assert out["meta"] == {"username": "n"}
    # a nested map's own keys decide: "meta" is not exempt, but its "username" is


def test_unknown_types_are_hashed_through_their_text() -> None:
    when = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    out = hash_data({"when": when, "raw": b"\x00\x01", "obj": object}, SALT.hmac)
    assert out["when"] == h(when.isoformat())
    assert out["raw"] == h("AAE=")
    assert out["obj"].startswith(HMAC_PREFIX)


def test_deep_structures_are_hashed_whole_not_walked() -> None:
    deep: object = "secret"
    for _ in range(300):  # as deep as http/ lets a body be
        deep = [deep]
    out = hash_data({"d": deep}, SALT.hmac)
    text = orjson.dumps({"entry": {"request": {"data": out}}}).decode()  # within orjson's limit
    assert "secret" not in text
    assert text.count("[") == MAX_DEPTH


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30,
)


@given(st.dictionaries(st.text(), json_values, max_size=6))
def test_no_string_survives_in_clear(data: dict[str, object]) -> None:
    out = hash_data(data, SALT.hmac)

    def leaves(value: object) -> list[object]:
        if isinstance(value, dict):
            return [x for v in value.values() for x in leaves(v)]
        if isinstance(value, list):
            return [x for v in value for x in leaves(v)]
        return [value]

    for leaf in leaves(out):
        if isinstance(leaf, str):
            assert leaf.startswith(HMAC_PREFIX) and len(leaf) == 76
    assert list(out) == list(data)
