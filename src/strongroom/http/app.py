"""The ASGI entry point. One catch-all ``/v1/…`` route dispatched by core's own router.

A framework router would buy nothing here (Vault's API is one prefix) and costs ~25 %
throughput, so this is a plain ASGI callable.
"""

from __future__ import annotations

import logging
import os
import random
import traceback
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol

from strongroom.errors import InvalidRequest, StandbyRedirect, StrongroomError
from strongroom.framework import remember
from strongroom.http.requests import (
    BODY_COMPLETE,
    HttpLimits,
    operation_for,
    parse_json_object,
    read_body,
    split_query,
)
from strongroom.http.responses import encode_errors, encode_response
from strongroom.logical import Connection, Operation, Request, Response

__all__ = ["HttpLimits", "StrongroomApp"]

log = logging.getLogger("strongroom.http")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
_NO_BODY: list[tuple[bytes, bytes]] = [(b"cache-control", b"no-store")]
_FORWARDED_HEADERS = frozenset({b"x-vault-request", b"x-vault-wrap-ttl", b"x-vault-wrap-format"})


class Handler(Protocol):
    async def __call__(self, request: Request) -> Response | None: ...


class StrongroomApp:
    """ASGI app: parse, hand to ``handler`` (core's road), encode Vault's envelope."""

    def __init__(
        self,
        handler: Handler,
        *,
        limits: HttpLimits | None = None,
        on_startup: Callable[[], Awaitable[None]] | None = None,
        on_shutdown: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.handler = handler
        self.limits = limits or HttpLimits()
        self.on_startup = on_startup
        self.on_shutdown = on_shutdown
        # one immutable Connection per plaintext client address, per app (bounded)
        self._plain_connections: dict[tuple[str, int], Connection] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if self.on_startup is not None:
                        await self.on_startup()
                except Exception as exc:
                    log.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.on_shutdown is not None:
                    await self.on_shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        method: str = scope["method"]
        path: str = scope["path"]
        head_only = method == "HEAD"
        operation = Operation.READ
        request_id = _request_id()
        try:
            if not path.startswith("/v1/"):
                await _send(send, 404, encode_errors([]), head_only)
                return
            query = split_query(scope.get("query_string", b""))
            operation = operation_for(method, query)
            token = ""
            declared: int | None = None
            chunked = False
            headers: dict[str, str] = {}
            # ASGI servers hand header names over lower-cased, so they compare as bytes
            for raw_name, raw_value in scope["headers"]:
                if raw_name == b"x-vault-token":
                    token = raw_value.decode("latin-1").strip()
                elif raw_name == b"authorization":
                    if not token:
                        value = raw_value.decode("latin-1")
                        if value[:7].lower() == "bearer ":
                            token = value[7:].strip()
                elif raw_name == b"content-length":
                    try:
                        declared = int(raw_value)
                    except ValueError:
                        raise InvalidRequest("invalid Content-Length") from None
                elif raw_name == b"transfer-encoding":
                    chunked = True
                elif raw_name in _FORWARDED_HEADERS:
                    headers[raw_name.decode("latin-1")] = raw_value.decode("latin-1")
            if declared is None and not chunked:
                declared = 0  # no Content-Length and not chunked: HTTP/1.1 says no body
            body = await read_body(
                receive, declared, self.limits, complete=scope.get(BODY_COMPLETE, False)
            )
            data = parse_json_object(body, self.limits) if body else {}
            rel = path[4:]
            if operation is Operation.LIST and not rel.endswith("/"):
                rel += "/"
            request = Request(
                operation=operation,
                path=rel,
                data=data,
                id=request_id,
                client_token=token,
                query=query,
                headers=headers,
                connection=_connection(scope, self._plain_connections),
            )
            response = await self.handler(request)
            status, payload = encode_response(response, operation, request_id)
            if response is not None and response.raw_body is not None:
                content_type = response.content_type.encode("latin-1")
                await _send(send, status, payload, head_only, content_type)
            else:
                await _send(send, status, payload, head_only)
        except StandbyRedirect as exc:
            await _redirect(send, exc.active_addr, scope)
        except StrongroomError as exc:
            messages = exc.messages if exc.status < 500 else ["internal error"]
            if exc.status >= 500 and exc.status != 503:
                log.error("request failed: %s", type(exc).__name__)
            elif exc.status == 503:
                messages = exc.messages
            await _send(send, exc.status, encode_errors(messages), head_only)
        except Exception as exc:
            # The log gets the exception type and where it happened, never its message: a
            # library's message can quote a request value (int("hunter2")). The client
            # learns nothing.
            frames = "".join(traceback.format_tb(exc.__traceback__))
            log.error(
                "unhandled error: %s (request %s)\n%s", type(exc).__name__, request_id, frames
            )
            await _send(send, 500, encode_errors(["internal error"]), head_only)


_ids = random.Random(int.from_bytes(os.urandom(16), "big"))  # noqa: S311 (not a secret)


def _request_id() -> str:
    """A UUID-shaped request ID. It names a request in logs and audit entries; it guards
    nothing, so a fast PRNG seeded from the OS is enough (no syscall per request)."""
    raw = f"{_ids.getrandbits(128):032x}"
    return f"{raw[:8]}-{raw[8:12]}-4{raw[13:16]}-{raw[16:20]}-{raw[20:]}"


_CONNECTIONS_LIMIT = 4096


def _connection(scope: Scope, plain: dict[tuple[str, int], Connection]) -> Connection:
    """The request's connection; ``plain`` is the app's own table of plaintext ones."""
    client = scope.get("client") or ("", 0)
    extensions = scope.get("extensions") or {}
    tls = extensions.get("tls")
    if tls is None:
        # one immutable record per client address serves all its plaintext requests
        key = (client[0], client[1])
        connection = plain.get(key)
        if connection is None:
            connection = remember(
                plain,
                key,
                Connection(remote_addr=client[0], remote_port=client[1]),
                _CONNECTIONS_LIMIT,
            )
        return connection
    return Connection(
        remote_addr=client[0],
        remote_port=client[1],
        tls=True,
        peer_cert_der=tls.get("client_cert_der"),
        peer_chain_der=tuple(tls.get("client_chain_der") or ()),
    )


async def _redirect(send: Send, active_addr: str, scope: Scope) -> None:
    """Vault's standby answer without forwarding: 307 to the same path on the active."""
    location = active_addr.rstrip("/") + scope["path"]
    query = scope.get("query_string", b"")
    if query:
        location += "?" + query.decode("latin-1")
    headers = [(b"location", location.encode("latin-1")), (b"content-length", b"0")]
    await send({"type": "http.response.start", "status": 307, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


async def _send(
    send: Send, status: int, body: bytes | None, head_only: bool, content_type: bytes = b""
) -> None:
    if body is None:
        await send({"type": "http.response.start", "status": status, "headers": _NO_BODY})
        await send({"type": "http.response.body", "body": b""})
        return
    base = [(b"content-type", content_type), _JSON[1]] if content_type else _JSON
    headers = [*base, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head_only else body})
