"""Fakes for the identity store: a dict storage, a fake mount table, and a caller that sends
logical.Requests to the identity backend the way core does (existence check → CREATE)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from strongroom.clock import FakeClock
from strongroom.core.identity import IdentityStore, OIDCProvider, build_identity_backend
from strongroom.errors import StorageConflict
from strongroom.framework import FrameworkBackend
from strongroom.logical import Operation, Request, Response, StorageOp, TokenInfo

MOUNTS = {
    "auth_userpass_1111": ("userpass", "userpass/"),
    "auth_jwt_2222": ("jwt", "jwt/"),
    "auth_approle_3333": ("approle", "approle/"),
}
USERPASS, JWT, APPROLE = "auth_userpass_1111", "auth_jwt_2222", "auth_approle_3333"


class DictStorage:
    """A logical.Storage over a dict; ``fail`` makes the next writes raise. Every call
    yields to the loop once, so concurrent callers really interleave."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.fail = False
        self.transactions = 0

    async def get(self, key: str) -> bytes | None:
        await asyncio.sleep(0)
        return self.data.get(key)

    async def put(self, key: str, value: bytes) -> None:
        await asyncio.sleep(0)
        if self.fail:
            raise OSError("disk full")
        self.data[key] = value

    async def delete(self, key: str) -> None:
        await asyncio.sleep(0)
        if self.fail:
            raise OSError("disk full")
        self.data.pop(key, None)

    async def list(self, prefix: str) -> list[str]:
        await asyncio.sleep(0)
        children = set()
        for key in self.data:
            if key.startswith(prefix):
                head, sep, _ = key[len(prefix) :].partition("/")
                children.add(head + sep)
        return sorted(children)

    async def transaction(self, ops: Sequence[StorageOp]) -> None:
        await asyncio.sleep(0)
        if self.fail:
            raise OSError("disk full")
        self.transactions += 1
        if any(op.check and self.data.get(op.key) != op.value for op in ops):
            raise StorageConflict("storage guard failed")
        for op in ops:
            if op.check:
                continue
            if op.value is None:
                self.data.pop(op.key, None)
            else:
                self.data[op.key] = op.value


@dataclasses.dataclass
class Caller:
    backend: FrameworkBackend
    token: TokenInfo | None = None

    def as_entity(self, entity_id: str) -> Caller:
        return Caller(self.backend, TokenInfo(accessor="acc", policies=(), entity_id=entity_id))

    async def request(
        self, operation: Operation, path: str, data: Mapping[str, Any] | None = None
    ) -> Response | None:
        req = Request(
            operation=operation,
            path=path,
            data=dict(data or {}),
            token=self.token,
            mount_point="identity/",
        )
        if operation is Operation.UPDATE:
            exists = await self.backend.exists(req)
            if exists is False:
                req = dataclasses.replace(req, operation=Operation.CREATE)
        return await self.backend.handle(req)

    async def read(self, path: str) -> Response | None:
        return await self.request(Operation.READ, path)

    async def write(self, path: str, data: Mapping[str, Any] | None = None) -> Response | None:
        return await self.request(Operation.UPDATE, path, data)

    async def delete(self, path: str) -> Response | None:
        return await self.request(Operation.DELETE, path)

    async def list(self, path: str) -> Response | None:
        return await self.request(Operation.LIST, path)

    async def data(self, operation: Operation, path: str, body: Any = None) -> dict[str, Any]:
        response = await self.request(operation, path, body)
        assert response is not None and response.data is not None
        return response.data


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1_700_000_000.0)


@pytest.fixture
def storage() -> DictStorage:
    return DictStorage()


@pytest.fixture
async def store(storage: DictStorage, clock: FakeClock) -> IdentityStore:
    identity = IdentityStore(storage, clock)
    await identity.load()
    return identity


@pytest.fixture
def oidc(storage: DictStorage, clock: FakeClock, store: IdentityStore) -> OIDCProvider:
    return OIDCProvider(storage, clock, store, issuer_base=lambda: "https://vault.example:8200")


@pytest.fixture
def backend(store: IdentityStore, oidc: OIDCProvider) -> FrameworkBackend:
    return build_identity_backend(
        store,
        oidc,
        mount_exists=lambda accessor: accessor in MOUNTS,
        mount_type_of=lambda accessor: MOUNTS[accessor][0] if accessor in MOUNTS else None,
        mount_path_of=lambda accessor: MOUNTS[accessor][1] if accessor in MOUNTS else None,
    )


@pytest.fixture
def root(backend: FrameworkBackend) -> Caller:
    return Caller(backend, TokenInfo(accessor="root", policies=("root",)))
