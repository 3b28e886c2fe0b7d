"""The kv factory: version selection and the package's public names."""

from __future__ import annotations

import pytest

import strongroom.engines.kv as kv_package
from strongroom.engines import kv
from strongroom.errors import InvalidRequest, NotFound
from strongroom.logical import BackendKind

pytestmark = pytest.mark.anyio


def test_exported_members():
    assert kv_package.__all__ == ["factory"]
    assert all(hasattr(kv_package, name) for name in kv_package.__all__)


@pytest.mark.parametrize(
    ("mount_type", "options", "v2"),
    [
        ("kv", {}, False),
        ("kv", {"version": ""}, False),
        ("kv", {"version": "1"}, False),
        ("kv", {"version": "2"}, True),
        ("kv-v2", {}, True),
        ("kv-v2", {"version": "1"}, True),
    ],
)
async def test_version_selection(make_config, mount_type, options, v2):
    backend = await kv.factory(make_config(mount_type, **options))
    await backend.initialize()
    assert backend.kind is BackendKind.SECRET
    paths = [p.pattern for p in backend.paths]
    assert ("config" in paths) is v2


async def test_bad_version_is_refused(make_config):
    with pytest.raises(InvalidRequest, match="version"):
        await kv.factory(make_config("kv", version="3"))


async def test_help_is_described(make_kv):
    caller = await make_kv()
    help_text = caller.backend.describe_help("data/foo")["help"]
    assert "Key-Value" in help_text
    with pytest.raises(NotFound):
        await caller.read("foo")
