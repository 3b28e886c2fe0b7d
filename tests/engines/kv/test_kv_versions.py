"""KV v2 version lifecycle: delete/undelete/destroy, max_versions pruning, delete_version_after."""

from __future__ import annotations

import pytest

from strongroom.errors import InvalidRequest

pytestmark = pytest.mark.anyio


async def _versions(kv, path):
    meta = await kv.read(f"metadata/{path}")
    assert meta is not None
    return meta.data


def _version_records(storage):
    return sorted(k for k in storage.data if k.startswith("versions/"))


async def test_delete_and_undelete_listed_versions(make_kv, clock):
    kv = await make_kv()
    for i in range(3):
        await kv.write("data/s", {"data": {"i": i}})
    clock.advance(1)
    assert await kv.write("delete/s", {"versions": [1, 3, 99]}) is None
    meta = await _versions(kv, "s")
    assert meta["versions"]["1"]["deletion_time"] == "2023-11-14T22:13:21Z"
    assert meta["versions"]["2"]["deletion_time"] == ""
    assert meta["versions"]["3"]["deletion_time"] == "2023-11-14T22:13:21Z"
    read = await kv.read("data/s")
    assert read is not None and read.status == 404

    assert await kv.write("undelete/s", {"versions": "1,3"}) is None
    meta = await _versions(kv, "s")
    assert all(v["deletion_time"] == "" for v in meta["versions"].values())
    read = await kv.read("data/s")
    assert read is not None and read.status is None and read.data["data"] == {"i": 2}


async def test_destroy_removes_data_and_keeps_metadata(make_kv, storage):
    kv = await make_kv()
    await kv.write("data/s", {"data": {"i": 1}})
    await kv.write("data/s", {"data": {"i": 2}})
    assert len(_version_records(storage)) == 2
    assert await kv.write("destroy/s", {"versions": [1]}) is None
    assert len(_version_records(storage)) == 1

    meta = await _versions(kv, "s")
    assert meta["versions"]["1"]["destroyed"] is True
    assert meta["current_version"] == 2
    read = await kv.read("data/s", version="1")
    assert read is not None and read.status == 404
    assert read.data == {"data": None, "metadata": {**read.data["metadata"], "destroyed": True}}

    # a destroyed version cannot be undeleted or soft-deleted
    await kv.write("undelete/s", {"versions": [1]})
    await kv.write("delete/s", {"versions": [1]})
    meta = await _versions(kv, "s")
    assert meta["versions"]["1"] == {
        **meta["versions"]["1"],
        "destroyed": True,
        "deletion_time": "",
    }


async def test_destroy_of_soft_deleted_latest(make_kv, storage):
    kv = await make_kv()
    await kv.write("data/s", {"data": {"i": 1}})
    await kv.delete("data/s")
    await kv.write("destroy/s", {"versions": [1]})
    assert _version_records(storage) == []
    assert await kv.delete("data/s") is None  # nothing left to delete


async def test_versions_field_is_required_and_typed(make_kv):
    kv = await make_kv()
    for path in ("delete/s", "undelete/s", "destroy/s"):
        with pytest.raises(InvalidRequest, match="no version number provided"):
            await kv.write(path, {})
        with pytest.raises(InvalidRequest, match="no version number provided"):
            await kv.write(path, {"versions": []})
        with pytest.raises(InvalidRequest, match="expected a list of integers"):
            await kv.write(path, {"versions": ["one"]})
    # unknown secrets are a no-op, like Vault
    assert await kv.write("destroy/unknown", {"versions": 1}) is None


async def test_default_max_versions_keeps_ten(make_kv, storage):
    kv = await make_kv()
    for i in range(12):
        await kv.write("data/m", {"data": {"i": i}})
    meta = await _versions(kv, "m")
    assert meta["current_version"] == 12
    assert meta["oldest_version"] == 3
    assert sorted(meta["versions"], key=int) == [str(n) for n in range(3, 13)]
    assert len(_version_records(storage)) == 10
    assert await kv.read("data/m", version="2") is None
    old = await kv.read("data/m", version="3")
    assert old is not None and old.data["data"] == {"i": 2}


async def test_oldest_version_bookkeeping_matches_vault(make_kv):
    kv = await make_kv()
    await kv.write("config", {"max_versions": 3})
    expected_oldest = {1: 0, 2: 0, 3: 1, 4: 2, 5: 3}
    for n in range(1, 6):
        await kv.write("data/o", {"data": {"n": n}})
        meta = await _versions(kv, "o")
        assert meta["oldest_version"] == expected_oldest[n], n
        kept = sorted(int(v) for v in meta["versions"])
        assert kept == list(range(max(1, n - 2), n + 1))


async def test_lowering_key_max_versions_prunes_on_next_write(make_kv, storage):
    kv = await make_kv()
    for i in range(6):
        await kv.write("data/k", {"data": {"i": i}})
    await kv.write("metadata/k", {"max_versions": 2})
    assert len((await _versions(kv, "k"))["versions"]) == 6  # not until the next write
    await kv.write("data/k", {"data": {"i": 6}})
    meta = await _versions(kv, "k")
    assert sorted(meta["versions"], key=int) == ["6", "7"]
    assert meta["oldest_version"] == 6
    assert len(_version_records(storage)) == 2


async def test_larger_of_engine_and_key_max_versions_wins(make_kv):
    kv = await make_kv()
    await kv.write("config", {"max_versions": 4})
    await kv.write("metadata/small", {"max_versions": 2})
    await kv.write("metadata/big", {"max_versions": 6})
    for i in range(8):
        await kv.write("data/small", {"data": {"i": i}})
        await kv.write("data/big", {"data": {"i": i}})
    assert len((await _versions(kv, "small"))["versions"]) == 4
    assert len((await _versions(kv, "big"))["versions"]) == 6


async def test_write_and_prune_happen_in_one_transaction(make_kv, storage):
    kv = await make_kv()
    await kv.write("config", {"max_versions": 1})
    await kv.write("data/t", {"data": {"i": 0}})
    before = storage.transactions
    await kv.write("data/t", {"data": {"i": 1}})
    assert storage.transactions == before + 1
    assert len(_version_records(storage)) == 1


async def test_engine_delete_version_after_expires_versions(make_kv, clock):
    kv = await make_kv()
    await kv.write("config", {"delete_version_after": "1h"})
    resp = await kv.write("data/e", {"data": {"a": 1}})
    assert resp is not None and resp.data["deletion_time"] == "2023-11-14T23:13:20Z"
    live = await kv.read("data/e")
    assert live is not None and live.status is None  # deletion time is in the future

    clock.advance(3600)
    gone = await kv.read("data/e")
    assert gone is not None and gone.status == 404
    assert gone.data["metadata"]["deletion_time"] == "2023-11-14T23:13:20Z"

    # undelete re-arms the timer from now
    await kv.write("undelete/e", {"versions": [1]})
    meta = await _versions(kv, "e")
    assert meta["versions"]["1"]["deletion_time"] == "2023-11-15T00:13:20Z"
    back = await kv.read("data/e")
    assert back is not None and back.status is None


async def test_smaller_non_zero_delete_version_after_wins(make_kv):
    kv = await make_kv()
    await kv.write("config", {"delete_version_after": "2h"})
    await kv.write("metadata/short", {"delete_version_after": "30m"})
    await kv.write("metadata/long", {"delete_version_after": "5h"})
    short = await kv.write("data/short", {"data": {"a": 1}})
    long = await kv.write("data/long", {"data": {"a": 1}})
    assert short is not None and short.data["deletion_time"] == "2023-11-14T22:43:20Z"
    assert long is not None and long.data["deletion_time"] == "2023-11-15T00:13:20Z"


async def test_key_delete_version_after_without_engine_setting(make_kv, clock):
    kv = await make_kv()
    await kv.write("metadata/k", {"delete_version_after": 60})
    await kv.write("data/k", {"data": {"a": 1}})
    clock.advance(59)
    live = await kv.read("data/k")
    assert live is not None and live.status is None
    clock.advance(1)
    dead = await kv.read("data/k")
    assert dead is not None and dead.status == 404
    sub = await kv.read("subkeys/k")
    assert sub is not None and sub.status == 404 and sub.data["subkeys"] is None


async def test_negative_engine_delete_version_after_disables_it(make_kv):
    kv = await make_kv()
    await kv.write("config", {"delete_version_after": "-1s"})
    await kv.write("metadata/k", {"delete_version_after": "10s"})
    resp = await kv.write("data/k", {"data": {"a": 1}})
    assert resp is not None and resp.data["deletion_time"] == ""
    config = await kv.read("config")
    assert config is not None and config.data["delete_version_after"] == "-1s"
    await kv.write("config", {"delete_version_after": "0s"})
    config = await kv.read("config")
    assert config is not None and config.data["delete_version_after"] == "0s"


async def test_soft_delete_overrides_a_future_deletion_time(make_kv, clock):
    kv = await make_kv()
    await kv.write("config", {"delete_version_after": "1h"})
    await kv.write("data/f", {"data": {"a": 1}})
    clock.advance(10)
    await kv.delete("data/f")
    meta = await _versions(kv, "f")
    assert meta["versions"]["1"]["deletion_time"] == "2023-11-14T22:13:30Z"


async def test_lifecycle_as_hvac_drives_it(make_kv):
    """The request bodies hvac 2.4 sends, in the order an application would."""
    kv = await make_kv()
    first = await kv.write("data/life/app", {"options": {}, "data": {"pw": "one"}})
    assert first is not None and first.data["version"] == 1
    await kv.write("data/life/app", {"options": {"cas": 1}, "data": {"pw": "two"}})
    with pytest.raises(InvalidRequest):
        await kv.write("data/life/app", {"options": {"cas": 1}, "data": {"pw": "three"}})
    # hvac's patch(): read, update the dict, write back with cas
    latest = await kv.read("data/life/app")
    assert latest is not None
    merged = {**latest.data["data"], "user": "u"}
    version = latest.data["metadata"]["version"]
    await kv.write("data/life/app", {"options": {"cas": version}, "data": merged})
    await kv.write("delete/life/app", {"versions": [1]})
    await kv.write("undelete/life/app", {"versions": [1]})
    await kv.write("destroy/life/app", {"versions": [2]})
    await kv.write(
        "metadata/life/app",
        {"delete_version_after": "0s", "max_versions": 2, "custom_metadata": {"owner": "ops"}},
    )
    meta = await _versions(kv, "life/app")
    assert meta["max_versions"] == 2 and meta["custom_metadata"] == {"owner": "ops"}
    assert meta["versions"]["2"]["destroyed"] is True
    await kv.delete("data/life/app")
    gone = await kv.read("data/life/app")
    assert gone is not None and gone.status == 404
    listed = await kv.list("metadata/life/")
    assert listed is not None and listed.data["keys"] == ["app"]
    await kv.delete("metadata/life/app")
    assert await kv.read("metadata/life/app") is None
