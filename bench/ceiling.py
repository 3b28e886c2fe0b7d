"""The ceiling: a bare ASGI app answering a fixed 100-byte JSON body, served exactly like
Strongroom (uvicorn, httptools, uvloop, our protocol class)."""

from __future__ import annotations

import signal
import socket
import subprocess
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
    """``ceiling.py PORT`` (one process), ``ceiling.py PORT WORKERS`` (WORKERS processes
    accepting on one socket bound by this one, as ``workers = N`` does), or, internally,
    ``ceiling.py PORT fd=N`` (one such worker)."""
    port = int(sys.argv[1])
    sockets = None
    if len(sys.argv) > 2 and sys.argv[2].startswith("fd="):
        sockets = [socket.socket(fileno=int(sys.argv[2][3:]))]
    elif len(sys.argv) > 2 and int(sys.argv[2]) > 1:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(2048)
        sock.set_inheritable(True)
        children = [
            subprocess.Popen(
                [sys.executable, __file__, str(port), f"fd={sock.fileno()}"],
                pass_fds=[sock.fileno()],
            )
            for _ in range(int(sys.argv[2]))
        ]
        signal.signal(signal.SIGTERM, lambda *_: [c.terminate() for c in children])
        for child in children:
            child.wait()
        return
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
    uvicorn.Server(config).run(sockets=sockets)


if __name__ == "__main__":
    main()
