"""Cubbyhole: per-token storage, isolation between tokens, destruction on revocation."""

from __future__ import annotations

import pytest

import strongroom.engines.cubbyhole as cubbyhole_package
from strongroom.engines.cubbyhole import destroy_token_storage
from strongroom.errors import InvalidPath, InvalidRequest, PermissionDenied

pytestmark = pytest.mark.anyio


def test_exported_members():
    assert sorted(cubbyhole_package.__all__) == ["destroy_token_storage", "factory"]


async def test_read_write_list_delete(make_cubbyhole, storage):
    alice = await make_cubbyhole("cub-alice")
    assert await alice.write("my-secret", {"foo": "bar"}) is None
    resp = await alice.read("my-secret")
    assert resp is not None and resp.data == {"foo": "bar"}
    assert list(storage.data) == ["cub-alice/my-secret"]

    await alice.write("foo/bar", {"a": 1})
    root = await alice.list("")
    assert root is not None and root.data == {"keys": ["foo/", "my-secret"]}
    sub = await alice.list("foo/")
    assert sub is not None and sub.data == {"keys": ["bar"]}

    assert await alice.delete("my-secret") is None
    assert await alice.read("my-secret") is None


async def test_tokens_are_isolated(make_cubbyhole):
    alice = await make_cubbyhole("cub-alice")
    bob = await make_cubbyhole("cub-bob")
    await alice.write("shared-name", {"owner": "alice"})
    assert await bob.read("shared-name") is None
    assert await bob.list("") is None
    await bob.write("shared-name", {"owner": "bob"})
    a = await alice.read("shared-name")
    b = await bob.read("shared-name")
    assert a is not None and a.data == {"owner": "alice"}
    assert b is not None and b.data == {"owner": "bob"}
    await bob.delete("shared-name")
    assert await alice.read("shared-name") is not None


async def test_no_token_or_bad_cubbyhole_id_is_refused(make_cubbyhole):
    for cubbyhole_id in (None, "", "a/b", ".."):
        caller = await make_cubbyhole(cubbyhole_id)
        with pytest.raises(PermissionDenied):
            await caller.read("x")
        with pytest.raises(PermissionDenied):
            await caller.write("x", {"a": 1})
        with pytest.raises(PermissionDenied):
            await caller.list("")


async def test_path_cannot_escape_the_token_prefix(make_cubbyhole):
    alice = await make_cubbyhole("cub-alice")
    for bad in ("../cub-bob/x", "a//b", "./x"):
        with pytest.raises(InvalidPath):
            await alice.read(bad)
    with pytest.raises(InvalidRequest, match="missing path"):
        await alice.write("", {"a": 1})
    with pytest.raises(InvalidRequest, match="missing data fields"):
        await alice.write("x", {})


async def test_destroy_token_storage_removes_only_that_token(make_cubbyhole, storage):
    alice = await make_cubbyhole("cub-alice")
    bob = await make_cubbyhole("cub-bob")
    for i in range(3):
        await alice.write(f"dir/{i}", {"i": i})
    await alice.write("top", {"a": 1})
    await bob.write("top", {"b": 1})
    await destroy_token_storage(storage, "cub-alice")
    assert list(storage.data) == ["cub-bob/top"]
    assert await alice.list("") is None
    with pytest.raises(ValueError, match="invalid cubbyhole id"):
        await destroy_token_storage(storage, "")
    with pytest.raises(ValueError, match="invalid cubbyhole id"):
        await destroy_token_storage(storage, "cub-bob/..")
