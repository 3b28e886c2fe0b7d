"""The snapshot file format: round trip through parse, and every way a file can be bad."""

from __future__ import annotations

import struct

import orjson
import pytest

from strongroom.core.snapshots import MAGIC, parse_snapshot
from strongroom.errors import InvalidRequest
from strongroom.storage.bulk import digest_of

PAIRS = [("core/keyring", b"\x00k"), ("logical/x/a", b"v" * 100), ("é", b"")]


def build(pairs: list[tuple[str, bytes]], header: dict[str, object] | None = None) -> bytes:
    digest = digest_of(pairs)
    head = header or {
        "cluster_id": "c1",
        "created": 1.0,
        "count": digest.count,
        "sha256": digest.sha256,
    }
    body = b"".join(
        struct.pack(">I", len(k.encode())) + k.encode() + struct.pack(">I", len(v)) + v
        for k, v in pairs
    )
    return MAGIC + orjson.dumps(head) + b"\n" + body


def test_round_trip() -> None:
    snapshot = parse_snapshot(build(PAIRS))
    assert snapshot.cluster_id == "c1"
    assert list(snapshot.entries) == PAIRS
    assert "v" * 10 not in repr(snapshot)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"PK\x03\x04 a zip",
        MAGIC,
        MAGIC + b"not json\n",
        MAGIC + b'{"count": 1}\n',
        build(PAIRS)[:-1],  # truncated value
        build(PAIRS)[:-60],
        build(PAIRS) + b"\x00",  # trailing garbage
        build(PAIRS).replace(b"vvvv", b"vvvw", 1),  # a changed byte
        build(PAIRS, {"cluster_id": "c1", "count": 2, "sha256": digest_of(PAIRS).sha256}),
        build([*PAIRS, PAIRS[0]]),  # a duplicated key
    ],
)
def test_bad_snapshots_are_refused(data: bytes) -> None:
    with pytest.raises(InvalidRequest):
        parse_snapshot(data)
