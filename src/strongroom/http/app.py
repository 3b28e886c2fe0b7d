"""The ASGI entry point. One catch-all ``/v1/…`` route dispatched by core's own router.

A framework router would buy nothing here (Vault's API is one prefix) and costs ~25 %
throughput, so this is a plain ASGI callable.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import math
import os
import random
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from time import perf_counter
from typing import Any, Protocol

from strongroom.core.system.cors import CorsConfig
from strongroom.errors import (
    DeadlineExceeded,
    InvalidRequest,
    StandbyRedirect,
    StrongroomError,
    UnsupportedMediaType,
    UpstreamError,
)
from strongroom.framework import remember
from strongroom.http import static
from strongroom.http.cors import CorsDecision, decide
from strongroom.http.requests import (
    BODY_COMPLETE,
    HttpLimits,
    looks_like_form,
    operation_for,
    parse_form,
    parse_json_object,
    read_body,
    split_query,
)
from strongroom.http.responses import encode_errors, encode_response
from strongroom.logical import Connection, Operation, Request, Response

__all__ = ["AppHooks", "HttpLimits", "StrongroomApp"]

log = logging.getLogger("strongroom.http")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
_NO_BODY: list[tuple[bytes, bytes]] = [(b"cache-control", b"no-store")]
_MERGE_PATCH = b"application/merge-patch+json"
# request bodies that are not JSON and reach the backend as-is (base64 in http_raw_body)
_RAW_BODY_TYPES = frozenset({b"application/ocsp-request"})
_NONE: frozenset[bytes] = frozenset()
_RAW_BODY_PATHS = frozenset(
    {"sys/storage/snapshot", "sys/storage/raft/snapshot", "sys/storage/raft/snapshot-force"}
)
_FORWARDED_HEADERS = frozenset(
    {
        b"x-vault-request",
        b"x-vault-wrap-ttl",
        b"x-vault-wrap-format",
        # HA consistency (core/cluster.py)
        b"x-vault-index",
        b"x-vault-inconsistent",
        # the client's address and certificate on a request a standby forwarded (trusted
        # only on cluster listeners: server/cluster_listener.py)
        b"x-strongroom-forwarded-for",
        b"x-strongroom-forwarded-client-cert",
    }
)


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
        hooks: AppHooks | None = None,
    ) -> None:
        self.handler = handler
        self.hooks = hooks or AppHooks()
        self.cors = self.hooks.cors  # the current sys/config/cors policy (http/cors.py)
        self.limits = limits or HttpLimits()
        self._deadlines = _Deadlines(self.limits.max_request_duration)
        self.on_startup = on_startup
        self.on_shutdown = on_shutdown
        # one immutable Connection per plaintext client address, per app (bounded)
        self._plain_connections: dict[tuple[str, int], Connection] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            observe = self.hooks.observe
            if observe is None:
                await self._http(scope, receive, send)
                return
            # one clock read serves the in-flight table and the latency
            start = perf_counter()
            live = self.hooks.in_flight.live if self.hooks.in_flight is not None else {}
            key = id(scope)  # unique while the request runs
            live[key] = (start, scope)
            status = 500  # if _http itself fails, the server answers 500
            try:
                status = await self._http(scope, receive, send)
            finally:
                seconds = perf_counter() - start
                del live[key]
                observe(scope["method"], scope["path"], status, seconds)
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

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> int:
        """Serve one request; returns the status sent (for request metrics)."""
        method: str = scope["method"]
        path: str = scope["path"]
        head_only = method == "HEAD"
        operation = Operation.READ
        request_id = _request_id()
        extra: tuple[tuple[bytes, bytes], ...] = ()
        try:
            if not path.startswith("/v1/"):
                if self.hooks.ui and (path in ("/", "/ui") or path.startswith("/ui/")):
                    custom = self.hooks.ui_headers() if self.hooks.ui_headers else ()
                    return await _static(send, method, path, scope, custom)
                return await _send(send, 404, encode_errors([]), head_only)
            query = split_query(scope.get("query_string", b""))
            if self.cors is not None and self.cors().enabled:
                origin = _origin(scope)
                if origin:
                    decision = _cors_decision(self.cors(), origin, method, scope)
                    if decision.status is not None:
                        body = (
                            encode_errors(["origin not allowed"])
                            if decision.status == 403
                            else None
                        )
                        return await _send(
                            send, decision.status, body, head_only, extra=decision.headers
                        )
                    extra = decision.headers
            render = self.hooks.render_metrics
            if (
                render is not None
                and self.hooks.unauthenticated_metrics
                and path == "/v1/sys/metrics"
                and method == "GET"
            ):
                metrics = await render(query.get("format", ""))
                status, payload = encode_response(metrics, Operation.READ, request_id)
                content_type = metrics.content_type.encode("latin-1")
                return await _send(send, status, payload, head_only, content_type, extra=extra)
            operation = operation_for(method, query)
            audited = self.hooks.audited_headers() if self.hooks.audited_headers else _NONE
            token = ""
            declared: int | None = None
            chunked = False
            raw_body = False
            media_type = b""
            headers: dict[str, str] = {}
            # ASGI servers hand header names over lower-cased, so they compare as bytes
            for raw_name, raw_value in scope["headers"]:
                if raw_name == b"x-vault-token":
                    token = raw_value.decode("latin-1").strip()
                elif raw_name == b"authorization":
                    value = raw_value.decode("latin-1")
                    if value[:7].lower() == "bearer ":
                        if not token:
                            token = value[7:].strip()
                    else:  # e.g. Basic client credentials (the OIDC provider's token endpoint)
                        headers["authorization"] = value
                elif raw_name == b"content-length":
                    try:
                        declared = int(raw_value)
                    except ValueError:
                        raise InvalidRequest("invalid Content-Length") from None
                elif raw_name == b"transfer-encoding":
                    chunked = True
                elif raw_name == b"content-type":
                    media_type = raw_value.split(b";")[0].strip().lower()
                    raw_body = media_type in _RAW_BODY_TYPES
                elif raw_name in _FORWARDED_HEADERS or raw_name in audited:
                    headers[raw_name.decode("latin-1")] = raw_value.decode("latin-1")
                elif raw_name == b"x-vault-mfa":  # login MFA: several headers add up
                    value = raw_value.decode("latin-1")
                    mfa = headers.get("x-vault-mfa")
                    headers["x-vault-mfa"] = f"{mfa},{value}" if mfa else value
            # a snapshot restore's body is the snapshot file, whatever its content type
            raw_body = raw_body or path[4:] in _RAW_BODY_PATHS
            if declared is None and not chunked:
                declared = 0  # no Content-Length and not chunked: HTTP/1.1 says no body
            if operation is Operation.PATCH and media_type != _MERGE_PATCH:
                # Vault: a PATCH is a JSON merge patch (RFC 7396) and must say so
                raise UnsupportedMediaType(
                    "PATCH requires Content-Type of application/merge-patch+json, got "
                    f'"{media_type.decode("latin-1")}"'
                )
            deadlines = self._deadlines
            task = deadlines.enter()
            try:
                body = await read_body(
                    receive, declared, self.limits, complete=scope.get(BODY_COMPLETE, False)
                )
                if body and raw_body:
                    # a DER body (OCSP): handed over as-is, base64 in ``http_raw_body``, as
                    # Vault hands its backends the HTTP request for these content types
                    data: dict[str, object] = {"http_raw_body": base64.b64encode(body).decode()}
                elif body and looks_like_form(body, media_type):
                    data = parse_form(body, self.limits)  # form_post callbacks, token requests
                else:
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
            except asyncio.CancelledError:
                if task is None or not deadlines.leave(task):
                    raise  # cancelled by the server (shutdown, disconnect), not by the deadline
                task.uncancel()
                raise DeadlineExceeded() from None
            finally:
                if task is not None:
                    deadlines.leave(task)
            if response is not None and response.stream is not None:
                return await _stream(send, receive, response.stream, response.content_type, extra)
            status, payload = encode_response(response, operation, request_id)
            if response is not None:
                if response.headers:
                    extra += tuple(
                        (k.lower().encode("latin-1"), v.encode("latin-1"))
                        for k, v in response.headers.items()
                    )
                extra += response.wire_headers
            if response is not None and response.raw_body is not None:
                content_type = response.content_type.encode("latin-1")
                return await _send(send, status, payload, head_only, content_type, extra=extra)
            else:
                return await _send(send, status, payload, head_only, extra=extra)
        except StandbyRedirect as exc:
            await _redirect(send, exc.active_addr, scope, extra)
            return 307
        except StrongroomError as exc:
            shown = exc.status < 500 or isinstance(exc, UpstreamError)
            messages = exc.messages if shown else ["internal error"]
            if exc.status >= 500 and exc.status != 503:
                log.error("request failed: %s", type(exc).__name__)
            elif exc.status == 503:
                messages = exc.messages
            exc_headers: dict[str, str] | None = getattr(exc, "headers", None)
            if exc_headers:
                extra += tuple((k.lower().encode(), v.encode()) for k, v in exc_headers.items())
            return await _send(send, exc.status, encode_errors(messages), head_only, extra=extra)
        except Exception as exc:
            # The log gets the exception type and where it happened, never its message: a
            # library's message can quote a request value (int("hunter2")). The client
            # learns nothing.
            frames = "".join(traceback.format_tb(exc.__traceback__))
            log.error(
                "unhandled error: %s (request %s)\n%s", type(exc).__name__, request_id, frames
            )
            return await _send(send, 500, encode_errors(["internal error"]), head_only, extra=extra)


def _origin(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"origin":
            return str(value.decode("latin-1"))
    return ""


def _cors_decision(config: CorsConfig, origin: str, method: str, scope: Scope) -> CorsDecision:
    requested = ""
    if method == "OPTIONS":
        for name, value in scope["headers"]:
            if name == b"access-control-request-method":
                requested = value.decode("latin-1")
    return decide(config, origin, method, requested)


async def _stream(
    send: Send,
    receive: Receive,
    chunks: AsyncIterator[bytes],
    content_type: str,
    extra: tuple[tuple[bytes, bytes], ...],
) -> int:
    """Send ``chunks`` as they come until they end or the client disconnects (the only
    thing ``receive`` can still say once the request body has been read)."""
    headers = [(b"content-type", content_type.encode("latin-1")), _JSON[1], *extra]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    gone = asyncio.ensure_future(receive())
    try:
        while True:
            following = asyncio.ensure_future(anext(chunks))
            await asyncio.wait({following, gone}, return_when=asyncio.FIRST_COMPLETED)
            if not following.done():
                following.cancel()
                break
            try:
                chunk = following.result()
            except StopAsyncIteration:
                break
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    finally:
        gone.cancel()
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
    return 200


class _Deadlines:
    """Vault's ``max_request_duration``: a request still running past it is cancelled (its
    task, so the work stops at its next ``await``) and answers 503.

    One sweep, every second (a quarter of a short limit) and only while requests are in
    flight, finds the late ones by counting sweeps: a request costs a dict insert and delete,
    no timer and no clock read of its own. A request is cancelled between ``limit`` and
    ``limit`` + one sweep interval after it started."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.interval = min(1.0, limit / 4)
        self.allowed = math.ceil(limit / self.interval) if limit > 0 else 0  # whole sweeps
        self.tick = 0
        self.inflight: dict[asyncio.Task[Any], int] = {}
        self.expired: set[asyncio.Task[Any]] = set()
        self.timer: asyncio.TimerHandle | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def enter(self) -> asyncio.Task[Any] | None:
        if self.limit <= 0:
            return None
        task = asyncio.current_task()
        if task is None:
            return None
        self.inflight[task] = self.tick
        loop = task.get_loop()
        if self.timer is None or self.loop is not loop:  # (tests may run several loops)
            self.loop = loop
            self.timer = loop.call_later(self.interval, self._sweep, loop)
        return task

    def leave(self, task: asyncio.Task[Any]) -> bool:
        """Forget ``task``; True if the deadline cancelled it."""
        self.inflight.pop(task, None)
        if task in self.expired:
            self.expired.discard(task)
            return True
        return False

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        self.tick += 1
        # started before sweep ``s``: cancelled at sweep ``s + allowed + 1``, when at least
        # ``allowed`` whole intervals (the limit) have passed
        oldest = self.tick - self.allowed - 1
        for task, started in list(self.inflight.items()):
            if started <= oldest:
                del self.inflight[task]
                self.expired.add(task)
                task.cancel()
        self.timer = loop.call_later(self.interval, self._sweep, loop) if self.inflight else None


@dataclass(frozen=True, slots=True)
class AppHooks:
    """What the composition root plugs into the HTTP edge (all optional)."""

    cors: Callable[[], CorsConfig] | None = None
    # (method, path, status, seconds) after each request: request metrics
    observe: Callable[[str, str, int, float], None] | None = None
    # renders sys/metrics in a format; served without a token by a listener that sets
    # telemetry { unauthenticated_metrics_access = true } (unauthenticated_metrics)
    render_metrics: Callable[[str], Awaitable[Response]] | None = None
    unauthenticated_metrics: bool = False
    # the requests being served (sys/in-flight-req); tracked only with ``observe`` set
    in_flight: InFlightTable | None = None
    # names of the request headers to forward to core for audit entries
    audited_headers: Callable[[], frozenset[bytes]] | None = None
    # serve the web UI at /ui (and redirect / there): config ``ui = true``, dev mode
    ui: bool = False
    # sys/config/ui/headers, already filtered (core/system/header_config.py)
    ui_headers: Callable[[], tuple[tuple[bytes, bytes], ...]] | None = None


class InFlightTable(Protocol):
    # id(scope) → (time.perf_counter() at the start, scope), written by the app
    live: dict[int, tuple[float, Any]]


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


async def _redirect(
    send: Send, active_addr: str, scope: Scope, extra: tuple[tuple[bytes, bytes], ...]
) -> None:
    """Vault's standby answer without forwarding: 307 to the same path on the active."""
    location = active_addr.rstrip("/") + scope["path"]
    query = scope.get("query_string", b"")
    if query:
        location += "?" + query.decode("latin-1")
    headers = [(b"location", location.encode("latin-1")), (b"content-length", b"0"), *extra]
    await send({"type": "http.response.start", "status": 307, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


async def _static(
    send: Send, method: str, path: str, scope: Scope, custom: tuple[tuple[bytes, bytes], ...]
) -> int:
    """The web UI's files (http/static.py): a fixed manifest, never the file system."""
    etag = ""
    for name, value in scope["headers"]:
        if name == b"if-none-match":
            etag = value.decode("latin-1")
    answer = static.serve(method, path, etag, custom)
    await send({"type": "http.response.start", "status": answer.status, "headers": answer.headers})
    await send({"type": "http.response.body", "body": answer.body})
    return answer.status


async def _send(
    send: Send,
    status: int,
    body: bytes | None,
    head_only: bool,
    content_type: bytes = b"",
    *,
    extra: tuple[tuple[bytes, bytes], ...] = (),
) -> int:
    if body is None:
        no_body = [*_NO_BODY, *extra] if extra else _NO_BODY
        await send({"type": "http.response.start", "status": status, "headers": no_body})
        await send({"type": "http.response.body", "body": b""})
        return status
    base = [(b"content-type", content_type), _JSON[1]] if content_type else _JSON
    headers = [*base, (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head_only else body})
    return status
