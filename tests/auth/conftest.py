"""Drive auth backends directly: an in-memory storage view, a fake clock, and a caller that
builds logical.Requests the way core does (existence check → CREATE/UPDATE, the caller's
connection, renewal requests with the token's internal data)."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import pytest

from strongroom.clock import FakeClock
from strongroom.logical import (
    Auth,
    Backend,
    BackendConfig,
    BackendFactory,
    Connection,
    Operation,
    Request,
    Response,
    Secret,
    TokenInfo,
)
from tests.engines.conftest import FakeSystem, MemoryStorage

ROOT = TokenInfo(accessor="root-accessor", policies=("root",))


@dataclasses.dataclass
class AuthCaller:
    """Sends requests to one auth backend; admin calls carry a root token, logins none."""

    backend: Backend
    storage: MemoryStorage
    mount_accessor: str
    remote_addr: str = "127.0.0.1"

    async def request(
        self,
        operation: Operation,
        path: str,
        data: Mapping[str, Any] | None = None,
        *,
        token: TokenInfo | None = ROOT,
        remote_addr: str | None = None,
        peer_cert_der: bytes | None = None,
        peer_chain_der: tuple[bytes, ...] = (),
        secret: Secret | None = None,
    ) -> Response | None:
        req = Request(
            operation=operation,
            path=path,
            data=dict(data or {}),
            storage=self.storage,
            mount_point="auth/test/",
            mount_accessor=self.mount_accessor,
            token=token,
            connection=Connection(
                remote_addr=self.remote_addr if remote_addr is None else remote_addr,
                remote_port=50000,
                tls=peer_cert_der is not None,
                peer_cert_der=peer_cert_der,
                peer_chain_der=peer_chain_der or ((peer_cert_der,) if peer_cert_der else ()),
            ),
            unauthenticated=token is None,
            secret=secret,
        )
        if operation in (Operation.CREATE, Operation.UPDATE):
            exists = await self.backend.exists(req)
            if exists is not None:
                op = Operation.UPDATE if exists else Operation.CREATE
                req = dataclasses.replace(req, operation=op)
        return await self.backend.handle(req)

    async def read(self, path: str) -> Response | None:
        return await self.request(Operation.READ, path)

    async def write(self, path: str, data: Mapping[str, Any] | None = None) -> Response | None:
        return await self.request(Operation.UPDATE, path, data)

    async def delete(self, path: str) -> Response | None:
        return await self.request(Operation.DELETE, path)

    async def list(self, path: str) -> Response | None:
        return await self.request(Operation.LIST, path)

    async def login(self, path: str, data: Mapping[str, Any], **kwargs: Any) -> Auth:
        response = await self.request(Operation.UPDATE, path, data, token=None, **kwargs)
        assert response is not None and response.auth is not None
        return response.auth

    async def renew(self, auth: Auth, path: str = "login", **kwargs: Any) -> Auth:
        """What core will send on auth/token/renew of a token this method issued."""
        secret = Secret(type="login", internal_data=dict(auth.internal_data), increment=3600)
        response = await self.request(Operation.RENEW, path, None, secret=secret, **kwargs)
        assert response is not None and response.auth is not None
        return response.auth


MakeAuth = Callable[..., Awaitable[AuthCaller]]


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
def make_auth(clock: FakeClock, storage: MemoryStorage) -> MakeAuth:
    async def make(
        factory: BackendFactory, mount_type: str, *, initialize: bool = True, **options: str
    ) -> AuthCaller:
        accessor = f"auth_{mount_type}_1234abcd"
        config = BackendConfig(
            mount_type=mount_type,
            mount_point="auth/test/",
            mount_accessor=accessor,
            options=options,
            system=FakeSystem(clock),
            storage=storage,
        )
        backend = await factory(config)
        if initialize:
            await backend.initialize()
        return AuthCaller(backend, storage, accessor)

    return make
