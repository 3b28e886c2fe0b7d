"""The ceiling: a bare ASGI app answering a fixed 100-byte JSON body, served exactly like
Strongroom (uvicorn, httptools, uvloop, our protocol class)."""

from __future__ import annotations

import sys
from typing import Any

import uvicorn

from strongroom.server.listener import StrongroomProtocol

BODY = b'{"data":{"value":"' + b"x" * 79 + b'"}}'
assert len(BODY) == 100
HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"100")]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def main() -> None:
    port = int(sys.argv[1])
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http=StrongroomProtocol,
        loop="uvloop",
        lifespan="off",
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
