"""The AES-GCM barrier over an in-memory physical storage."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

import pytest

from strongroom import errors
from strongroom.barrier import (
    KEYRING_PATH,
    RESERVED_PATHS,
    ROOT_KEY_PATH,
    SEAL_CONFIG_PATH,
    AESGCMBarrier,
    KeyStatus,
    decrypt_blob,
    encrypt_blob,
)
from strongroom.clock import FakeClock
from strongroom.logical import StorageOp

T = TypeVar("T")
FLAT = "cipher: message authentication failed"


class MemStorage:
    """A tiny in-memory Storage (physical side) for tests."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.transactions: list[list[StorageOp]] = []

    async def get(self, key: str) -> bytes | None:
        return self.data.get(key)

    async def put(self, key: str, value: bytes) -> None:
        self.data[key] = value

    async def delete(self, key: str) -> None:
        self.data.pop(key, None)

    async def list(self, prefix: str) -> list[str]:
        children = set()
        for key in self.data:
            if key.startswith(prefix):
                head, sep, _ = key[len(prefix) :].partition("/")
                children.add(head + sep)
        return sorted(children)

    async def transaction(self, ops: Sequence[StorageOp]) -> None:
        self.transactions.append(list(ops))
        for op in ops:
            if op.value is None:
                self.data.pop(op.key, None)
            else:
                self.data[op.key] = op.value


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


MakeBarrier = Callable[..., tuple[MemStorage, AESGCMBarrier, bytes]]


@pytest.fixture
def make_barrier() -> MakeBarrier:
    """Factory: (physical, barrier, root_key), initialized and unsealed unless told not to."""

    def make(initialize: bool = True) -> tuple[MemStorage, AESGCMBarrier, bytes]:
        physical = MemStorage()
        barrier = AESGCMBarrier(physical, FakeClock())
        root_key = secrets.token_bytes(32)
        if initialize:
            run(barrier.initialize(root_key))
        return physical, barrier, root_key

    return make


def test_sealed_barrier_refuses_everything(make_barrier: MakeBarrier) -> None:
    _, barrier, _ = make_barrier(initialize=False)
    assert barrier.sealed
    for coro in (
        barrier.get("a"),
        barrier.put("a", b"x"),
        barrier.delete("a"),
        barrier.list(""),
        barrier.transaction([StorageOp("a", b"x")]),
    ):
        with pytest.raises(errors.Sealed):
            run(coro)
    with pytest.raises(errors.Sealed):
        barrier.key_status()
    with pytest.raises(errors.Sealed):
        _ = barrier.root_key


def test_initialize_unseals_and_round_trips(make_barrier: MakeBarrier) -> None:
    physical, barrier, _ = make_barrier()
    assert not barrier.sealed
    assert run(barrier.initialized())
    run(barrier.put("secret/a", b"hello"))
    assert run(barrier.get("secret/a")) == b"hello"
    assert run(barrier.get("secret/missing")) is None
    stored = physical.data["secret/a"]
    assert b"hello" not in stored
    assert stored[:4] == (1).to_bytes(4, "big")  # term 1
    assert len(stored) == 4 + 12 + len(b"hello") + 16
    run(barrier.delete("secret/a"))
    assert run(barrier.get("secret/a")) is None


def test_same_plaintext_encrypts_differently(make_barrier: MakeBarrier) -> None:
    physical, barrier, _ = make_barrier()
    run(barrier.put("a", b"same"))
    run(barrier.put("b", b"same"))
    assert physical.data["a"] != physical.data["b"]


def test_initialize_twice_refused(make_barrier: MakeBarrier) -> None:
    _, barrier, root_key = make_barrier()
    with pytest.raises(errors.InvalidRequest, match="already initialized"):
        run(barrier.initialize(root_key))


def test_ciphertext_copied_to_another_path_fails(make_barrier: MakeBarrier) -> None:
    physical, barrier, _ = make_barrier()
    run(barrier.put("logical/a/secret", b"payload"))
    physical.data["logical/b/secret"] = physical.data["logical/a/secret"]
    with pytest.raises(errors.CryptoError) as info:
        run(barrier.get("logical/b/secret"))
    assert str(info.value) == FLAT
    assert run(barrier.get("logical/a/secret")) == b"payload"


@pytest.mark.parametrize("position", [0, 4, 16, -1])
def test_tampered_ciphertext_fails(make_barrier: MakeBarrier, position: int) -> None:
    physical, barrier, _ = make_barrier()
    run(barrier.put("k", b"payload"))
    blob = bytearray(physical.data["k"])
    blob[position] ^= 0x01
    physical.data["k"] = bytes(blob)
    with pytest.raises(errors.CryptoError):
        run(barrier.get("k"))


def test_truncated_ciphertext_fails(make_barrier: MakeBarrier) -> None:
    physical, barrier, _ = make_barrier()
    physical.data["k"] = b"\x00\x00\x00\x01short"
    with pytest.raises(errors.CryptoError, match=FLAT):
        run(barrier.get("k"))


def test_unknown_term_fails(make_barrier: MakeBarrier) -> None:
    physical, barrier, _ = make_barrier()
    run(barrier.put("k", b"payload"))
    physical.data["k"] = (7).to_bytes(4, "big") + physical.data["k"][4:]
    with pytest.raises(errors.CryptoError, match="term 7"):
        run(barrier.get("k"))


def test_seal_and_unseal(make_barrier: MakeBarrier) -> None:
    _, barrier, root_key = make_barrier()
    run(barrier.put("k", b"v"))
    barrier.seal()
    assert barrier.sealed
    with pytest.raises(errors.Sealed):
        run(barrier.get("k"))
    with pytest.raises(errors.CryptoError) as info:
        run(barrier.unseal(secrets.token_bytes(32)))
    assert str(info.value) == FLAT
    with pytest.raises(errors.CryptoError, match=FLAT):
        run(barrier.unseal(b"short"))
    assert barrier.sealed
    run(barrier.unseal(root_key))
    assert run(barrier.get("k")) == b"v"
    run(barrier.unseal(b"ignored when already unsealed"))


def test_unseal_uninitialized(make_barrier: MakeBarrier) -> None:
    _, barrier, root_key = make_barrier(initialize=False)
    assert not run(barrier.initialized())
    with pytest.raises(errors.InvalidRequest, match="not initialized"):
        run(barrier.unseal(root_key))


def test_keyring_is_encrypted_under_root_key(make_barrier: MakeBarrier) -> None:
    physical, _, root_key = make_barrier()
    blob = physical.data[KEYRING_PATH]
    assert root_key not in blob
    plain = decrypt_blob(root_key, KEYRING_PATH, blob)
    assert b'"keys"' in plain
    with pytest.raises(errors.CryptoError):
        decrypt_blob(root_key, "elsewhere", blob)


def test_rotate_keeps_old_terms(make_barrier: MakeBarrier) -> None:
    physical, barrier, root_key = make_barrier()
    run(barrier.put("old", b"written under term 1"))
    status = barrier.key_status()
    assert status.term == 1
    assert run(barrier.rotate()) == 2
    run(barrier.put("new", b"written under term 2"))
    assert physical.data["old"][:4] == (1).to_bytes(4, "big")
    assert physical.data["new"][:4] == (2).to_bytes(4, "big")
    assert barrier.key_status().term == 2
    barrier.seal()
    run(barrier.unseal(root_key))  # the rotation was persisted
    assert barrier.key_status().term == 2
    assert run(barrier.get("old")) == b"written under term 1"
    assert run(barrier.get("new")) == b"written under term 2"


def test_rotate_when_sealed(make_barrier: MakeBarrier) -> None:
    _, barrier, _ = make_barrier()
    barrier.seal()
    with pytest.raises(errors.Sealed):
        run(barrier.rotate())


def test_key_status_counts_and_install_time() -> None:
    clock = FakeClock(start=1_700_000_000.5)
    barrier = AESGCMBarrier(MemStorage(), clock)
    run(barrier.initialize(secrets.token_bytes(32)))
    run(barrier.put("a", b"1"))
    run(barrier.transaction([StorageOp("b", b"2"), StorageOp("c", b"3")]))
    status = barrier.key_status()
    assert status == KeyStatus(term=1, install_time=1_700_000_000.5, encryptions=3)
    clock.advance(60)
    run(barrier.rotate())
    assert barrier.key_status().install_time == 1_700_000_060.5
    assert barrier.key_status().encryptions == 0
    assert status.to_json() == {
        "term": 1,
        "install_time": "2023-11-14T22:13:20.5Z",  # Go RFC3339Nano trims zeros
        "encryptions": 3,
    }


def test_reserved_paths_are_refused(make_barrier: MakeBarrier) -> None:
    _, barrier, _ = make_barrier()
    assert {KEYRING_PATH, ROOT_KEY_PATH, SEAL_CONFIG_PATH} == RESERVED_PATHS
    for path in sorted(RESERVED_PATHS):
        with pytest.raises(errors.InvalidPath):
            run(barrier.get(path))
        with pytest.raises(errors.InvalidPath):
            run(barrier.put(path, b"x"))
        with pytest.raises(errors.InvalidPath):
            run(barrier.delete(path))
        with pytest.raises(errors.InvalidPath):
            run(barrier.transaction([StorageOp("fine", b"x"), StorageOp(path, b"x")]))
    with pytest.raises(errors.InvalidPath):
        run(barrier.put("", b"x"))


def test_list_hides_reserved_records(make_barrier: MakeBarrier) -> None:
    physical, barrier, _ = make_barrier()
    physical.data[ROOT_KEY_PATH] = b"x"
    physical.data[SEAL_CONFIG_PATH] = b"{}"
    run(barrier.put("logical/abc/x", b"1"))
    assert run(barrier.list("")) == ["logical/"]
    assert run(barrier.list("core/")) == []
    run(barrier.put("core/mounts", b"table"))
    assert run(barrier.list("")) == ["core/", "logical/"]
    assert run(barrier.list("core/")) == ["mounts"]


def test_transaction_encrypts_and_deletes(make_barrier: MakeBarrier) -> None:
    physical, barrier, _ = make_barrier()
    run(barrier.put("gone", b"x"))
    run(barrier.transaction([StorageOp("a", b"alpha"), StorageOp("gone")]))
    assert "gone" not in physical.data
    assert b"alpha" not in physical.data["a"]
    assert run(barrier.get("a")) == b"alpha"


def test_rekey_root_key(make_barrier: MakeBarrier) -> None:
    physical, barrier, old_root = make_barrier()
    run(barrier.put("k", b"v"))
    new_root = secrets.token_bytes(32)
    run(barrier.rekey_root_key(new_root, extra_ops=[StorageOp(SEAL_CONFIG_PATH, b"{}")]))
    assert physical.data[SEAL_CONFIG_PATH] == b"{}"
    assert len(physical.transactions[-1]) == 2  # keyring + extra op, together
    assert barrier.verify_root_key(new_root)
    assert not barrier.verify_root_key(old_root)
    barrier.seal()
    with pytest.raises(errors.CryptoError):
        run(barrier.unseal(old_root))
    run(barrier.unseal(new_root))
    assert run(barrier.get("k")) == b"v"


def test_reload_keyring_sees_another_nodes_rotation() -> None:
    physical = MemStorage()
    root_key = secrets.token_bytes(32)
    active, standby = AESGCMBarrier(physical), AESGCMBarrier(physical)
    run(active.initialize(root_key))
    run(standby.unseal(root_key))
    run(active.rotate())
    run(active.put("k", b"term two"))
    with pytest.raises(errors.CryptoError, match="term 2"):
        run(standby.get("k"))
    run(standby.reload_keyring())
    assert run(standby.get("k")) == b"term two"


def test_initialize_extra_ops_share_the_transaction() -> None:
    physical = MemStorage()
    barrier = AESGCMBarrier(physical)
    run(barrier.initialize(secrets.token_bytes(32), extra_ops=[StorageOp(ROOT_KEY_PATH, b"r")]))
    assert [op.key for op in physical.transactions[0]] == [KEYRING_PATH, ROOT_KEY_PATH]


def test_repr_shows_no_key_material(make_barrier: MakeBarrier) -> None:
    _, barrier, root_key = make_barrier()
    text = repr(barrier)
    assert root_key.hex() not in text
    assert repr(root_key) not in text


# --- direct blobs ---------------------------------------------------------------------------


def test_blob_round_trip_and_aad() -> None:
    key = secrets.token_bytes(32)
    blob = encrypt_blob(key, "core/root-key", b"secret")
    assert blob[:4] == b"\x00\x00\x00\x00"
    assert decrypt_blob(key, "core/root-key", blob) == b"secret"
    for wrong_key, aad in ((key, "core/other"), (secrets.token_bytes(32), "core/root-key")):
        with pytest.raises(errors.CryptoError) as info:
            decrypt_blob(wrong_key, aad, blob)
        assert str(info.value) == FLAT
    with pytest.raises(errors.CryptoError, match=FLAT):
        decrypt_blob(key[:16], "core/root-key", blob)
    with pytest.raises(errors.InternalError):
        encrypt_blob(b"short", "x", b"")


@pytest.mark.parametrize(
    ("plaintext_hex", "ct_tag_hex", "key_hex", "iv_hex"),
    [
        # McGrew & Viega, "The Galois/Counter Mode of Operation", AES-256 test cases 14, 15
        (
            "00000000000000000000000000000000",
            "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919",
            "00" * 32,
            "00" * 12,
        ),
        (
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
            "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
            "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad"
            "b094dac5d93471bdec1a502270e3cc6c",
            "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
            "cafebabefacedbaddecaf888",
        ),
    ],
)
def test_gcm_known_answers_in_our_layout(
    plaintext_hex: str, ct_tag_hex: str, key_hex: str, iv_hex: str
) -> None:
    blob = b"\x00" * 4 + bytes.fromhex(iv_hex) + bytes.fromhex(ct_tag_hex)
    assert decrypt_blob(bytes.fromhex(key_hex), "", blob) == bytes.fromhex(plaintext_hex)
