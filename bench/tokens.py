"""CPU cost per request of token work, in process: reads, lookup-self, logins.

``python bench/tokens.py`` drives the ASGI app in process (no HTTP) on SQLite and prints,
per request, the CPU time the whole process spent (``time.process_time``: all threads,
including the SQLite writer and the argon2 pool, and not the time other jobs on a shared
box steal), the best of seven rounds, for: KV v2 read and token lookup-self with the root
token, the same with a token that has a use count left (``num_uses``: a guarded
read-modify-write in storage per request), AppRole login and userpass login (a cheap
argon2id hash, m=8 KiB t=1, so that the token work is what shows), 16 logins in flight.

To compare two trees, run it with ``PYTHONPATH=<other tree>/src``.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

import argon2
import orjson
import uvloop

from strongroom.auth.userpass import _passwords
from strongroom.server.wiring import assemble

ROUNDS = 7


async def main() -> None:
    import strongroom

    # cheap test parameters, so that a login's token work shows (argon2 is not measured)
    _passwords._HASHER = argon2.PasswordHasher(  # type: ignore[misc]
        time_cost=1, memory_cost=8, parallelism=1, hash_len=32, salt_len=16, type=argon2.Type.ID
    )

    print(f"strongroom from {strongroom.__file__}", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        assembly = await assemble("sqlite", {"path": f"{tmp}/db.sqlite"})
        core = assembly.core
        keys, root = await core.initialize(1, 1)
        await core.seal_manager.submit_unseal_key(keys[0])
        await core.after_unseal()
        await core.enable("secret/", "kv", is_auth=False, options={"version": "2"})
        app = assembly.app

        async def call(method: str, path: str, body: bytes = b"", token: str = root) -> Any:
            scope: dict[str, Any] = {
                "type": "http",
                "method": method,
                "path": path,
                "query_string": b"",
                "headers": [
                    (b"x-vault-token", token.encode()),
                    (b"content-length", b"%d" % len(body)),
                ],
                "client": ("127.0.0.1", 1),
            }
            messages = [{"type": "http.request", "body": body, "more_body": False}]
            sent: list[dict[str, Any]] = []

            async def receive() -> dict[str, Any]:
                return messages.pop()

            async def send(message: dict[str, Any]) -> None:
                sent.append(message)

            await app(scope, receive, send)
            status = int(sent[0]["status"])
            payload = sent[1].get("body", b"") if len(sent) > 1 else b""
            if status >= 300:
                raise RuntimeError(f"{method} {path}: {status} {payload[:200]!r}")
            return orjson.loads(payload) if payload else None

        body = b'{"data":{"username":"svc","password":"0123456789abcdef0123"}}'
        for i in range(100):
            await call("POST", f"/v1/secret/data/b{i}", body)
        await call("POST", "/v1/sys/auth/approle", b'{"type":"approle"}')
        await call("POST", "/v1/auth/approle/role/r", b'{"token_ttl":"1h"}')
        role_id = (await call("GET", "/v1/auth/approle/role/r/role-id"))["data"]["role_id"]
        secret_id = (await call("POST", "/v1/auth/approle/role/r/secret-id"))["data"]["secret_id"]
        approle_body = orjson.dumps({"role_id": role_id, "secret_id": secret_id})
        await call("POST", "/v1/sys/auth/userpass", b'{"type":"userpass"}')
        await call("POST", "/v1/auth/userpass/users/u", b'{"password":"pw"}')
        limited = (
            await call(
                "POST", "/v1/auth/token/create", b'{"num_uses": 1000000, "policies": ["root"]}'
            )
        )["auth"]["client_token"]

        async def sequential(paths: list[str], token: str) -> None:
            for path in paths:
                await call("GET", path, token=token)

        async def logins(path: str, payload: bytes, count: int) -> None:
            semaphore = asyncio.Semaphore(16)

            async def one() -> None:
                async with semaphore:
                    await call("POST", path, payload, token="")

            await asyncio.gather(*(one() for _ in range(count)))

        n = 2000
        reads = [f"/v1/secret/data/b{i % 100}" for i in range(n)]
        selfs = ["/v1/auth/token/lookup-self"] * n
        cases: list[tuple[str, int, Callable[[], Awaitable[None]]]] = [
            ("KV v2 read (root)", n, lambda: sequential(reads, root)),
            ("lookup-self (root)", n, lambda: sequential(selfs, root)),
            ("KV v2 read (num_uses token)", n // 4, lambda: sequential(reads[: n // 4], limited)),
            (
                "approle login (c=16)",
                400,
                lambda: logins("/v1/auth/approle/login", approle_body, 400),
            ),
            (
                "userpass login (c=16, cheap argon2)",
                400,
                lambda: logins("/v1/auth/userpass/login/u", b'{"password":"pw"}', 400),
            ),
        ]
        for name, count, run in cases:
            best = float("inf")
            for _ in range(ROUNDS):
                start = time.process_time()
                await run()
                best = min(best, time.process_time() - start)
            print(f"{name:38} {best / count * 1e6:8.1f} us CPU/request")
        await assembly.close()


if __name__ == "__main__":
    uvloop.run(main())
