"""Longest-prefix routing and path validation."""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.core.handling import validate_path
from strongroom.core.mounts import MountEntry, validate_mount_path
from strongroom.core.router import Route, Router
from strongroom.errors import InvalidPath, InvalidRequest


def _route(path: str, is_auth: bool = False) -> Route:
    entry = MountEntry(path=path, type="kv", uuid=path, accessor="a", is_auth=is_auth)
    fake: Any = object()
    return Route(entry=entry, backend=fake, storage=fake)


@pytest.mark.parametrize(
    ("path", "mount", "relative"),
    [
        ("secret/data/foo", "secret/", "data/foo"),
        ("secret", "secret/", ""),
        ("secret/", "secret/", ""),
        ("team/a/x/y", "team/a/", "x/y"),
        ("team/b/x", "team/", "b/x"),
        ("auth/userpass/login/bob", "auth/userpass/", "login/bob"),
    ],
)
def test_longest_prefix(path: str, mount: str, relative: str) -> None:
    router = Router()
    for name in ("secret/", "team/", "team/a/"):
        router.mount(_route(name))
    router.mount(_route("userpass/", is_auth=True))
    found = router.match(path)
    assert found is not None
    assert found[0].mount_point == mount
    assert found[1] == relative


def test_no_route() -> None:
    router = Router()
    router.mount(_route("secret/"))
    assert router.match("secrets/x") is None
    assert router.match("") is None


@pytest.mark.parametrize(
    "path", ["a/../b", "a/./b", "a//b", "..", ".", "/a", "a/\x00", "a/\x1fb", "", "/"]
)
def test_bad_paths(path: str) -> None:
    with pytest.raises(InvalidPath):
        validate_path(path)


@pytest.mark.parametrize("path", ["secret/data/x", "secret/metadata/", "a", "a.b/c..d/e"])
def test_good_paths(path: str) -> None:
    assert validate_path(path) == path


def test_mount_path_validation() -> None:
    assert validate_mount_path("/secret") == "secret/"
    assert validate_mount_path("a/b/") == "a/b/"
    for bad in ("", "a//b", "../x", "a b", "x/./y"):
        with pytest.raises(InvalidRequest):
            validate_mount_path(bad)
