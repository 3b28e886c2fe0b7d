"""Fakes for driving engines directly: a dict-backed Storage, a SystemView on a FakeClock, and
a small caller that builds logical.Requests the way core does (existence check → CREATE or
UPDATE)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import pytest

from strongroom.clock import FakeClock
from strongroom.engines import cubbyhole, kv
from strongroom.errors import NotFound, StorageConflict
from strongroom.logical import (
    Backend,
    BackendConfig,
    Operation,
    Request,
    Response,
    StorageOp,
    TokenInfo,
)


class MemoryStorage:
    """A logical.Storage over a dict. Every call yields to the loop once, so concurrent
    handlers really interleave; ``transaction`` applies all ops with no yield in between."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.transactions = 0

    async def get(self, key: str) -> bytes | None:
        await asyncio.sleep(0)
        return self.data.get(key)

    async def put(self, key: str, value: bytes) -> None:
        await asyncio.sleep(0)
        self.data[key] = value

    async def delete(self, key: str) -> None:
        await asyncio.sleep(0)
        self.data.pop(key, None)

    async def list(self, prefix: str) -> list[str]:
        await asyncio.sleep(0)
        children: set[str] = set()
        for key in self.data:
            if key.startswith(prefix):
                head, sep, _ = key[len(prefix) :].partition("/")
                children.add(head + sep)
        return sorted(children)

    async def transaction(self, ops: Sequence[StorageOp]) -> None:
        await asyncio.sleep(0)
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


class FakeSystem:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock

    def default_lease_ttl(self) -> int:
        return 2764800

    def max_lease_ttl(self) -> int:
        return 2764800

    def now(self) -> float:
        return self.clock.now()

    async def generate_password(self, policy: str) -> str:
        raise NotFound("policy does not exist")

    def identity_template(self, text: str, entity_id: str) -> str | None:
        # in-process engine tests have no identity store: only the entity ID is known
        if "{{" not in text:
            return text
        if not entity_id:
            return None
        filled = text.replace("{{identity.entity.id}}", entity_id)
        return None if "{{" in filled else filled


@dataclasses.dataclass
class Caller:
    """Sends requests to one backend, as one token."""

    backend: Backend
    storage: MemoryStorage
    token: TokenInfo | None = None

    async def request(
        self,
        operation: Operation,
        path: str,
        data: Mapping[str, Any] | None = None,
        query: Mapping[str, str] | None = None,
    ) -> Response | None:
        req = Request(
            operation=operation,
            path=path,
            data=dict(data or {}),
            query=dict(query or {}),
            storage=self.storage,
            token=self.token,
        )
        if operation in (Operation.CREATE, Operation.UPDATE):
            exists = await self.backend.exists(req)
            if exists is not None:
                op = Operation.UPDATE if exists else Operation.CREATE
                req = dataclasses.replace(req, operation=op)
        return await self.backend.handle(req)

    async def read(self, path: str, **query: str) -> Response | None:
        return await self.request(Operation.READ, path, query=query)

    async def write(self, path: str, data: Mapping[str, Any] | None = None) -> Response | None:
        return await self.request(Operation.UPDATE, path, data)

    async def patch(self, path: str, data: Mapping[str, Any]) -> Response | None:
        return await self.request(Operation.PATCH, path, data)

    async def delete(self, path: str) -> Response | None:
        return await self.request(Operation.DELETE, path)

    async def list(self, path: str) -> Response | None:
        return await self.request(Operation.LIST, path)


MakeKV = Callable[..., Awaitable[Caller]]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1_700_000_000.0)


@pytest.fixture
def storage() -> MemoryStorage:
    return MemoryStorage()


@pytest.fixture
def make_config(clock: FakeClock, storage: MemoryStorage) -> Callable[..., BackendConfig]:
    def make(mount_type: str = "kv", **options: str) -> BackendConfig:
        return BackendConfig(
            mount_type=mount_type,
            mount_point="secret/",
            mount_accessor="kv_1234",
            options=options,
            system=FakeSystem(clock),
            storage=storage,
        )

    return make


@pytest.fixture
def make_kv(make_config: Callable[..., BackendConfig], storage: MemoryStorage) -> MakeKV:
    async def make(version: str = "2", mount_type: str = "kv") -> Caller:
        backend = await kv.factory(make_config(mount_type, version=version))
        await backend.initialize()
        return Caller(backend, storage)

    return make


@pytest.fixture
def make_cubbyhole(
    make_config: Callable[..., BackendConfig], storage: MemoryStorage
) -> Callable[[str | None], Awaitable[Caller]]:
    async def make(cubbyhole_id: str | None) -> Caller:
        backend = await cubbyhole.factory(make_config("cubbyhole"))
        await backend.initialize()
        token = None
        if cubbyhole_id is not None:
            token = TokenInfo(accessor="acc", policies=("default",), cubbyhole_id=cubbyhole_id)
        return Caller(backend, storage, token)

    return make
