"""KV v2 metadata/ (read, write, patch, delete, list) and config."""

from __future__ import annotations

import pytest

from strongroom.errors import InvalidPath, InvalidRequest, NotFound

pytestmark = pytest.mark.anyio


async def test_metadata_read_shape(make_kv, clock):
    kv = await make_kv()
    await kv.write("data/a/b", {"data": {"x": 1}})
    clock.advance(2)
    await kv.write("data/a/b", {"data": {"x": 2}})
    resp = await kv.read("metadata/a/b")
    assert resp is not None
    assert resp.data == {
        "cas_required": False,
        "created_time": "2023-11-14T22:13:20Z",
        "current_version": 2,
        "custom_metadata": None,
        "delete_version_after": "0s",
        "max_versions": 0,
        "oldest_version": 0,
        "updated_time": "2023-11-14T22:13:22Z",
        "versions": {
            "1": {"created_time": "2023-11-14T22:13:20Z", "deletion_time": "", "destroyed": False},
            "2": {"created_time": "2023-11-14T22:13:22Z", "deletion_time": "", "destroyed": False},
        },
    }
    assert await kv.read("metadata/missing") is None
    assert await kv.read("metadata/") is None


async def test_metadata_write_before_any_data(make_kv, clock):
    kv = await make_kv()
    resp = await kv.write(
        "metadata/pre",
        {
            "max_versions": 5,
            "cas_required": False,
            "delete_version_after": "3h25m19s",
            "custom_metadata": {"owner": "jdoe", "mission_critical": False},
        },
    )
    assert resp is None
    meta = await kv.read("metadata/pre")
    assert meta is not None
    assert meta.data["current_version"] == 0
    assert meta.data["versions"] == {}
    assert meta.data["created_time"] == meta.data["updated_time"] == "2023-11-14T22:13:20Z"
    assert meta.data["delete_version_after"] == "3h25m19s"
    assert meta.data["custom_metadata"] == {"owner": "jdoe", "mission_critical": "false"}
    assert await kv.read("data/pre") is None

    clock.advance(1)
    written = await kv.write("data/pre", {"data": {"a": 1}, "options": {"cas": 0}})
    assert written is not None
    assert written.data["custom_metadata"] == {"owner": "jdoe", "mission_critical": "false"}
    meta = await kv.read("metadata/pre")
    assert meta is not None
    assert meta.data["created_time"] == "2023-11-14T22:13:20Z"
    assert meta.data["updated_time"] == "2023-11-14T22:13:21Z"
    read = await kv.read("data/pre")
    assert read is not None and read.data["metadata"]["custom_metadata"]["owner"] == "jdoe"


async def test_metadata_write_only_changes_given_fields(make_kv):
    kv = await make_kv()
    await kv.write("metadata/k", {"max_versions": 4, "custom_metadata": {"a": "1"}})
    await kv.write("metadata/k", {"cas_required": True})
    meta = await kv.read("metadata/k")
    assert meta is not None
    assert meta.data["max_versions"] == 4
    assert meta.data["cas_required"] is True
    assert meta.data["custom_metadata"] == {"a": "1"}
    assert await kv.write("metadata/nothing", {}) is None
    assert await kv.read("metadata/nothing") is None  # an empty write creates nothing


async def test_metadata_write_validation(make_kv):
    kv = await make_kv()
    with pytest.raises(InvalidRequest, match="missing path"):
        await kv.write("metadata/", {"max_versions": 1})
    with pytest.raises(InvalidPath):
        await kv.write("metadata/a/", {"max_versions": 1})
    with pytest.raises(InvalidRequest, match="max_versions"):
        await kv.write("metadata/a", {"max_versions": -1})
    with pytest.raises(InvalidRequest, match="delete_version_after"):
        await kv.write("metadata/a", {"delete_version_after": "-5s"})
    with pytest.raises(InvalidRequest, match="custom_metadata"):
        await kv.write("metadata/a", {"custom_metadata": ["x"]})


@pytest.mark.parametrize(
    ("custom", "message"),
    [
        ({str(i): "v" for i in range(65)}, "at most 64 keys"),
        ({"k" * 129: "v"}, "0 < len\\(key\\) <= 128"),
        ({"k": "v" * 513}, "0 < len\\(value\\) <= 512"),
        ({"k": ""}, "0 < len\\(value\\) <= 512"),
        ({"k": None}, "0 < len\\(value\\) <= 512"),
        ({"k": "bell\x07"}, "unprintable"),
        ({"k": {"nested": "x"}}, "values must be strings"),
    ],
)
async def test_custom_metadata_limits(make_kv, custom, message):
    kv = await make_kv()
    with pytest.raises(InvalidRequest, match=message) as info:
        await kv.write("metadata/c", {"custom_metadata": custom})
    assert "v" * 513 not in str(info.value)
    assert "bell" not in str(info.value)


async def test_custom_metadata_at_the_limits_is_accepted(make_kv):
    kv = await make_kv()
    custom = {f"{i:0>128}": "v" * 512 for i in range(64)}
    await kv.write("metadata/c", {"custom_metadata": custom})
    meta = await kv.read("metadata/c")
    assert meta is not None and meta.data["custom_metadata"] == custom


async def test_cas_required_false_under_engine_mandate_warns(make_kv):
    kv = await make_kv()
    await kv.write("config", {"cas_required": True})
    resp = await kv.write("metadata/k", {"cas_required": False})
    assert resp is not None and resp.data is None
    assert resp.warnings and "mandated by backend config" in resp.warnings[0]
    with pytest.raises(InvalidRequest, match="required"):
        await kv.write("data/k", {"data": {"a": 1}})


async def test_metadata_patch_merges(make_kv):
    kv = await make_kv()
    with pytest.raises(NotFound):
        await kv.patch("metadata/none", {"max_versions": 3})
    await kv.write(
        "metadata/p",
        {"max_versions": 5, "cas_required": True, "custom_metadata": {"a": "1", "b": "2"}},
    )
    await kv.patch("metadata/p", {"max_versions": 7, "custom_metadata": {"b": None, "c": "3"}})
    meta = await kv.read("metadata/p")
    assert meta is not None
    assert meta.data["max_versions"] == 7
    assert meta.data["cas_required"] is True
    assert meta.data["custom_metadata"] == {"a": "1", "c": "3"}

    await kv.patch("metadata/p", {"cas_required": None, "custom_metadata": None})
    meta = await kv.read("metadata/p")
    assert meta is not None
    assert meta.data["cas_required"] is False
    assert meta.data["custom_metadata"] is None
    assert meta.data["max_versions"] == 7

    too_many = {str(i): "v" for i in range(64)}
    with pytest.raises(InvalidRequest, match="at most 64 keys"):
        await kv.patch("metadata/p", {"custom_metadata": {**too_many, "extra": "x"}})


async def test_metadata_patch_does_not_create_a_version(make_kv):
    kv = await make_kv()
    await kv.write("data/p", {"data": {"a": 1}})
    await kv.patch("metadata/p", {"delete_version_after": "1m"})
    meta = await kv.read("metadata/p")
    assert meta is not None
    assert meta.data["current_version"] == 1
    assert meta.data["delete_version_after"] == "1m0s"


async def test_metadata_delete_removes_every_record(make_kv, storage):
    kv = await make_kv()
    for i in range(3):
        await kv.write("data/gone", {"data": {"i": i}})
    await kv.write("data/kept", {"data": {"i": 0}})
    assert await kv.delete("metadata/gone") is None
    assert await kv.read("metadata/gone") is None
    assert await kv.read("data/gone") is None
    assert sorted(storage.data) == [
        "metadata/kept",
        *sorted(k for k in storage.data if k.startswith("versions/")),
    ]
    assert len([k for k in storage.data if k.startswith("versions/")]) == 1
    assert await kv.delete("metadata/gone") is None
    # the path is free again and starts over at version 1
    resp = await kv.write("data/gone", {"data": {"i": 9}})
    assert resp is not None and resp.data["version"] == 1


async def test_list_shows_keys_and_folders(make_kv):
    kv = await make_kv()
    for path in ("foo", "foo/bar", "foo/baz/qux", "zed"):
        await kv.write(f"data/{path}", {"data": {"a": 1}})
    root = await kv.list("metadata/")
    assert root is not None and root.data == {"keys": ["foo", "foo/", "zed"]}
    sub = await kv.list("metadata/foo/")
    assert sub is not None and sub.data == {"keys": ["bar", "baz/"]}
    assert await kv.list("metadata/nothing/") is None
    # soft-deleted and destroyed secrets are still listed; deleted metadata is not
    await kv.delete("data/zed")
    await kv.delete("metadata/foo/bar")
    sub = await kv.list("metadata/foo/")
    assert sub is not None and sub.data == {"keys": ["baz/"]}
    root = await kv.list("metadata/")
    assert root is not None and "zed" in root.data["keys"]


async def test_list_refuses_bad_segments(make_kv):
    kv = await make_kv()
    with pytest.raises(InvalidPath):
        await kv.list("metadata/a/../")


async def test_config_defaults_and_updates(make_kv):
    kv = await make_kv()
    config = await kv.read("config")
    assert config is not None
    assert config.data == {"cas_required": False, "delete_version_after": "0s", "max_versions": 0}
    # hvac's configure() sends all three
    await kv.write(
        "config", {"max_versions": 5, "cas_required": False, "delete_version_after": "3h25m19s"}
    )
    config = await kv.read("config")
    assert config is not None
    assert config.data == {
        "cas_required": False,
        "delete_version_after": "3h25m19s",
        "max_versions": 5,
    }
    await kv.write("config", {"cas_required": "true"})
    config = await kv.read("config")
    assert config is not None and config.data["max_versions"] == 5
    assert config.data["cas_required"] is True
    with pytest.raises(InvalidRequest, match="max_versions"):
        await kv.write("config", {"max_versions": -2})
    with pytest.raises(InvalidRequest, match="delete_version_after"):
        await kv.write("config", {"delete_version_after": "soon"})
