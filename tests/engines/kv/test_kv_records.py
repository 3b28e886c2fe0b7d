"""Pure KV v2 pieces: time and duration rendering, version bookkeeping, merge patch."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.engines.kv._data import merge_patch, strip_values
from strongroom.engines.kv._records import (
    EngineConfig,
    KeyMetadata,
    VersionMeta,
    add_version,
    deletion_time_for,
    format_duration,
    format_time,
)

S = 1_000_000_000


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (None, ""),
        (0, "1970-01-01T00:00:00Z"),
        (1521685446 * S + 945319214, "2018-03-22T02:24:06.945319214Z"),
        (1521685446 * S + 500_000_000, "2018-03-22T02:24:06.5Z"),
        (1521685446 * S + 1_000, "2018-03-22T02:24:06.000001Z"),
    ],
)
def test_format_time_is_go_rfc3339nano(ns, text):
    assert format_time(ns) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (45, "45s"), (300, "5m0s"), (3600, "1h0m0s"), (12319, "3h25m19s"), (-1, "-1s")],
)
def test_format_duration_is_go_duration_string(seconds, text):
    assert format_duration(seconds) == text


def test_add_version_slides_the_window():
    meta = KeyMetadata(key="k")
    pruned_all: list[int] = []
    for n in range(1, 13):
        meta, pruned = add_version(meta, n * S, None, 0)
        pruned_all += pruned
    assert meta.current_version == 12
    assert meta.oldest_version == 3
    assert sorted(meta.versions) == list(range(3, 13))
    assert pruned_all == [1, 2]
    assert meta.created_time == 1 * S and meta.updated_time == 12 * S


def test_add_version_keeps_created_time_of_precreated_metadata():
    meta = KeyMetadata(key="k", created_time=5, updated_time=5)
    meta, _ = add_version(meta, 9, None, 0)
    assert meta.created_time == 5 and meta.updated_time == 9


def test_deletion_time_rules():
    meta = KeyMetadata(key="k", delete_version_after=30)
    assert deletion_time_for(0, EngineConfig(), KeyMetadata(key="k")) is None
    assert deletion_time_for(0, EngineConfig(), meta) == 30 * S
    assert deletion_time_for(0, EngineConfig(delete_version_after=10), meta) == 10 * S
    assert deletion_time_for(0, EngineConfig(delete_version_after=60), meta) == 30 * S
    assert deletion_time_for(0, EngineConfig(delete_version_after=-1), meta) is None


def test_metadata_json_round_trip():
    meta = KeyMetadata(
        key="a/b",
        versions={1: VersionMeta(1, 2, False), 2: VersionMeta(3, None, True)},
        current_version=2,
        created_time=1,
        updated_time=3,
        max_versions=4,
        cas_required=True,
        delete_version_after=60,
        custom_metadata={"x": "y"},
    )
    assert KeyMetadata.from_json(meta.to_json()) == meta


# RFC 7396 appendix A
@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch_rfc7396_vectors(target, patch, result):
    assert merge_patch(target, patch) == result


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5))
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=10,
)
json_object = st.dictionaries(st.text(max_size=3), json_value, max_size=4)


@given(json_object, json_object)
def test_merge_patch_is_idempotent(target, patch):
    once = merge_patch(target, patch)
    assert merge_patch(once, patch) == once


@given(json_object)
def test_strip_values_keeps_keys_and_drops_every_value(data):
    stripped = strip_values(data, 0)
    assert set(stripped) == set(data)

    def leaves(value):
        if isinstance(value, dict):
            for item in value.values():
                yield from leaves(item)
        else:
            yield value

    assert all(leaf is None for leaf in leaves(stripped))


def test_add_version_carries_every_other_field():
    """add_version builds the record field by field: a field added to KeyMetadata later must
    not be silently dropped by it."""
    meta = KeyMetadata(
        key="a/b",
        versions={1: VersionMeta(created_time=5, deletion_time=None)},
        current_version=1,
        oldest_version=1,
        created_time=5,
        updated_time=5,
        max_versions=7,
        cas_required=True,
        delete_version_after=60,
        custom_metadata={"team": "x"},
    )
    updated, pruned = add_version(meta, 9, None, 0)
    assert pruned == []
    changed = {"versions", "current_version", "updated_time", "_times"}
    for f in dataclasses.fields(KeyMetadata):
        if f.name not in changed:
            assert getattr(updated, f.name) == getattr(meta, f.name), f.name
    assert (updated.current_version, updated.updated_time) == (2, 9)
