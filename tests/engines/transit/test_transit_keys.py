"""keys/: create, read, list, delete, config, rotate, trim; automatic rotation; engine config."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from strongroom.clock import FakeClock
from strongroom.engines.transit import TransitBackend
from strongroom.engines.transit._policy import KEY_TYPES
from strongroom.errors import InvalidRequest
from strongroom.logical import Operation
from tests.engines.conftest import Caller, MemoryStorage
from tests.engines.transit.conftest import b64, data

pytestmark = pytest.mark.anyio

FAST_TYPES = [t for t in KEY_TYPES if t not in ("rsa-3072", "rsa-4096")]


@pytest.mark.parametrize("key_type", FAST_TYPES)
async def test_create_and_read_every_type(tr: Caller, key_type: str) -> None:
    created = data(await tr.write("keys/k", {"type": key_type}))
    read = data(await tr.read("keys/k"))
    assert created == read
    assert read["name"] == "k" and read["type"] == key_type
    assert read["latest_version"] == 1 and read["min_decryption_version"] == 1
    assert read["min_encryption_version"] == 0 and read["min_available_version"] == 0
    assert read["deletion_allowed"] is False and read["exportable"] is False
    assert read["imported_key"] is False and read["auto_rotate_period"] == 0
    encryption = key_type in ("aes128-gcm96", "aes256-gcm96", "chacha20-poly1305", "rsa-2048")
    assert read["supports_encryption"] is encryption
    assert read["supports_decryption"] is encryption
    assert read["supports_signing"] is (
        key_type.startswith(("ecdsa", "rsa")) or key_type == "ed25519"
    )
    assert read["supports_derivation"] is (
        key_type in ("aes128-gcm96", "aes256-gcm96", "chacha20-poly1305", "ed25519")
    )
    if key_type == "hmac":
        assert "keys" not in read and read["key_size"] == 32
    elif key_type.startswith(("aes", "chacha")):
        assert read["keys"] == {"1": 1_700_000_000}
    else:
        entry = read["keys"]["1"]
        assert entry["creation_time"] == "2023-11-14T22:13:20Z"
        assert entry["public_key"]
        assert entry["name"] == {
            "ecdsa-p256": "P-256",
            "ecdsa-p384": "P-384",
            "ecdsa-p521": "P-521",
        }.get(key_type, key_type)


async def test_key_record_is_stored_under_policy_name(tr: Caller, storage: MemoryStorage) -> None:
    await tr.write("keys/orders", {})
    record = orjson.loads(storage.data["policy/orders"])
    assert record["name"] == "orders" and record["type"] == "aes256-gcm96"
    assert set(record["keys"]) == {"1"}
    assert len(record["keys"]["1"]["key"]) == 44  # base64 of 32 bytes


async def test_create_existing_key_warns_and_changes_nothing(tr: Caller) -> None:
    await tr.write("keys/k", {"type": "aes256-gcm96"})
    again = await tr.write("keys/k", {"type": "ed25519"})
    assert again is not None and again.warnings == ["key k already existed"]
    assert data(again)["type"] == "aes256-gcm96"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"type": "aes512"}, "unknown key type aes512"),
        ({"convergent_encryption": True}, "convergent encryption requires derivation"),
        ({"type": "ecdsa-p256", "derived": True}, "key derivation and convergent encryption"),
        ({"type": "rsa-2048", "derived": True}, "key derivation and convergent encryption"),
        ({"type": "hmac", "derived": True}, "key derivation and convergent encryption"),
        (
            {"type": "ed25519", "derived": True, "convergent_encryption": True},
            "convergent encryption not supported for keys of type ed25519",
        ),
        ({"auto_rotate_period": "30m"}, "at least an hour"),
        ({"type": "aes256-gcm96", "key_size": 64}, "key_size is not valid"),
        ({"type": "hmac", "key_size": 16}, "invalid key_size 16"),
    ],
)
async def test_create_validation(tr: Caller, body: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        await tr.write("keys/k", body)
    assert await tr.read("keys/k") is None


async def test_hmac_key_size_and_derived_fields(tr: Caller) -> None:
    assert data(await tr.write("keys/h", {"type": "hmac", "key_size": 64}))["key_size"] == 64
    derived = data(await tr.write("keys/d", {"derived": True, "convergent_encryption": True}))
    assert derived["kdf"] == "hkdf_sha256"
    assert derived["convergent_encryption"] is True
    assert derived["convergent_encryption_version"] == -1  # as Vault reports new keys


async def test_list_and_delete(tr: Caller) -> None:
    assert await tr.list("keys/") is None
    for name in ("b", "a", "c.d@e"):
        await tr.write(f"keys/{name}", {})
    assert data(await tr.list("keys/")) == {"keys": ["a", "b", "c.d@e"]}
    with pytest.raises(InvalidRequest, match="deletion is not allowed for this policy"):
        await tr.delete("keys/a")
    await tr.write("keys/a/config", {"deletion_allowed": True})
    assert await tr.delete("keys/a") is None
    assert await tr.read("keys/a") is None
    with pytest.raises(InvalidRequest, match="not found"):
        await tr.delete("keys/a")
    with pytest.raises(InvalidRequest, match="encryption key not found"):
        await tr.write("decrypt/a", {"ciphertext": "vault:v1:AAAA"})


async def test_rotate_and_config_versions(tr: Caller, clock: FakeClock) -> None:
    await tr.write("keys/k", {})
    clock.advance(10)
    rotated = data(await tr.write("keys/k/rotate"))
    assert rotated["latest_version"] == 2
    assert rotated["keys"] == {"1": 1_700_000_000, "2": 1_700_000_010}
    await tr.write("keys/k/rotate")
    cfg = data(await tr.write("keys/k/config", {"min_decryption_version": 2}))
    assert cfg["min_decryption_version"] == 2
    assert set(cfg["keys"]) == {"2", "3"}  # Vault lists the versions still decryptable
    with pytest.raises(InvalidRequest, match="cannot set min decryption version of 9"):
        await tr.write("keys/k/config", {"min_decryption_version": 9})
    with pytest.raises(InvalidRequest, match="must be greater than or equal"):
        await tr.write("keys/k/config", {"min_encryption_version": 1})
    zero = await tr.write("keys/k/config", {"min_decryption_version": 0})
    assert zero is not None and data(zero)["min_decryption_version"] == 1
    assert "forcing minimum to 1" in zero.warnings[0]


async def test_config_flags_only_turn_on(tr: Caller) -> None:
    await tr.write("keys/k", {})
    cfg = data(
        await tr.write(
            "keys/k/config",
            {"exportable": True, "allow_plaintext_backup": True, "auto_rotate_period": "2h"},
        )
    )
    assert cfg["exportable"] and cfg["allow_plaintext_backup"]
    assert cfg["auto_rotate_period"] == 7200
    cfg = data(
        await tr.write("keys/k/config", {"exportable": False, "allow_plaintext_backup": False})
    )
    assert cfg["exportable"] and cfg["allow_plaintext_backup"]
    with pytest.raises(InvalidRequest, match="at least an hour"):
        await tr.write("keys/k/config", {"auto_rotate_period": 60})
    with pytest.raises(InvalidRequest, match="no existing key named nope"):
        await tr.write("keys/nope/config", {"deletion_allowed": True})


async def test_trim(tr: Caller, storage: MemoryStorage) -> None:
    await tr.write("keys/k", {})
    for _ in range(4):
        await tr.write("keys/k/rotate")
    with pytest.raises(InvalidRequest, match="minimum encryption version is not set"):
        await tr.write("keys/k/trim", {"min_available_version": 2})
    await tr.write("keys/k/config", {"min_encryption_version": 4, "min_decryption_version": 3})
    with pytest.raises(InvalidRequest, match="greater than minimum decryption version"):
        await tr.write("keys/k/trim", {"min_available_version": 4})
    with pytest.raises(InvalidRequest, match="should be positive"):
        await tr.write("keys/k/trim", {"min_available_version": 0})
    with pytest.raises(InvalidRequest, match="missing min_available_version"):
        await tr.write("keys/k/trim", {})
    assert await tr.write("keys/k/trim", {"min_available_version": 3}) is None
    info = data(await tr.read("keys/k"))
    assert info["min_available_version"] == 3
    assert set(orjson.loads(storage.data["policy/k"])["keys"]) == {"3", "4", "5"}
    with pytest.raises(InvalidRequest, match="cannot be decremented"):
        await tr.write("keys/k/trim", {"min_available_version": 2})
    with pytest.raises(InvalidRequest, match="less then min available version"):
        await tr.write("keys/k/config", {"min_decryption_version": 2})
    with pytest.raises(InvalidRequest, match="invalid key name"):
        await tr.write("keys/nope/trim", {"min_available_version": 1})


async def test_auto_rotation_on_request(tr: Caller, clock: FakeClock) -> None:
    await tr.write("keys/k", {"auto_rotate_period": "1h"})
    first = data(await tr.write("encrypt/k", {"plaintext": b64(b"x")}))
    assert first["key_version"] == 1
    clock.advance(3599)
    assert data(await tr.write("encrypt/k", {"plaintext": b64(b"x")}))["key_version"] == 1
    clock.advance(1)
    assert data(await tr.write("encrypt/k", {"plaintext": b64(b"x")}))["key_version"] == 2
    assert data(await tr.write("encrypt/k", {"plaintext": b64(b"x")}))["key_version"] == 2
    # the old ciphertext still decrypts
    assert data(await tr.write("decrypt/k", {"ciphertext": first["ciphertext"]}))["plaintext"]


async def test_auto_rotation_sweep_and_disable(
    make_transit: object, tr: Caller, clock: FakeClock
) -> None:
    await tr.write("keys/a", {"auto_rotate_period": 3600})
    await tr.write("keys/b", {})
    backend = tr.backend
    assert isinstance(backend, TransitBackend)
    clock.advance(3600)
    assert await backend.store.rotate_due_keys() == ["a"]
    assert await backend.store.rotate_due_keys() == []
    assert data(await tr.read("keys/a"))["latest_version"] == 2
    assert data(await tr.read("keys/b"))["latest_version"] == 1
    await tr.write("keys/a/config", {"auto_rotate_period": 0})
    clock.advance(86400)
    assert await backend.store.rotate_due_keys() == []


async def test_background_rotation_task(
    make_config: object, storage: MemoryStorage, clock: FakeClock
) -> None:
    backend = TransitBackend(make_config("transit"), rotation_interval=0.01)  # type: ignore[operator]
    await backend.initialize()
    try:
        caller = Caller(backend, storage)
        await caller.write("keys/k", {"auto_rotate_period": "1h"})
        clock.advance(3600)
        for _ in range(200):
            await asyncio.sleep(0.01)
            if orjson.loads(storage.data["policy/k"])["latest_version"] == 2:
                break
        assert orjson.loads(storage.data["policy/k"])["latest_version"] == 2
    finally:
        await backend.cleanup()
    assert backend._task is None


async def test_cache_is_refreshed_from_storage_after_restart(
    make_transit: object, storage: MemoryStorage
) -> None:
    first = await make_transit()  # type: ignore[operator]
    await first.write("keys/k", {})
    ct = data(await first.write("encrypt/k", {"plaintext": b64(b"persisted")}))["ciphertext"]
    second = await make_transit()  # type: ignore[operator]  # a new mount instance, same storage
    assert data(await second.write("decrypt/k", {"ciphertext": ct}))["plaintext"] == b64(
        b"persisted"
    )


async def test_cache_config_and_keys_config(tr: Caller) -> None:
    assert data(await tr.read("cache-config")) == {"size": 0}
    written = await tr.write("cache-config", {"size": 500})
    assert written is not None and data(written) == {"size": 500} and written.warnings
    assert data(await tr.read("cache-config")) == {"size": 500}
    with pytest.raises(InvalidRequest, match="greater or equal to 10"):
        await tr.write("cache-config", {"size": 5})
    with pytest.raises(InvalidRequest, match="greater or equal to 0"):
        await tr.write("cache-config", {"size": -1})

    assert data(await tr.read("config/keys")) == {"disable_upsert": False}
    assert data(await tr.write("config/keys", {"disable_upsert": True})) == {"disable_upsert": True}
    with pytest.raises(InvalidRequest, match="encryption key not found"):
        await tr.request(Operation.CREATE, "encrypt/new", {"plaintext": b64(b"x")})
    await tr.write("config/keys", {"disable_upsert": False})
    created = await tr.request(Operation.CREATE, "encrypt/new", {"plaintext": b64(b"x")})
    assert data(created)["key_version"] == 1


async def test_help_has_synopsis(tr: Caller) -> None:
    helped = data(await tr.request(Operation.HELP, "encrypt/k"))
    assert helped["help"].startswith("Encrypt")
    assert tr.backend.describe_help("nope")["help"].startswith("The transit secrets engine")


async def test_reprs_hold_no_key_material(tr: Caller, storage: MemoryStorage) -> None:
    await tr.write("keys/k", {"type": "ed25519"})
    backend = tr.backend
    assert isinstance(backend, TransitBackend)
    key = await backend.store.get("k")
    assert key is not None
    record = orjson.loads(storage.data["policy/k"])["keys"]["1"]
    texts = [repr(key), repr(key.policy), repr(key.entry(1)), repr(backend.store)]
    for text in texts:
        assert record["key"] not in text and record["hmac_key"] not in text
        assert record["key"][:16] not in text


def test_package_exports_and_registry() -> None:
    from strongroom import builtin
    from strongroom.engines import transit

    assert sorted(transit.__all__) == ["TransitBackend", "factory"]
    assert builtin.FACTORIES["transit"] is transit.factory
