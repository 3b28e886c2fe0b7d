"""``repr()`` never shows a secret: the objects that carry tokens, keys and secret values
print their shape, not their contents (a repr ends up in logs, tracebacks and debuggers)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import os
import time

import pytest

from strongroom.barrier import AESGCMBarrier, Keyring, TermKey, View
from strongroom.cli._client import Settings
from strongroom.core.tokens import TokenEntry
from strongroom.logical import (
    Auth,
    Connection,
    Operation,
    Request,
    Response,
    Secret,
    StorageOp,
    TokenInfo,
)
from strongroom.seal import GenerateRootStatus, InitResult, RekeyResult, SealConfig, SealManager
from strongroom.seal._attempts import GenerateRootAttempt, RekeyAttempt, UnsealAttempt
from strongroom.server.config import StorageConfig
from strongroom.storage import CachedStorage, MemoryStorage

TOKEN = "hvs.TOPSECRETtokenVALUE000"
VALUE = "correct-horse-battery-staple"
KEY = bytes(range(32))


def _assert_hidden(obj: object, *secrets: str | bytes) -> None:
    text = repr(obj)
    for secret in secrets:
        forms = (
            [repr(secret), secret.hex(), base64.b64encode(secret).decode()]
            if isinstance(secret, bytes)
            else [secret]
        )
        for form in forms:
            assert form not in text, f"{form!r} in {text}"


def test_request() -> None:
    request = Request(
        operation=Operation.UPDATE,
        path="data/app",
        data={"data": {"password": VALUE}},
        client_token=TOKEN,
        query={"token": TOKEN},
        headers={"x-vault-wrap-ttl": VALUE},
        token=TokenInfo(accessor="acc", policies=("default",)),
        connection=Connection("127.0.0.1", 1, tls=True, peer_cert_der=KEY, peer_chain_der=(KEY,)),
        secret=Secret(type="creds", internal_data={"password": VALUE}),
    )
    _assert_hidden(request, TOKEN, VALUE, KEY)
    assert "data/app" in repr(request)  # the shape still shows


def test_response() -> None:
    response = Response(
        data={"password": VALUE},
        auth=Auth(client_token=TOKEN, internal_data={"password": VALUE}),
        secret=Secret(internal_data={"password": VALUE}),
        headers={"x-token": TOKEN},
        raw_body=VALUE.encode(),
        wrap_info={"token": TOKEN},
        lease_id="secret/creds/x",
    )
    _assert_hidden(response, TOKEN, VALUE)
    assert "password" in repr(response)  # keys, never values


def test_auth_secret_and_storage_op() -> None:
    _assert_hidden(Auth(policies=("p",), client_token=TOKEN, internal_data={"k": VALUE}), TOKEN)
    _assert_hidden(Auth(client_token=TOKEN, internal_data={"k": VALUE}), VALUE)
    _assert_hidden(Secret(internal_data={"password": VALUE}), VALUE)
    _assert_hidden(StorageOp("logical/x", VALUE.encode()), VALUE.encode(), VALUE)
    _assert_hidden([StorageOp("a", KEY), StorageOp("b")], KEY)


def test_token_entry() -> None:
    entry = TokenEntry(
        id_hash="feedface" * 8,
        accessor="acc",
        policies=("root",),
        parent_hash="deadbeef" * 8,
        cubbyhole_id="cafebabe" * 4,
        internal={"secret": VALUE},
    )
    _assert_hidden(entry, "feedface", "deadbeef", "cafebabe", VALUE)


def test_key_material() -> None:
    keyring = Keyring(root_key=KEY, keys=(TermKey(1, bytes(reversed(KEY)), time.time()),))
    _assert_hidden(keyring, KEY, bytes(reversed(KEY)))
    _assert_hidden(InitResult(keys=(KEY, KEY[::2] + KEY[1::2])), KEY, KEY[::2] + KEY[1::2])
    _assert_hidden(RekeyResult(nonce="n", keys=(KEY,)), KEY)
    status = GenerateRootStatus(
        started=True, nonce="n", progress=1, required=2, encoded_token=VALUE, otp=TOKEN
    )
    _assert_hidden(status, VALUE, TOKEN)
    _assert_hidden(UnsealAttempt(nonce="n", parts=(KEY,)), KEY)
    _assert_hidden(GenerateRootAttempt(nonce="n", otp=TOKEN, return_otp=True, parts=(KEY,)), TOKEN)


def test_rekey_attempt() -> None:
    attempt = RekeyAttempt(
        nonce="n",
        config=SealConfig(secret_shares=3, secret_threshold=2),
        verification_required=True,
        created=0.0,
        parts=(KEY,),
        verification_key=bytes(reversed(KEY)),
        verification_parts=(KEY[:16],),
    )
    _assert_hidden(attempt, KEY, bytes(reversed(KEY)), KEY[:16])


def test_storage_and_barrier_objects() -> None:
    async def build() -> list[object]:
        memory = MemoryStorage()
        await memory.put("core/x", VALUE.encode())
        cached = CachedStorage(memory)
        await cached.get("core/x")
        barrier = AESGCMBarrier(cached)
        seal = SealManager(cached, barrier)
        await seal.load()
        await seal.initialize(1, 1)
        return [memory, cached, barrier, seal, View(barrier, "logical/abc/")]

    for obj in asyncio.run(build()):
        _assert_hidden(obj, VALUE, VALUE.encode())


def test_config_and_cli_settings() -> None:
    url = "postgres://vault:pa55w0rd@db.internal/vault"
    _assert_hidden(StorageConfig("postgresql", {"connection_url": url}), url, "pa55w0rd")
    _assert_hidden(Settings(address="https://x:8200", token=TOKEN), TOKEN)


@pytest.mark.parametrize("cls", [Request, Auth, StorageOp, Secret, Connection, TokenEntry])
def test_secret_fields_are_excluded_from_repr(cls: type) -> None:
    """A new secret-bearing field must opt out of repr too: the names below are secrets."""
    secret_names = {
        "client_token",
        "data",
        "value",
        "internal_data",
        "internal",
        "id_hash",
        "parent_hash",
        "peer_cert_der",
        "peer_chain_der",
        "query",
        "headers",
        "cubbyhole_id",
    }
    for f in dataclasses.fields(cls):
        if f.name in secret_names:
            assert f.repr is False, f"{cls.__name__}.{f.name} is in repr"


def test_random_values_never_leak_through_nested_reprs() -> None:
    token = "hvs." + base64.b32encode(os.urandom(15)).decode()
    auth = Auth(client_token=token)
    response = Response(auth=auth, data={"auth": {"client_token": token}})
    request = Request(operation=Operation.READ, path="x", client_token=token)
    _assert_hidden((auth, response, request, {"r": request}), token)


def test_otp_records() -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from strongroom.core.identity._mfa import PendingLogin
    from strongroom.engines.ssh._keys import CAKey, generate_key
    from strongroom.framework import TotpKey, b32_secret

    totp = TotpKey(key=KEY, issuer="Acme", account_name="alice")
    _assert_hidden(totp, KEY, b32_secret(KEY))
    private = generate_key("ed25519", 0)
    assert isinstance(private, ed25519.Ed25519PrivateKey)
    ca = CAKey(private)
    assert "private_key" not in repr(ca)
    _assert_hidden(ca, private.private_bytes_raw())
    pending = PendingLogin(
        path="auth/userpass/login/alice",
        mount_accessor="auth_userpass_1",
        alias_name="alice",
        entity_id="e",
        constraints={"e": ["m"]},
        auth={"internal_data": {"password_hash": VALUE}},
    )
    _assert_hidden(pending, VALUE)
