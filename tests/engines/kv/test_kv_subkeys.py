"""KV v2 subkeys/: the structure of a secret without its values."""

from __future__ import annotations

import pytest

from strongroom.errors import InvalidRequest

pytestmark = pytest.mark.anyio

DOC = {"foo": "abc", "bar": {"baz": "def", "deep": {"x": 1}}, "quux": {}, "list": [1, 2]}


async def test_subkeys_replace_leaves_with_null(make_kv):
    kv = await make_kv()
    await kv.write("data/s", {"data": DOC})
    resp = await kv.read("subkeys/s")
    assert resp is not None
    assert resp.data["subkeys"] == {
        "foo": None,
        "bar": {"baz": None, "deep": {"x": None}},
        "quux": None,
        "list": None,
    }
    assert resp.data["metadata"]["version"] == 1
    assert "abc" not in repr(resp.data)


@pytest.mark.parametrize(
    ("depth", "expected"),
    [
        ("1", {"foo": None, "bar": None, "quux": None, "list": None}),
        ("2", {"foo": None, "bar": {"baz": None, "deep": None}, "quux": None, "list": None}),
        ("3", {"foo": None, "bar": {"baz": None, "deep": {"x": None}}, "quux": None, "list": None}),
    ],
)
async def test_subkeys_depth(make_kv, depth, expected):
    kv = await make_kv()
    await kv.write("data/s", {"data": DOC})
    resp = await kv.read("subkeys/s", depth=depth)
    assert resp is not None and resp.data["subkeys"] == expected


async def test_subkeys_of_a_version_and_of_missing_ones(make_kv):
    kv = await make_kv()
    await kv.write("data/s", {"data": {"a": 1}})
    await kv.write("data/s", {"data": {"b": {"c": 2}}})
    first = await kv.read("subkeys/s", version="1")
    assert first is not None and first.data["subkeys"] == {"a": None}
    assert await kv.read("subkeys/s", version="5") is None
    assert await kv.read("subkeys/none") is None
    with pytest.raises(InvalidRequest, match="depth"):
        await kv.read("subkeys/s", depth="-1")


async def test_subkeys_of_deleted_version_is_404_with_metadata(make_kv):
    kv = await make_kv()
    await kv.write("data/s", {"data": {"a": 1}})
    await kv.delete("data/s")
    resp = await kv.read("subkeys/s")
    assert resp is not None and resp.status == 404
    assert resp.data is not None and resp.data["subkeys"] is None
    assert resp.data["metadata"]["deletion_time"] != ""
