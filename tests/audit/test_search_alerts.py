"""Streaming search (pure) and the denial counter behind alerts."""

from __future__ import annotations

import orjson
import pytest

from strongroom.audit import SearchQuery, parse_bound, search
from strongroom.audit.alerts import MAX_KEYS, AlertRule, DeniedCounter
from strongroom.errors import InvalidRequest


def line(**fields: object) -> bytes:
    entry = {
        "time": fields.pop("time", "2026-03-01T10:00:00.5Z"),
        "type": fields.pop("type", "request"),
        "seq": 1,
        "prev_hash": "",
        "auth": {"entity_id": fields.pop("entity", ""), "accessor": fields.pop("accessor", "")},
        "request": {
            "id": fields.pop("id", "r"),
            "operation": fields.pop("op", "read"),
            "path": fields.pop("path", "secret/data/a"),
            "remote_address": "10.1.1.1",
            "data": {"path": "hmac-sha256:aa"},
        },
    }
    entry.update(fields)
    return orjson.dumps(entry) + b"\n"


LOG = [
    line(id="1", path="secret/data/a", entity="e-1"),
    line(id="2", path="secret/data/b", op="update", error="permission denied"),
    line(id="3", path="sys/mounts", time="2026-03-02T00:00:00Z", error="internal error"),
    line(id="4", type="response", path="secret/data/a", entity="e-2"),
    b'{"time":"2026-03-01T10:00:01Z","type":"checkpoint","seq":9,"prev_hash":""}\n',
    b"garbage that is not json\n",
]


def ids(query: SearchQuery, lines: list[bytes] = LOG) -> list[str]:
    return [
        orjson.loads(found)["request"]["id"]
        for _, found in search(lines, query)
        if b'"request"' in found
    ]


def test_filters() -> None:
    assert ids(SearchQuery(path="secret/data/a")) == ["1", "4"]
    assert ids(SearchQuery(path="secret/*")) == ["1", "2", "4"]
    assert ids(SearchQuery(path="hmac-sha256:aa")) == []  # data's "path" key is not the path
    assert ids(SearchQuery(entity="e-1")) == ["1"]
    assert ids(SearchQuery(operation="update")) == ["2"]
    assert ids(SearchQuery(status="denied")) == ["2"]
    assert ids(SearchQuery(status="error")) == ["2", "3"]
    assert ids(SearchQuery(status="ok")) == ["1", "4"]
    assert ids(SearchQuery(types=frozenset({"response"}))) == ["4"]
    assert ids(SearchQuery(request_id="3")) == ["3"]
    assert ids(SearchQuery(since="2026-03-02T00:00:00")) == ["3"]
    assert ids(SearchQuery(until="2026-03-01T10:00:00")) == ["1", "2", "4"]
    assert ids(SearchQuery(contains=("hmac-sha256:aa",))) == ["1", "2", "3", "4"]
    numbers = [n for n, _ in search(LOG, SearchQuery(types=frozenset({"checkpoint"})))]
    assert numbers == [5]


def test_prefixed_lines() -> None:
    prefixed = [b"audit: " + raw for raw in LOG[:2]]
    assert [n for n, _ in search(prefixed, SearchQuery(entity="e-1"), prefix=b"audit: ")] == [1]


def test_parse_bound() -> None:
    assert parse_bound("2026-03-01") == "2026-03-01T00:00:00"
    assert parse_bound("2026-03-01T12:00:00.123Z") == "2026-03-01T12:00:00"
    assert parse_bound("2026-03-01T12:00:00+02:00") == "2026-03-01T10:00:00"
    assert parse_bound("2h", now=7200.0) == "1970-01-01T00:00:00"
    with pytest.raises(ValueError):
        parse_bound("yesterday")
    with pytest.raises(ValueError):
        SearchQuery(status="weird")


def test_one_alert_per_key_per_window() -> None:
    counter = DeniedCounter(AlertRule(threshold=3, window=10))
    fired = [counter.observe("entity_id", "e", t) for t in (0, 1, 2, 3, 4, 5)]
    assert [f is not None for f in fired] == [False, False, False, True, False, False]
    assert fired[3] is not None and fired[3]["count"] == 4
    assert counter.observe("entity_id", "other", 5) is None
    later = [counter.observe("entity_id", "e", t) for t in (14, 15, 16, 17)]
    assert [f is not None for f in later] == [False, False, False, True]


def test_old_denials_leave_the_window() -> None:
    counter = DeniedCounter(AlertRule(threshold=2, window=5))
    assert all(counter.observe("accessor", "a", t) is None for t in (0, 6, 12, 18))


def test_memory_is_bounded() -> None:
    counter = DeniedCounter(AlertRule(threshold=5, window=5))
    for i in range(MAX_KEYS + 100):
        counter.observe("remote_address", str(i), float(i) / 1000)
    assert len(counter) <= MAX_KEYS


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"threshold": 0}, "at least 1"),
        ({"threshold": 1, "window": 0}, "alert_window"),
        ({"threshold": 1, "webhook": "file:///etc/passwd"}, "http"),
    ],
)
def test_alert_rules_are_validated(kwargs: dict[str, object], words: str) -> None:
    with pytest.raises(InvalidRequest, match=words):
        AlertRule(**kwargs)  # type: ignore[arg-type]
