"""KV version 1: unversioned pass-through storage."""

from __future__ import annotations

import pytest

from strongroom.errors import InvalidPath, InvalidRequest, UnsupportedOperation
from strongroom.logical import Operation

pytestmark = pytest.mark.anyio


async def test_write_read_replace_delete(make_kv, storage):
    kv = await make_kv(version="1")
    assert await kv.write("my-secret", {"foo": "bar", "ttl": "1h"}) is None
    resp = await kv.read("my-secret")
    assert resp is not None and resp.data == {"foo": "bar", "ttl": "1h"}
    assert list(storage.data) == ["my-secret"]

    await kv.write("my-secret", {"zip": "zap"})  # a write replaces the whole secret
    resp = await kv.read("my-secret")
    assert resp is not None and resp.data == {"zip": "zap"}

    assert await kv.delete("my-secret") is None
    assert await kv.read("my-secret") is None
    assert await kv.delete("my-secret") is None


async def test_read_carries_the_ttl_hint_and_no_lease(make_kv):
    kv = await make_kv(version="1")
    await kv.write("plain", {"v": 1})
    await kv.write("hinted", {"v": 1, "ttl": "1h"})
    await kv.write("legacy", {"v": 1, "lease": 90})
    for path, ttl in (("plain", 2764800), ("hinted", 3600), ("legacy", 90)):
        resp = await kv.read(path)
        assert resp is not None and resp.secret is not None, path
        assert (resp.secret.ttl, resp.secret.renewable) == (ttl, False), path


async def test_write_refuses_an_unparsable_ttl(make_kv, storage):
    kv = await make_kv(version="1")
    for bad in ("soon", -5, True, {"h": 1}):
        with pytest.raises(InvalidRequest, match="failed to parse ttl"):
            await kv.write("s", {"v": 1, "ttl": bad})
    assert list(storage.data) == []


async def test_list_folders(make_kv):
    kv = await make_kv(version="1")
    for path in ("foo", "foo/bar", "foo/baz/qux"):
        await kv.write(path, {"v": 1})
    root = await kv.list("")
    assert root is not None and root.data == {"keys": ["foo", "foo/"]}
    sub = await kv.list("foo/")
    assert sub is not None and sub.data == {"keys": ["bar", "baz/"]}
    assert await kv.list("empty/") is None


async def test_existence_check(make_kv):
    kv = await make_kv(version="1")
    from strongroom.logical import Request

    req = Request(operation=Operation.UPDATE, path="a/b", data={"x": 1}, storage=kv.storage)
    assert await kv.backend.exists(req) is False
    await kv.write("a/b", {"x": 1})
    assert await kv.backend.exists(req) is True


async def test_body_is_raw_even_with_field_like_names(make_kv):
    kv = await make_kv(version="1")
    body = {"path": "elsewhere", "data": {"nested": True}, "options": {"cas": 0}}
    await kv.write("raw", body)
    resp = await kv.read("raw")
    assert resp is not None and resp.data == body


async def test_bad_requests(make_kv):
    kv = await make_kv(version="1")
    with pytest.raises(InvalidRequest, match="missing data fields"):
        await kv.write("x", {})
    with pytest.raises(InvalidRequest, match="missing path"):
        await kv.write("", {"a": 1})
    with pytest.raises(InvalidPath):
        await kv.write("a/", {"a": 1})
    with pytest.raises(InvalidPath):
        await kv.write("a/../b", {"a": 1})
    with pytest.raises(UnsupportedOperation):
        await kv.patch("x", {"a": 1})
    assert await kv.read("") is None
