"""Public helpers for tests that need a core in this process (Vault's TestCoreUnsealed).

The project's own tests drive real server processes over HTTP; these helpers are for code
that embeds Strongroom, for benchmarks of the request road without a socket, and for tests
of core internals (caches, invalidation) that want several cores in one process. Each core
built here owns its storage, barrier, caches and memos: two of them share nothing.

    async with unsealed_core() as tc:
        status, body = await tc.request("POST", "secret/data/a", {"data": {"k": "v"}})
        status, body = await tc.request("GET", "secret/data/a")

    async with ha_cluster(tmp_path / "ha.db", nodes=2) as cores:  # cores[0] is the active
        ...
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Mapping, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson

from strongroom.clock import Clock, FakeClock
from strongroom.core.core import Core
from strongroom.http import StrongroomApp
from strongroom.server.wiring import Assembly, assemble

__all__ = ["FakeClock", "TestCore", "ha_cluster", "unsealed_core"]


@dataclass(slots=True)
class TestCore:
    """An initialised, unsealed core with its ASGI app, root token and unseal keys."""

    __test__ = False  # not a pytest test class

    assembly: Assembly
    root_token: str
    keys: list[bytes] = field(repr=False)

    @property
    def core(self) -> Core:
        return self.assembly.core

    @property
    def app(self) -> StrongroomApp:
        return self.assembly.app

    async def unseal(self) -> None:
        """Unseal again (after ``core.seal()``) with the stored key shares."""
        for key in self.keys:
            await self.core.seal_manager.submit_unseal_key(key)
        await self.core.after_unseal()

    async def request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        """One request through the real ASGI app (no socket): ``path`` is relative to
        ``/v1/``; the root token is used unless ``token`` is given ("" for none). Returns
        the status and the decoded JSON body (``None`` when empty)."""
        status, _, raw = await self.raw_request(method, path, body, token=token, headers=headers)
        return status, orjson.loads(raw) if raw else None

    async def raw_request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """As :meth:`request`, returning the status, response headers and raw body."""
        payload = orjson.dumps(body) if body is not None else b""
        raw_path, _, query = path.partition("?")
        sent_headers = [(b"content-length", str(len(payload)).encode())]
        use = self.root_token if token is None else token
        if use:
            sent_headers.append((b"x-vault-token", use.encode()))
        for name, value in (headers or {}).items():
            sent_headers.append((name.lower().encode(), value.encode()))
        scope: dict[str, Any] = {
            "type": "http",
            "http_version": "1.1",
            "method": method.upper(),
            "path": "/v1/" + raw_path.lstrip("/"),
            "raw_path": ("/v1/" + raw_path.lstrip("/")).encode(),
            "query_string": query.encode(),
            "headers": sent_headers,
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 8200),
            "scheme": "http",
        }
        messages = [{"type": "http.request", "body": payload, "more_body": False}]
        sent: list[MutableMapping[str, Any]] = []

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop()
            return {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(message)

        await self.app(scope, receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        response_headers = {
            bytes(k).decode().lower(): bytes(v).decode() for k, v in start.get("headers", ())
        }
        raw = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return int(start["status"]), response_headers, raw


@asynccontextmanager
async def unsealed_core(
    storage_type: str = "inmem",
    storage_options: Mapping[str, Any] | None = None,
    *,
    clock: Clock | None = None,
    kv_v2_at: str | None = "secret/",
    **settings: Any,
) -> AsyncIterator[TestCore]:
    """An initialised and unsealed core (one key share), sealed and closed on exit.

    Args:
        storage_type: ``inmem`` (default) or ``sqlite`` (give ``storage_options["path"]``).
        storage_options: the storage stanza's options.
        clock: a clock for the core (e.g. :class:`FakeClock`); the system clock otherwise.
        kv_v2_at: where to mount a KV v2 engine, like ``vault server -dev``; ``None`` for none.
        settings: further keyword arguments of :func:`strongroom.server.wiring.assemble`.
    """
    assembly = await assemble(storage_type, dict(storage_options or {}), clock=clock, **settings)
    try:
        core = assembly.core
        keys, root = await core.initialize(1, 1)
        tc = TestCore(assembly=assembly, root_token=root, keys=keys)
        await tc.unseal()
        if kv_v2_at:
            await core.enable(kv_v2_at, "kv", is_auth=False, options={"version": "2"})
        yield tc
    finally:
        await assembly.close()


@asynccontextmanager
async def ha_cluster(
    path: str | os.PathLike[str],
    nodes: int = 2,
    *,
    lock_ttl: float = 1.0,
    kv_v2_at: str | None = "secret/",
) -> AsyncIterator[list[TestCore]]:
    """``nodes`` cores in this process on one SQLite file in HA mode (an in-process cluster):
    initialised, every one unsealed, the active first in the list, the rest standbys. Each
    node's ``api_addr`` is ``http://node<i>`` (what a standby's 307 points at)."""
    options = {"path": str(path), "ha_enabled": True, "ha_lock_ttl": lock_ttl}
    assemblies: list[Assembly] = []
    try:
        for i in range(nodes):
            assemblies.append(await assemble("sqlite", dict(options), api_addr=f"http://node{i}"))
        keys, root = await assemblies[0].core.initialize(1, 1)
        cores = [TestCore(assembly=a, root_token=root, keys=keys) for a in assemblies]
        for tc in cores:
            await tc.unseal()
        deadline = asyncio.get_running_loop().time() + 10 * lock_ttl
        while not any(_is_active(tc) for tc in cores):
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("no node became active")
            await asyncio.sleep(0.02)
        cores.sort(key=lambda tc: not _is_active(tc))
        if kv_v2_at:
            await cores[0].core.enable(kv_v2_at, "kv", is_auth=False, options={"version": "2"})
        yield cores
    finally:
        for assembly in assemblies:
            await assembly.close()


def _is_active(tc: TestCore) -> bool:
    cluster = tc.core.cluster
    return cluster is not None and cluster.active and not tc.core.sealed
