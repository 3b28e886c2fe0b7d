"""KV v2 data/: writes, versioned reads, check-and-set, merge patch, soft delete."""

from __future__ import annotations

import asyncio
import re

import pytest

from strongroom.errors import (
    CheckAndSetMismatch,
    InvalidPath,
    InvalidRequest,
    NotFound,
    UnsupportedOperation,
)
from strongroom.logical import Operation

pytestmark = pytest.mark.anyio

RFC3339_NANO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z")
SECRET = "hunter2-do-not-leak"


async def test_write_then_read_latest_and_by_version(make_kv, clock):
    kv = await make_kv()
    first = await kv.write("data/app/db", {"data": {"password": "one"}})
    assert first is not None and first.data == {
        "created_time": "2023-11-14T22:13:20Z",
        "custom_metadata": None,
        "deletion_time": "",
        "destroyed": False,
        "version": 1,
    }
    clock.advance(1.5)
    second = await kv.write("data/app/db", {"data": {"password": "two"}, "options": {}})
    assert second is not None and second.data["version"] == 2
    assert second.data["created_time"] == "2023-11-14T22:13:21.5Z"

    latest = await kv.read("data/app/db")
    assert latest is not None
    assert latest.data["data"] == {"password": "two"}
    assert latest.data["metadata"]["version"] == 2
    old = await kv.read("data/app/db", version="1")
    assert old is not None and old.data["data"] == {"password": "one"}
    assert old.data["metadata"] == {**first.data}


async def test_read_missing_secret_or_version_is_none(make_kv):
    kv = await make_kv()
    assert await kv.read("data/nope") is None
    await kv.write("data/x", {"data": {"a": 1}})
    assert await kv.read("data/x", version="7") is None
    assert await kv.read("data/") is None
    assert await kv.read("data/x/") is None


async def test_version_zero_or_negative_means_latest(make_kv):
    kv = await make_kv()
    await kv.write("data/x", {"data": {"n": 1}})
    await kv.write("data/x", {"data": {"n": 2}})
    for version in ("0", "-3"):
        resp = await kv.read("data/x", version=version)
        assert resp is not None and resp.data["data"] == {"n": 2}
    with pytest.raises(InvalidRequest, match="version"):
        await kv.read("data/x", version="two")


async def test_timestamps_have_nanosecond_rfc3339_format(make_kv, clock):
    kv = await make_kv()
    clock.advance(0.123456)
    resp = await kv.write("data/t", {"data": {"a": 1}})
    assert resp is not None
    assert RFC3339_NANO.fullmatch(resp.data["created_time"])
    assert resp.data["created_time"] == "2023-11-14T22:13:20.123456Z"


async def test_existence_check_drives_create_vs_update(make_kv):
    kv = await make_kv()
    request = _request(kv, "data/new")
    assert await kv.backend.exists(request) is False
    await kv.write("data/new", {"data": {"a": 1}})
    assert await kv.backend.exists(request) is True
    assert await kv.backend.exists(_request(kv, "config")) is None


async def test_write_refuses_missing_data_and_bad_paths(make_kv):
    kv = await make_kv()
    with pytest.raises(InvalidRequest, match="no data provided"):
        await kv.write("data/x", {"options": {}})
    with pytest.raises(InvalidRequest, match="no data provided"):
        await kv.write("data/x", {"data": None})
    with pytest.raises(InvalidRequest, match="expected an object"):
        await kv.write("data/x", {"data": ["a"]})
    with pytest.raises(InvalidRequest, match="missing path"):
        await kv.write("data/", {"data": {"a": 1}})
    with pytest.raises(InvalidPath):
        await kv.write("data/folder/", {"data": {"a": 1}})
    for bad in ("data/a//b", "data/a/../b", "data/./a"):
        with pytest.raises(InvalidPath):
            await kv.write(bad, {"data": {"a": 1}})
    with pytest.raises(InvalidRequest, match="options"):
        await kv.write("data/x", {"data": {"a": 1}, "options": "cas=1"})


async def test_cas_zero_only_creates(make_kv):
    kv = await make_kv()
    resp = await kv.write("data/c", {"data": {"a": 1}, "options": {"cas": 0}})
    assert resp is not None and resp.data["version"] == 1
    with pytest.raises(CheckAndSetMismatch, match="did not match the current version"):
        await kv.write("data/c", {"data": {"a": 2}, "options": {"cas": 0}})


async def test_cas_must_match_current_version(make_kv):
    kv = await make_kv()
    await kv.write("data/c", {"data": {"a": 1}})
    with pytest.raises(CheckAndSetMismatch):
        await kv.write("data/c", {"data": {"a": 2}, "options": {"cas": 2}})
    resp = await kv.write("data/c", {"data": {"a": 2}, "options": {"cas": "1"}})
    assert resp is not None and resp.data["version"] == 2
    with pytest.raises(InvalidRequest, match="error parsing check-and-set parameter"):
        await kv.write("data/c", {"data": {"a": 3}, "options": {"cas": "two"}})


async def test_cas_required_by_engine_config(make_kv):
    kv = await make_kv()
    await kv.write("config", {"cas_required": True})
    with pytest.raises(InvalidRequest, match="check-and-set parameter required"):
        await kv.write("data/c", {"data": {"a": 1}})
    resp = await kv.write("data/c", {"data": {"a": 1}, "options": {"cas": 0}})
    assert resp is not None and resp.data["version"] == 1


async def test_cas_required_by_key_metadata(make_kv):
    kv = await make_kv()
    await kv.write("data/c", {"data": {"a": 1}})
    await kv.write("metadata/c", {"cas_required": True})
    with pytest.raises(InvalidRequest, match="check-and-set parameter required"):
        await kv.write("data/c", {"data": {"a": 2}})
    with pytest.raises(InvalidRequest, match="check-and-set parameter required"):
        await kv.patch("data/c", {"data": {"a": 2}})
    await kv.write("data/other", {"data": {"a": 1}})  # other keys are unaffected


async def test_patch_is_a_json_merge_patch_creating_a_version(make_kv):
    kv = await make_kv()
    await kv.write(
        "data/p", {"data": {"keep": "k", "drop": "d", "nested": {"x": 1, "y": 2}, "list": [1]}}
    )
    resp = await kv.patch(
        "data/p", {"data": {"drop": None, "nested": {"y": None, "z": 3}, "list": [2], "new": "n"}}
    )
    assert resp is not None and resp.data["version"] == 2
    assert set(resp.data) == {
        "created_time",
        "custom_metadata",
        "deletion_time",
        "destroyed",
        "version",
    }
    read = await kv.read("data/p")
    assert read is not None
    assert read.data["data"] == {"keep": "k", "nested": {"x": 1, "z": 3}, "list": [2], "new": "n"}
    first = await kv.read("data/p", version="1")
    assert first is not None and first.data["data"]["drop"] == "d"


async def test_patch_honours_cas(make_kv):
    kv = await make_kv()
    await kv.write("data/p", {"data": {"a": 1}})
    with pytest.raises(CheckAndSetMismatch):
        await kv.patch("data/p", {"data": {"a": 2}, "options": {"cas": 0}})
    resp = await kv.patch("data/p", {"data": {"a": 2}, "options": {"cas": 1}})
    assert resp is not None and resp.data["version"] == 2


async def test_patch_needs_an_existing_live_latest_version(make_kv):
    kv = await make_kv()
    with pytest.raises(NotFound):
        await kv.patch("data/none", {"data": {"a": 1}})
    await kv.write("metadata/empty", {"max_versions": 3})  # metadata but no version
    with pytest.raises(NotFound):
        await kv.patch("data/empty", {"data": {"a": 1}})
    with pytest.raises(InvalidRequest, match="no data provided"):
        await kv.patch("data/none", {"options": {}})

    await kv.write("data/p", {"data": {"a": 1}})
    await kv.delete("data/p")
    resp = await kv.patch("data/p", {"data": {"a": 2}})
    assert resp is not None and resp.status == 404
    assert resp.data is not None and resp.data["version"] == 1 and resp.data["deletion_time"]

    await kv.write("destroy/p", {"versions": [1]})
    resp = await kv.patch("data/p", {"data": {"a": 2}})
    assert resp is not None and resp.status == 404 and resp.data["destroyed"] is True


async def test_delete_soft_deletes_latest_only(make_kv, clock):
    kv = await make_kv()
    await kv.write("data/d", {"data": {"v": 1}})
    await kv.write("data/d", {"data": {"v": 2}})
    clock.advance(5)
    assert await kv.delete("data/d") is None

    resp = await kv.read("data/d")
    assert resp is not None and resp.status == 404
    assert resp.data == {
        "data": None,
        "metadata": {
            "created_time": "2023-11-14T22:13:20Z",
            "custom_metadata": None,
            "deletion_time": "2023-11-14T22:13:25Z",
            "destroyed": False,
            "version": 2,
        },
    }
    older = await kv.read("data/d", version="1")
    assert older is not None and older.status is None and older.data["data"] == {"v": 1}

    clock.advance(5)  # deleting again keeps the first deletion time
    await kv.delete("data/d")
    meta = await kv.read("metadata/d")
    assert meta is not None and meta.data["versions"]["2"]["deletion_time"].endswith("25Z")
    assert await kv.delete("data/never") is None


async def test_write_after_delete_creates_a_live_version(make_kv):
    kv = await make_kv()
    await kv.write("data/d", {"data": {"v": 1}})
    await kv.delete("data/d")
    resp = await kv.write("data/d", {"data": {"v": 2}})
    assert resp is not None and resp.data["version"] == 2
    read = await kv.read("data/d")
    assert read is not None and read.status is None and read.data["data"] == {"v": 2}


async def test_concurrent_writes_get_distinct_versions(make_kv):
    kv = await make_kv()
    results = await asyncio.gather(*(kv.write("data/race", {"data": {"i": i}}) for i in range(8)))
    assert sorted(r.data["version"] for r in results if r is not None) == list(range(1, 9))
    meta = await kv.read("metadata/race")
    assert meta is not None and meta.data["current_version"] == 8


async def test_data_list_and_unknown_paths_are_not_found(make_kv):
    kv = await make_kv()
    with pytest.raises(NotFound, match="metadata/"):
        await kv.list("data/")
    for path in ("", "nonsense", "data", "metadata"):
        with pytest.raises(NotFound):
            await kv.read(path)
    with pytest.raises(UnsupportedOperation):
        await kv.delete("config")


async def test_secret_values_never_appear_in_errors_or_reprs(make_kv):
    kv = await make_kv()
    await kv.write("data/s", {"data": {"password": SECRET}})
    resp = await kv.read("data/s")
    assert SECRET not in repr(resp)
    for bad in (
        {"data": {"password": SECRET}, "options": {"cas": SECRET}},
        {"data": {"password": SECRET}, "options": {"cas": 9}},
        {"data": SECRET},
    ):
        with pytest.raises(InvalidRequest) as info:
            await kv.write("data/s", bad)
        assert SECRET not in str(info.value)
    request = _request(kv, "data/s", {"data": {"password": SECRET}})
    assert SECRET not in repr(request)


async def test_huge_integers_are_refused_without_echo(make_kv):
    kv = await make_kv()
    with pytest.raises(InvalidRequest, match="cannot be stored") as info:
        await kv.write("data/big", {"data": {"n": 2**80}})
    assert str(2**80) not in str(info.value)


def _request(kv, path, data=None):
    from strongroom.logical import Request

    return Request(operation=Operation.UPDATE, path=path, data=data or {}, storage=kv.storage)
