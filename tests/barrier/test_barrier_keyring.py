"""The keyring record: pure, no fixtures."""

from __future__ import annotations

import base64
import secrets

import orjson
import pytest

from strongroom import errors
from strongroom.barrier import Keyring, TermKey


def _keyring() -> Keyring:
    return Keyring.new(secrets.token_bytes(32), secrets.token_bytes(32), 100.0)


def test_new_keyring_has_term_one() -> None:
    ring = _keyring()
    assert ring.active_term == 1
    assert ring.active.install_time == 100.0
    assert ring.term(1) is ring.active
    assert ring.term(2) is None


def test_rotation_adds_a_term_and_keeps_old_ones() -> None:
    ring = _keyring()
    rotated = ring.rotated(secrets.token_bytes(32), 200.0).rotated(secrets.token_bytes(32), 300.0)
    assert [k.term for k in rotated.keys] == [1, 2, 3]
    assert rotated.active_term == 3
    assert rotated.term(1) == ring.term(1)
    assert rotated.root_key == ring.root_key
    assert ring.active_term == 1  # frozen: the original is unchanged


def test_round_trip() -> None:
    ring = _keyring().rotated(secrets.token_bytes(32), 250.5)
    again = Keyring.from_bytes(ring.to_bytes())
    assert again == ring
    record = orjson.loads(ring.to_bytes())
    assert base64.b64decode(record["root_key"]) == ring.root_key


def test_with_root_key() -> None:
    ring = _keyring()
    new_root = secrets.token_bytes(32)
    rekeyed = ring.with_root_key(new_root)
    assert rekeyed.root_key == new_root
    assert rekeyed.keys == ring.keys


def test_repr_never_shows_key_material() -> None:
    ring = _keyring()
    text = repr(ring)
    for secret in (ring.root_key, ring.active.value):
        assert secret.hex() not in text
        assert repr(secret) not in text
        assert base64.b64encode(secret).decode() not in text
    assert "term=1" in text


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[]",
        b'{"version": 2}',
        b'{"version": 1, "root_key": "AAAA", "keys": []}',
        b'{"version": 1, "root_key": 5, "keys": []}',
        b'{"version": 1, "root_key": "!!", "keys": []}',
    ],
)
def test_malformed_records_raise_internal_error(data: bytes) -> None:
    with pytest.raises(errors.InternalError) as info:
        Keyring.from_bytes(data)
    assert "AAAA" not in str(info.value)


def test_validation() -> None:
    key = secrets.token_bytes(32)
    with pytest.raises(errors.InternalError):
        TermKey(0, key, 0.0)
    with pytest.raises(errors.InternalError):
        TermKey(1, b"short", 0.0)
    with pytest.raises(errors.InternalError):
        Keyring(root_key=b"short", keys=(TermKey(1, key, 0.0),))
    with pytest.raises(errors.InternalError):
        Keyring(root_key=key, keys=())
    with pytest.raises(errors.InternalError):
        Keyring(root_key=key, keys=(TermKey(2, key, 0.0), TermKey(1, key, 0.0)))
    with pytest.raises(errors.InternalError):
        Keyring(root_key=key, keys=(TermKey(1, key, 0.0), TermKey(1, key, 0.0)))
