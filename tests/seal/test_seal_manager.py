"""The seal manager's state machines over an in-memory physical storage."""

from __future__ import annotations

import asyncio
import base64
import itertools
import logging
import secrets
import string
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
import pytest

from strongroom import errors
from strongroom.barrier import (
    KEYRING_PATH,
    ROOT_KEY_PATH,
    SEAL_CONFIG_PATH,
    AESGCMBarrier,
    decrypt_blob,
)
from strongroom.clock import FakeClock
from strongroom.errors import StorageConflict
from strongroom.logical import StorageOp
from strongroom.seal import (
    REKEY_CANCEL_GRACE,
    GenerateRootStatus,
    InitResult,
    RekeyResult,
    RekeyStatus,
    RekeyVerificationResult,
    RekeyVerificationStatus,
    SealConfig,
    SealManager,
    UnsealProgress,
    combine,
    decode_root_token,
)

T = TypeVar("T")
TOKEN = "hvs." + "r00tT0kenR00tT0kenR00tT0"


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
        if any(op.check and self.data.get(op.key) != op.value for op in ops):
            raise StorageConflict("storage guard failed")
        for op in ops:
            if op.check:
                continue
            if op.value is None:
                self.data.pop(op.key, None)
            else:
                self.data[op.key] = op.value


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@dataclass
class Vault:
    physical: MemStorage
    barrier: AESGCMBarrier
    manager: SealManager
    clock: FakeClock
    keys: list[bytes]

    def unseal(self, keys: Sequence[bytes]) -> UnsealProgress:
        progress = self.manager.unseal_progress()
        for key in keys:
            progress = run(self.manager.submit_unseal_key(key))
        return progress


MakeVault = Callable[..., Vault]


@pytest.fixture
def make_vault() -> MakeVault:
    """Factory: an initialized vault (shares/threshold), left unsealed like after init."""

    def make(shares: int = 5, threshold: int = 3) -> Vault:
        physical = MemStorage()
        clock = FakeClock()
        barrier = AESGCMBarrier(physical, clock)
        manager = SealManager(physical, barrier, clock)
        result = run(manager.initialize(shares, threshold))
        return Vault(physical, barrier, manager, clock, list(result.keys))

    return make


async def _mint() -> str:
    return TOKEN


# --- init ------------------------------------------------------------------------------------


def test_initialize(make_vault: MakeVault) -> None:
    vault = make_vault(5, 3)
    assert len(vault.keys) == 5 and len(set(vault.keys)) == 5
    assert all(len(key) == 33 for key in vault.keys)
    assert not vault.manager.sealed
    assert run(vault.manager.initialized())
    assert run(vault.manager.seal_config()) == SealConfig(5, 3)
    config = orjson.loads(vault.physical.data[SEAL_CONFIG_PATH])  # plain JSON
    assert config["secret_shares"] == 5 and config["secret_threshold"] == 3
    # keyring, encrypted root key and seal config were written in one transaction
    assert {op.key for op in vault.physical.transactions[0]} == {
        KEYRING_PATH,
        ROOT_KEY_PATH,
        SEAL_CONFIG_PATH,
    }
    root_blob = vault.physical.data[ROOT_KEY_PATH]
    assert vault.barrier.root_key not in root_blob


def test_initialize_refuses_twice(make_vault: MakeVault) -> None:
    vault = make_vault()
    with pytest.raises(errors.InvalidRequest, match="Vault is already initialized"):
        run(vault.manager.initialize(5, 3))


@pytest.mark.parametrize(
    ("shares", "threshold", "message"),
    [
        (0, 1, "shares must be at least one"),
        (3, 0, "threshold must be at least one"),
        (3, 1, "threshold must be greater than one for multiple shares"),
        (256, 3, "shares must be less than 256"),
        (3, 5, "threshold cannot be larger than shares"),
    ],
)
def test_initialize_validation(shares: int, threshold: int, message: str) -> None:
    physical = MemStorage()
    manager = SealManager(physical, AESGCMBarrier(physical))
    with pytest.raises(errors.InvalidRequest) as info:
        run(manager.initialize(shares, threshold))
    assert str(info.value) == f"invalid seal configuration: {message}"
    assert physical.data == {}


def test_single_share_is_the_unseal_key(make_vault: MakeVault) -> None:
    vault = make_vault(1, 1)
    [key] = vault.keys
    assert len(key) == 32
    decrypt_blob(key, ROOT_KEY_PATH, vault.physical.data[ROOT_KEY_PATH])  # opens it
    vault.manager.seal()
    progress = vault.unseal([key])
    assert progress == UnsealProgress(sealed=False, t=1, n=1, progress=0, nonce="")


def test_init_result_json_and_repr(make_vault: MakeVault) -> None:
    vault = make_vault(3, 2)
    result = InitResult(tuple(vault.keys))
    body = result.to_json(root_token=TOKEN)
    assert set(body) == {"keys", "keys_base64", "root_token"}
    assert body["keys"] == [k.hex() for k in vault.keys]
    assert body["keys_base64"] == [base64.b64encode(k).decode() for k in vault.keys]
    for key in vault.keys:
        assert key.hex() not in repr(result) and repr(key) not in repr(result)


# --- unseal ----------------------------------------------------------------------------------


def test_unseal_with_every_threshold_subset(make_vault: MakeVault) -> None:
    vault = make_vault(5, 3)
    run(vault.barrier.put("secret/k", b"value"))
    for subset in itertools.combinations(vault.keys, 3):
        vault.manager.seal()
        first = run(vault.manager.submit_unseal_key(subset[0]))
        assert (first.sealed, first.t, first.n, first.progress) == (True, 3, 5, 1)
        second = run(vault.manager.submit_unseal_key(subset[1]))
        assert second.progress == 2 and second.nonce == first.nonce != ""
        done = run(vault.manager.submit_unseal_key(subset[2]))
        assert done == UnsealProgress(sealed=False, t=3, n=5, progress=0, nonce="")
        assert run(vault.barrier.get("secret/k")) == b"value"


def test_unseal_nonce_changes_per_attempt(make_vault: MakeVault) -> None:
    vault = make_vault()
    vault.manager.seal()
    one = run(vault.manager.submit_unseal_key(vault.keys[0])).nonce
    assert vault.manager.reset_unseal().progress == 0
    two = run(vault.manager.submit_unseal_key(vault.keys[0])).nonce
    assert one != two


def test_duplicate_unseal_share_is_ignored(make_vault: MakeVault) -> None:
    vault = make_vault()
    vault.manager.seal()
    run(vault.manager.submit_unseal_key(vault.keys[0]))
    again = run(vault.manager.submit_unseal_key(vault.keys[0]))
    assert again.progress == 1 and again.sealed
    assert not vault.unseal(vault.keys[1:3]).sealed


def test_wrong_share_resets_progress(make_vault: MakeVault) -> None:
    vault = make_vault()
    other = make_vault()  # shares of another vault: right shape, wrong key
    vault.manager.seal()
    run(vault.manager.submit_unseal_key(vault.keys[0]))
    run(vault.manager.submit_unseal_key(vault.keys[1]))
    # Pick a foreign share whose x coordinate differs from the two given.
    used = {vault.keys[0][-1], vault.keys[1][-1]}
    foreign = next(k for k in other.keys if k[-1] not in used)
    with pytest.raises(errors.CryptoError) as info:
        run(vault.manager.submit_unseal_key(foreign))
    message = str(info.value)
    for key in [*vault.keys, foreign]:
        assert key.hex() not in message
        assert base64.b64encode(key).decode() not in message
    progress = vault.manager.unseal_progress()
    assert progress.sealed and progress.progress == 0 and progress.nonce == ""
    assert not vault.unseal(vault.keys[2:5]).sealed


def test_share_with_clashing_x_coordinate_resets_progress(make_vault: MakeVault) -> None:
    vault = make_vault(3, 2)
    vault.manager.seal()
    run(vault.manager.submit_unseal_key(vault.keys[0]))
    clash = secrets.token_bytes(32) + vault.keys[0][-1:]
    with pytest.raises(errors.InvalidRequest, match="failed to compute combined key"):
        run(vault.manager.submit_unseal_key(clash))
    assert vault.manager.unseal_progress().progress == 0


@pytest.mark.parametrize(("length", "message"), [(15, "shorter than minimum 16"), (34, "longer")])
def test_unseal_key_length(make_vault: MakeVault, length: int, message: str) -> None:
    vault = make_vault()
    vault.manager.seal()
    with pytest.raises(errors.InvalidRequest, match=message):
        run(vault.manager.submit_unseal_key(b"k" * length))


def test_unseal_before_init() -> None:
    physical = MemStorage()
    manager = SealManager(physical, AESGCMBarrier(physical))
    assert not run(manager.initialized())
    assert manager.unseal_progress() == UnsealProgress(True, 0, 0, 0, "")
    with pytest.raises(errors.InvalidRequest, match="not initialized"):
        run(manager.submit_unseal_key(b"k" * 33))


def test_unseal_when_unsealed_is_a_no_op(make_vault: MakeVault) -> None:
    vault = make_vault()
    progress = run(vault.manager.submit_unseal_key(vault.keys[0]))
    assert not progress.sealed and progress.progress == 0


def test_seal_unseal_cycle_and_fresh_manager(make_vault: MakeVault) -> None:
    vault = make_vault()
    run(vault.barrier.put("a", b"1"))
    vault.manager.seal()
    run(vault.manager.submit_unseal_key(vault.keys[0]))
    vault.manager.seal()  # sealing drops in-flight unseal progress
    assert vault.manager.unseal_progress().progress == 0
    # A restarted server: new barrier and manager over the same physical storage.
    barrier = AESGCMBarrier(vault.physical)
    manager = SealManager(vault.physical, barrier)
    run(manager.load())
    assert manager.unseal_progress() == UnsealProgress(True, 3, 5, 0, "")
    for key in vault.keys[2:]:
        run(manager.submit_unseal_key(key))
    assert not manager.sealed
    assert run(barrier.get("a")) == b"1"


def test_unseal_json_keys(make_vault: MakeVault) -> None:
    vault = make_vault()
    assert set(vault.manager.unseal_progress().to_json()) == {
        "sealed",
        "t",
        "n",
        "progress",
        "nonce",
    }


# --- rotate ----------------------------------------------------------------------------------


def test_rotate(make_vault: MakeVault) -> None:
    vault = make_vault()
    run(vault.barrier.put("old", b"1"))
    assert vault.manager.key_status().term == 1
    status = run(vault.manager.rotate())
    assert status.term == 2 == vault.manager.key_status().term
    run(vault.barrier.put("new", b"2"))
    assert vault.physical.data["new"][:4] == b"\x00\x00\x00\x02"
    assert vault.physical.data["old"][:4] == b"\x00\x00\x00\x01"
    vault.manager.seal()
    vault.unseal(vault.keys[:3])
    assert run(vault.barrier.get("old")) == b"1"
    assert run(vault.barrier.get("new")) == b"2"
    vault.manager.seal()
    with pytest.raises(errors.Sealed):
        run(vault.manager.rotate())


# --- generate-root ---------------------------------------------------------------------------


def test_generate_root_full_flow(make_vault: MakeVault) -> None:
    vault = make_vault(5, 3)
    calls: list[int] = []

    async def mint() -> str:
        calls.append(1)
        return TOKEN

    idle = vault.manager.generate_root_status()
    assert (idle.started, idle.nonce, idle.progress, idle.required) == (False, "", 0, 3)
    started = vault.manager.generate_root_init()
    otp = started.otp
    assert len(otp) == 28 and set(otp) <= set(string.ascii_letters + string.digits)
    assert started.started and started.otp_length == 28 and not started.complete
    assert otp not in repr(started)
    status = vault.manager.generate_root_status()
    assert status.otp == "" and status.nonce == started.nonce
    one = run(vault.manager.generate_root_update(vault.keys[0], started.nonce, mint))
    assert (one.progress, one.required, one.complete, one.encoded_token) == (1, 3, False, "")
    run(vault.manager.generate_root_update(vault.keys[1], started.nonce, mint))
    done = run(vault.manager.generate_root_update(vault.keys[2], started.nonce, mint))
    assert done.complete and done.progress == 3 and calls == [1]
    assert decode_root_token(done.encoded_token, otp) == TOKEN
    body = done.to_json()
    assert body["encoded_root_token"] == body["encoded_token"] == done.encoded_token
    assert "=" not in done.encoded_token
    assert not vault.manager.generate_root_status().started


def test_generate_root_wrong_nonce_and_duplicate(make_vault: MakeVault) -> None:
    vault = make_vault()
    started = vault.manager.generate_root_init()
    with pytest.raises(errors.InvalidRequest, match="incorrect nonce") as info:
        run(vault.manager.generate_root_update(vault.keys[0], "not-the-nonce", _mint))
    assert started.nonce not in str(info.value)
    run(vault.manager.generate_root_update(vault.keys[0], started.nonce, _mint))
    with pytest.raises(errors.InvalidRequest, match="already been provided"):
        run(vault.manager.generate_root_update(vault.keys[0], started.nonce, _mint))
    assert vault.manager.generate_root_status().progress == 1


def test_generate_root_wrong_shares(make_vault: MakeVault) -> None:
    vault = make_vault(3, 2)
    other = make_vault(3, 2)
    started = vault.manager.generate_root_init()
    calls: list[int] = []

    async def mint() -> str:
        calls.append(1)
        return TOKEN

    foreign = next(k for k in other.keys if k[-1] != vault.keys[0][-1])
    run(vault.manager.generate_root_update(vault.keys[0], started.nonce, mint))
    with pytest.raises(errors.CryptoError):
        run(vault.manager.generate_root_update(foreign, started.nonce, mint))
    assert calls == []
    status = vault.manager.generate_root_status()
    assert status.started and status.progress == 0  # the attempt stays, its progress resets
    done = run(vault.manager.generate_root_update(vault.keys[1], started.nonce, mint))
    assert not done.complete
    done = run(vault.manager.generate_root_update(vault.keys[2], started.nonce, mint))
    assert done.complete and decode_root_token(done.encoded_token, started.otp) == TOKEN


def test_generate_root_cancel_and_errors(make_vault: MakeVault) -> None:
    vault = make_vault()
    with pytest.raises(errors.InvalidRequest, match="no root generation in progress"):
        run(vault.manager.generate_root_update(vault.keys[0], "x", _mint))
    started = vault.manager.generate_root_init()
    with pytest.raises(errors.InvalidRequest, match="already in progress"):
        vault.manager.generate_root_init()
    run(vault.manager.generate_root_update(vault.keys[0], started.nonce, _mint))
    vault.manager.generate_root_cancel()
    assert vault.manager.generate_root_status() == GenerateRootStatus(
        started=False, nonce="", progress=0, required=3
    )
    with pytest.raises(errors.InvalidRequest, match="no root generation in progress"):
        run(vault.manager.generate_root_update(vault.keys[1], started.nonce, _mint))
    with pytest.raises(errors.InvalidRequest, match="wrong length"):
        vault.manager.generate_root_init(otp_length=24)


def test_generate_root_with_operator_otp(make_vault: MakeVault) -> None:
    vault = make_vault(1, 1)
    otp = "x" * 28
    started = vault.manager.generate_root_init(otp=otp)
    assert started.otp == ""  # an operator-chosen OTP is not echoed
    done = run(vault.manager.generate_root_update(vault.keys[0], started.nonce, _mint))
    assert done.complete and decode_root_token(done.encoded_token, otp) == TOKEN
    with pytest.raises(errors.InvalidRequest, match="wrong length"):
        vault.manager.generate_root_init(otp="short")


def test_generate_root_when_sealed(make_vault: MakeVault) -> None:
    vault = make_vault()
    started = vault.manager.generate_root_init()
    vault.manager.seal()
    for call in (
        vault.manager.generate_root_status,
        vault.manager.generate_root_init,
        vault.manager.generate_root_cancel,
    ):
        with pytest.raises(errors.Sealed):
            call()
    with pytest.raises(errors.Sealed):
        run(vault.manager.generate_root_update(vault.keys[0], started.nonce, _mint))
    vault.unseal(vault.keys[:3])
    assert not vault.manager.generate_root_status().started  # sealing dropped the attempt


def test_generate_root_json_keys(make_vault: MakeVault) -> None:
    vault = make_vault()
    assert set(vault.manager.generate_root_init().to_json()) == {
        "started",
        "nonce",
        "progress",
        "required",
        "complete",
        "encoded_token",
        "encoded_root_token",
        "pgp_fingerprint",
        "otp",
        "otp_length",
    }


# --- rekey -----------------------------------------------------------------------------------


def _rekey(vault: Vault, shares: int, threshold: int, verify: bool) -> RekeyResult:
    status = vault.manager.rekey_init(shares, threshold, require_verification=verify)
    result: RekeyStatus | RekeyResult = status
    for key in vault.keys[: vault.manager.unseal_progress().t]:
        result = run(vault.manager.rekey_update(key, status.nonce))
    assert isinstance(result, RekeyResult)
    return result


def _assert_old_fail_new_work(vault: Vault, old: list[bytes], new: list[bytes], t: int) -> None:
    vault.manager.seal()
    with pytest.raises(errors.CryptoError):
        vault.unseal(old[:3])
    assert vault.manager.unseal_progress().sealed
    assert not vault.unseal(new[:t]).sealed
    assert run(vault.barrier.get("kept")) == b"data"


def test_rekey_without_verification(make_vault: MakeVault) -> None:
    vault = make_vault(5, 3)
    run(vault.barrier.put("kept", b"data"))
    old_root = vault.barrier.root_key
    old_root_blob = vault.physical.data[ROOT_KEY_PATH]
    status = vault.manager.rekey_init(3, 2)
    assert status == RekeyStatus(started=True, nonce=status.nonce, t=2, n=3, progress=0, required=3)
    one = run(vault.manager.rekey_update(vault.keys[0], status.nonce))
    assert isinstance(one, RekeyStatus) and one.progress == 1
    run(vault.manager.rekey_update(vault.keys[1], status.nonce))
    result = run(vault.manager.rekey_update(vault.keys[2], status.nonce))
    assert isinstance(result, RekeyResult)
    assert result.complete and not result.verification_required and len(result.keys) == 3
    assert result.nonce == status.nonce
    assert not vault.manager.rekey_status().started
    assert run(vault.manager.seal_config()) == SealConfig(3, 2)
    assert vault.barrier.root_key != old_root  # the root key is replaced too
    last = vault.physical.transactions[-1]
    assert {op.key for op in last} == {KEYRING_PATH, ROOT_KEY_PATH, SEAL_CONFIG_PATH}
    # Old shares plus an old copy of core/root-key open nothing current.
    old_unseal_key = combine(vault.keys[:3])
    replayed_root = decrypt_blob(old_unseal_key, ROOT_KEY_PATH, old_root_blob)
    vault.manager.seal()
    with pytest.raises(errors.CryptoError):
        run(vault.barrier.unseal(replayed_root))
    _assert_old_fail_new_work(vault, vault.keys, list(result.keys), 2)


def test_rekey_with_verification(make_vault: MakeVault) -> None:
    vault = make_vault(5, 3)
    run(vault.barrier.put("kept", b"data"))
    root_blob = vault.physical.data[ROOT_KEY_PATH]
    result = _rekey(vault, 4, 3, verify=True)
    assert result.verification_required and result.verification_nonce
    assert len(result.keys) == 4
    body = result.to_json()
    assert body["verification_nonce"] == result.verification_nonce
    # Nothing is in force yet.
    assert vault.physical.data[ROOT_KEY_PATH] == root_blob
    assert run(vault.manager.seal_config()) == SealConfig(5, 3)
    status = vault.manager.rekey_status()
    assert status.verification_nonce == result.verification_nonce
    with pytest.raises(errors.InvalidRequest, match="verification must be performed"):
        run(vault.manager.rekey_update(vault.keys[3], status.nonce))
    verify = vault.manager.rekey_verify_status()
    assert verify == RekeyVerificationStatus(True, result.verification_nonce, 3, 4, 0)
    with pytest.raises(errors.InvalidRequest, match="incorrect nonce"):
        run(vault.manager.rekey_verify_update(result.keys[0], status.nonce))
    new_keys = list(result.keys)
    step = run(vault.manager.rekey_verify_update(new_keys[0], result.verification_nonce))
    assert isinstance(step, RekeyVerificationStatus) and step.progress == 1
    with pytest.raises(errors.InvalidRequest, match="already been provided"):
        run(vault.manager.rekey_verify_update(new_keys[0], result.verification_nonce))
    run(vault.manager.rekey_verify_update(new_keys[1], result.verification_nonce))
    done = run(vault.manager.rekey_verify_update(new_keys[2], result.verification_nonce))
    assert done == RekeyVerificationResult(nonce=result.verification_nonce, complete=True)
    assert run(vault.manager.seal_config()) == SealConfig(4, 3)
    with pytest.raises(errors.InvalidRequest, match="no rekey configuration"):
        vault.manager.rekey_verify_status()
    _assert_old_fail_new_work(vault, vault.keys, new_keys[1:], 3)


def test_rekey_verification_with_wrong_shares(make_vault: MakeVault) -> None:
    vault = make_vault(3, 2)
    result = _rekey(vault, 3, 2, verify=True)
    # Random y bytes at the real new shares' x coordinates: they combine to some other key.
    fake = [secrets.token_bytes(32) + share[-1:] for share in result.keys]
    nonce = result.verification_nonce
    run(vault.manager.rekey_verify_update(fake[0], nonce))
    with pytest.raises(errors.CryptoError, match="incorrect key shares"):
        run(vault.manager.rekey_verify_update(fake[1], nonce))
    status = vault.manager.rekey_verify_status()
    assert status.progress == 0 and status.nonce != nonce  # restarted under a new nonce
    assert run(vault.manager.seal_config()) == SealConfig(3, 2)
    run(vault.manager.rekey_verify_update(result.keys[0], status.nonce))
    done = run(vault.manager.rekey_verify_update(result.keys[1], status.nonce))
    assert isinstance(done, RekeyVerificationResult)


def test_rekey_verify_cancel_restarts_verification(make_vault: MakeVault) -> None:
    vault = make_vault(3, 2)
    result = _rekey(vault, 3, 2, verify=True)
    run(vault.manager.rekey_verify_update(result.keys[0], result.verification_nonce))
    restarted = vault.manager.rekey_verify_cancel()
    assert restarted.progress == 0 and restarted.started
    assert restarted.nonce != result.verification_nonce
    assert vault.manager.rekey_status().started  # the rekey itself stays
    run(vault.manager.rekey_verify_update(result.keys[1], restarted.nonce))
    done = run(vault.manager.rekey_verify_update(result.keys[2], restarted.nonce))
    assert isinstance(done, RekeyVerificationResult)


def test_rekey_cancel_during_verification_keeps_old_shares(make_vault: MakeVault) -> None:
    vault = make_vault(3, 2)
    run(vault.barrier.put("kept", b"data"))
    status_nonce = vault.manager.rekey_status().nonce
    assert status_nonce == ""
    result = _rekey(vault, 3, 2, verify=True)
    vault.manager.rekey_cancel(result.nonce)
    assert not vault.manager.rekey_status().started
    vault.manager.seal()
    with pytest.raises(errors.CryptoError):
        vault.unseal(list(result.keys[:2]))
    assert not vault.unseal(vault.keys[:2]).sealed


def test_rekey_cancel_needs_nonce_for_ten_minutes(make_vault: MakeVault) -> None:
    vault = make_vault()
    vault.manager.rekey_cancel()  # nothing in progress: fine
    status = vault.manager.rekey_init(3, 2)
    with pytest.raises(errors.InvalidRequest, match="invalid request"):
        vault.manager.rekey_cancel()
    with pytest.raises(errors.InvalidRequest):
        vault.manager.rekey_cancel("wrong")
    vault.manager.rekey_cancel(status.nonce)
    assert not vault.manager.rekey_status().started
    vault.manager.rekey_init(3, 2)
    vault.clock.advance(REKEY_CANCEL_GRACE)
    vault.manager.rekey_cancel()
    assert not vault.manager.rekey_status().started


def test_rekey_errors(make_vault: MakeVault) -> None:
    vault = make_vault()
    with pytest.raises(errors.InvalidRequest, match="no barrier rekey in progress"):
        run(vault.manager.rekey_update(vault.keys[0], ""))
    with pytest.raises(errors.InvalidRequest, match="provided threshold greater than the total"):
        vault.manager.rekey_init(2, 3)
    with pytest.raises(errors.InvalidRequest, match="invalid rekey seal configuration: threshold"):
        vault.manager.rekey_init(3, 1)
    status = vault.manager.rekey_init(3, 2)
    with pytest.raises(errors.InvalidRequest, match="rekey already in progress"):
        vault.manager.rekey_init(3, 2)
    with pytest.raises(errors.InvalidRequest, match="incorrect nonce") as info:
        run(vault.manager.rekey_update(vault.keys[0], "nope"))
    assert status.nonce not in str(info.value)
    run(vault.manager.rekey_update(vault.keys[0], status.nonce))
    with pytest.raises(errors.InvalidRequest, match="already been provided"):
        run(vault.manager.rekey_update(vault.keys[0], status.nonce))
    with pytest.raises(errors.InvalidRequest, match="no rekey verification in progress"):
        run(vault.manager.rekey_verify_update(vault.keys[0], ""))
    with pytest.raises(errors.InvalidRequest, match="shorter"):
        run(vault.manager.rekey_update(b"x", status.nonce))


def test_rekey_with_wrong_shares_resets_progress(make_vault: MakeVault) -> None:
    vault = make_vault(3, 2)
    other = make_vault(3, 2)
    status = vault.manager.rekey_init(3, 2)
    foreign = next(k for k in other.keys if k[-1] != vault.keys[0][-1])
    run(vault.manager.rekey_update(vault.keys[0], status.nonce))
    with pytest.raises(errors.CryptoError):
        run(vault.manager.rekey_update(foreign, status.nonce))
    current = vault.manager.rekey_status()
    assert current.started and current.progress == 0 and current.nonce == status.nonce
    assert run(vault.manager.seal_config()) == SealConfig(3, 2)


def test_rekey_when_sealed(make_vault: MakeVault) -> None:
    vault = make_vault()
    vault.manager.rekey_init(3, 2)
    vault.manager.seal()
    with pytest.raises(errors.Sealed):
        vault.manager.rekey_status()
    with pytest.raises(errors.Sealed):
        vault.manager.rekey_init(3, 2)
    with pytest.raises(errors.Sealed):
        run(vault.manager.rekey_update(vault.keys[0], ""))
    vault.unseal(vault.keys[:3])
    assert not vault.manager.rekey_status().started  # sealing dropped the attempt


def test_rekey_to_single_share(make_vault: MakeVault) -> None:
    vault = make_vault(3, 2)
    run(vault.barrier.put("kept", b"data"))
    result = _rekey(vault, 1, 1, verify=False)
    [key] = result.keys
    assert len(key) == 32
    _assert_old_fail_new_work(vault, vault.keys, [key], 1)


def test_rekey_json_keys(make_vault: MakeVault) -> None:
    vault = make_vault(3, 2)
    status = vault.manager.rekey_init(3, 2, require_verification=True).to_json()
    assert set(status) == {
        "nonce",
        "started",
        "t",
        "n",
        "progress",
        "required",
        "pgp_fingerprints",
        "backup",
        "verification_required",
    }
    assert status["verification_required"] is True
    result = None
    for key in vault.keys[:2]:
        result = run(vault.manager.rekey_update(key, status["nonce"]))
    assert isinstance(result, RekeyResult)
    assert set(result.to_json()) == {
        "nonce",
        "complete",
        "keys",
        "keys_base64",
        "pgp_fingerprints",
        "backup",
        "verification_required",
        "verification_nonce",
    }
    assert set(vault.manager.rekey_status().to_json()) >= {"verification_nonce"}
    assert set(vault.manager.rekey_verify_status().to_json()) == {
        "nonce",
        "started",
        "t",
        "n",
        "progress",
    }
    assert set(RekeyVerificationResult("n").to_json()) == {"nonce", "complete"}
    for key in result.keys:
        assert key.hex() not in repr(result)


# --- secrets stay out of logs and reprs ------------------------------------------------------


def test_no_secrets_in_logs_or_reprs(
    make_vault: MakeVault, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    vault = make_vault(3, 2)
    vault.manager.seal()
    vault.unseal(vault.keys[:2])
    started = vault.manager.generate_root_init()
    for key in vault.keys[:2]:
        run(vault.manager.generate_root_update(key, started.nonce, _mint))
    result = _rekey(vault, 3, 2, verify=False)
    secrets_seen = [*vault.keys, *result.keys, vault.barrier.root_key]
    texts = [caplog.text, repr(vault.manager), repr(vault.barrier), repr(result)]
    for text in texts:
        for secret in secrets_seen:
            assert secret.hex() not in text
            assert base64.b64encode(secret).decode() not in text
            assert repr(secret) not in text
        assert started.otp not in text
        assert TOKEN not in text


def test_attempt_records_hide_shares() -> None:
    from strongroom.seal._attempts import GenerateRootAttempt, RekeyAttempt, UnsealAttempt

    share, otp = secrets.token_bytes(33), "o" * 28
    records = [
        UnsealAttempt("n", parts=(share,)),
        GenerateRootAttempt("n", otp=otp, return_otp=True, parts=(share,)),
        RekeyAttempt(
            "n",
            SealConfig(3, 2),
            True,
            0.0,
            parts=(share,),
            verification_key=share,
            verification_parts=(share,),
        ),
    ]
    for record in records:
        assert share.hex() not in repr(record) and repr(share) not in repr(record)
        assert otp not in repr(record)
