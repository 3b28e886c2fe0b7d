"""The API proxy (``listener`` + ``api_proxy``) and its cache (``cache {}``).

Every request to a listener is forwarded to the server. With ``use_auto_auth_token = true``
a request without a token gets the agent's; with ``"force"`` every request does.

With ``api_proxy { enforce_consistency = "always" }`` the newest ``X-Vault-Index`` seen on
a response goes with every request (agent/consistency.py); ``when_inconsistent`` says what a
412 does: ``"retry"`` (within ``vault.retry``), ``"fail"`` (passed on) or ``"forward"``
(``X-Vault-Inconsistent: forward-active-node`` on every request). A standby's 307 to the
active is followed once, as Vault's client does.

With ``cache {}``, a response that carries a lease (``lease_id``) or a new token (``auth``)
is kept, keyed by the method, path, query, body and token of the request, and identical
requests are answered from it until the lease or token expires — Vault Agent's caching, so
many clients share one dynamic credential. Identical requests in flight at once are coalesced:
the first goes to the server, the others wait for its answer (and use it if it was cached).
Revocations made through the proxy evict what they end: ``sys/leases/revoke`` (and
``revoke-prefix``/``revoke-force``) the entries with those leases; ``auth/token/revoke*``
the token's own entry and everything cached with that token.
``POST /agent/v1/cache-clear`` (Vault's API: ``type`` all | request_path | lease | token |
token_accessor, ``value``) evicts by hand. Nothing else is cached: a KV read, a write, an
error always goes to the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Generator, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .config import AgentConfig, ApiProxyConfig, ListenerConfig, VaultConfig
from .consistency import IndexState, newest

if TYPE_CHECKING:
    from .run import Agent

__all__ = ["LeaseCache", "ProxyApp", "start_proxies"]

log = logging.getLogger("strongroom.agent.proxy")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_HOP_HEADERS = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "te", "upgrade"}
)


@dataclass
class _Entry:
    status: int
    headers: list[tuple[str, str]] = field(repr=False)
    body: bytes = field(repr=False)  # a credential or a token
    expires: float = 0.0
    request_path: str = ""
    request_token: str = field(default="", repr=False)
    lease_id: str = ""
    token: str = field(default="", repr=False)  # a token this response created
    accessor: str = ""


class LeaseCache:
    """Responses with leases or new tokens, by request key."""

    def __init__(self) -> None:
        self.entries: dict[str, _Entry] = {}
        self.inflight: dict[str, asyncio.Future[None]] = {}
        self.hits = 0
        self.misses = 0

    def __repr__(self) -> str:
        return f"LeaseCache({len(self.entries)} entries)"

    @staticmethod
    def key(method: str, path: str, query: str, body: bytes, token: str) -> str:
        digest = hashlib.sha256()
        for part in (method.encode(), path.encode(), query.encode(), body, token.encode()):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
        return digest.hexdigest()

    def get(self, key: str) -> _Entry | None:
        entry = self.entries.get(key)
        if entry is not None and entry.expires <= time.monotonic():
            del self.entries[key]
            entry = None
        if entry is None:
            self.misses += 1
        else:
            self.hits += 1
        return entry

    def store(self, key: str, entry: _Entry) -> None:
        self.entries[key] = entry

    def evict(self, test: Callable[[_Entry], bool]) -> int:
        doomed = [key for key, entry in self.entries.items() if test(entry)]
        for key in doomed:
            del self.entries[key]
        return len(doomed)

    def evict_token(self, token: str) -> int:
        return self.evict(lambda e: e.token == token or e.request_token == token)


class ProxyApp:
    """The ASGI app of one listener."""

    def __init__(
        self,
        upstream: httpx.AsyncClient,
        api_proxy: ApiProxyConfig,
        token: Callable[[], str],
        cache: LeaseCache | None,
        require_request_header: bool = False,
        invalidate: Callable[[], None] | None = None,
        num_retries: int = 0,
        retry_wait: float = 1.0,
        server_name: str = "",
        index: IndexState | None = None,
    ) -> None:
        self.extensions: dict[str, Any] = {"sni_hostname": server_name} if server_name else {}
        self.invalidate = invalidate
        self.num_retries = num_retries
        self.retry_wait = retry_wait
        self.upstream = upstream
        self.api_proxy = api_proxy
        self.token = token
        self.cache = cache
        self.require_request_header = require_request_header
        # api_proxy.enforce_consistency = "always": the newest X-Vault-Index seen
        self.index = index if index is not None else IndexState()
        self.enforce = api_proxy.enforce_consistency == "always"

    def __repr__(self) -> str:
        return f"ProxyApp(cache={self.cache is not None})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        method = str(scope["method"]).upper()
        path = str(scope["path"])
        query = scope.get("query_string", b"").decode("latin-1")
        log.debug("received request: %s %s", method, path)
        if self.require_request_header and headers.get("x-vault-request") != "true":
            await _reply(send, 412, {"errors": ["missing 'X-Vault-Request' header"]})
            return
        if path == "/agent/v1/cache-clear":
            await self._cache_clear(method, body, send)
            return
        token = headers.get("x-vault-token", "")
        if not token and headers.get("authorization", "").lower().startswith("bearer "):
            token = headers["authorization"][7:].strip()
        mode = self.api_proxy.use_auto_auth_token
        ours = False
        if mode == "force" or (mode == "true" and not token):
            ours = bool(self.token())
            token = self.token() or token
        forward = {k: v for k, v in headers.items() if k not in _HOP_HEADERS}
        forward.pop("authorization", None)
        if token:
            forward["x-vault-token"] = token
        if self.enforce and self.index.value:
            # the writes seen through the agent (or the client's own index, if newer)
            own = forward.get("x-vault-index")
            forward["x-vault-index"] = newest(self.index.value, own) if own else self.index.value
        if self.api_proxy.when_inconsistent == "forward":
            forward.setdefault("x-vault-inconsistent", "forward-active-node")
        key = ""
        leader: asyncio.Future[None] | None = None
        if self.cache is not None and method in ("GET", "POST", "PUT", "LIST"):
            key = LeaseCache.key(method, path, query, body, token)
            entry = self.cache.get(key)
            pending = self.cache.inflight.get(key)
            if entry is None and pending is not None:
                # the same request is on its way to the server: wait for its answer rather
                # than ask for a second lease
                await asyncio.shield(pending)
                entry = self.cache.get(key)
            if entry is not None:
                await _send(send, entry.status, entry.headers, entry.body)
                return
            if key not in self.cache.inflight:
                leader = asyncio.get_running_loop().create_future()
                self.cache.inflight[key] = leader
        try:
            await self._forward(send, method, path, query, body, token, key, forward, ours)
        finally:
            if leader is not None and self.cache is not None:
                self.cache.inflight.pop(key, None)
                leader.set_result(None)

    async def _forward(
        self,
        send: Send,
        method: str,
        path: str,
        query: str,
        body: bytes,
        token: str,
        key: str,
        forward: dict[str, str],
        ours: bool,
    ) -> None:
        if method == "LIST":
            method, query = "GET", (query + "&" if query else "") + "list=true"
        # vault { retry { num_retries } }: an unreachable server, a 5xx other than 501 and a
        # 412 (unless when_inconsistent = "fail") are retried, 1 to 1.5 s apart, as Vault
        # Agent's proxy does; a standby's redirect to the active is followed once, as
        # Vault's client does (never from https to http)
        retry_412 = self.api_proxy.when_inconsistent != "fail"
        url, params = path, query or None
        attempt = 0
        redirected = False
        while True:
            try:
                response = await self.upstream.request(
                    method,
                    url,
                    params=params,
                    content=body or None,
                    headers=forward,
                    extensions=self.extensions,
                )
            except httpx.TransportError as exc:
                if attempt < self.num_retries:
                    attempt += 1
                    log.warning(
                        "proxying %s failed: %s; retry %d", path, type(exc).__name__, attempt
                    )
                    await asyncio.sleep(self.retry_wait * random.uniform(1.0, 1.5))  # noqa: S311
                    continue
                log.warning("proxying %s failed: %s", path, type(exc).__name__)
                await _reply(send, 502, {"errors": ["the agent could not reach the server"]})
                return
            status = response.status_code
            if self.enforce:
                self.index.observe(response.headers.get("x-vault-index", ""))
            if status in (301, 302, 307) and not redirected:
                location = _redirect_target(response)
                if location is not None:
                    redirected = True
                    url, params = location, None
                    continue
            if ((status == 412 and retry_412) or (status >= 500 and status != 501)) and (
                attempt < self.num_retries
            ):
                attempt += 1
                log.warning("proxying %s: HTTP %d; retry %d", path, status, attempt)
                await asyncio.sleep(self.retry_wait * random.uniform(1.0, 1.5))  # noqa: S311
                continue
            break
        out_headers = [(k, v) for k, v in response.headers.items() if k.lower() not in _HOP_HEADERS]
        content = response.content
        if ours and response.status_code == 403 and self.invalidate is not None:
            self.invalidate()  # the agent's own token may have been revoked: check it
        if self.cache is not None and response.status_code < 400:
            self._after(path, body, token, key, response.status_code, out_headers, content)
        await _send(send, response.status_code, out_headers, content)

    def _after(
        self,
        path: str,
        body: bytes,
        token: str,
        key: str,
        status: int,
        headers: list[tuple[str, str]],
        content: bytes,
    ) -> None:
        assert self.cache is not None
        api = path.removeprefix("/v1/").strip("/")
        request = _json(body)
        # revocations through the proxy evict what they end
        if api in ("sys/leases/revoke", "sys/revoke") or api.startswith(
            ("sys/leases/revoke/", "sys/revoke/")
        ):
            lease = str(request.get("lease_id") or api.split("/revoke/", 1)[-1])
            self.cache.evict(lambda e: e.lease_id == lease)
            return
        if api.startswith(("sys/leases/revoke-prefix/", "sys/leases/revoke-force/")):
            prefix = api.split("/", 3)[3]
            self.cache.evict(lambda e: e.lease_id.startswith(prefix))
            return
        if api == "auth/token/revoke-self":
            self.cache.evict_token(token)
            return
        if api in ("auth/token/revoke", "auth/token/revoke-orphan"):
            self.cache.evict_token(str(request.get("token", "")))
            return
        if api == "auth/token/revoke-accessor":
            accessor = str(request.get("accessor", ""))
            doomed = {e.token for e in self.cache.entries.values() if e.accessor == accessor}
            for victim in doomed:
                self.cache.evict_token(victim)
            return
        if not key:
            return
        answer = _json(content)
        lease_id = str(answer.get("lease_id") or "")
        auth = answer.get("auth") if isinstance(answer.get("auth"), dict) else None
        if lease_id:
            ttl = int(answer.get("lease_duration") or 0)
            self.cache.store(
                key,
                _Entry(
                    status, headers, content, time.monotonic() + ttl, api, token, lease_id=lease_id
                ),
            )
        elif auth and auth.get("client_token"):
            ttl = int(auth.get("lease_duration") or 0) or 86400 * 32
            self.cache.store(
                key,
                _Entry(
                    status,
                    headers,
                    content,
                    time.monotonic() + ttl,
                    api,
                    token,
                    token=str(auth["client_token"]),
                    accessor=str(auth.get("accessor", "")),
                ),
            )

    async def _cache_clear(self, method: str, body: bytes, send: Send) -> None:
        if method not in ("POST", "PUT"):
            await _reply(send, 405, {"errors": ["method not allowed"]})
            return
        if self.cache is None:
            await _reply(send, 400, {"errors": ["caching is not enabled"]})
            return
        request = _json(body)
        kind = str(request.get("type", ""))
        value = str(request.get("value", ""))
        tests: dict[str, Callable[[_Entry], bool]] = {
            "all": lambda e: True,
            "request_path": lambda e: e.request_path.startswith(value.strip("/")),
            "lease": lambda e: e.lease_id == value,
            "token": lambda e: e.token == value or e.request_token == value,
            "token_accessor": lambda e: e.accessor == value,
        }
        if kind not in tests:
            await _reply(send, 400, {"errors": [f'invalid type "{kind}"']})
            return
        if kind != "all" and not value:
            await _reply(send, 400, {"errors": ["value is required"]})
            return
        self.cache.evict(tests[kind])
        await _send(send, 200, [], b"")


def _json(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data) if data else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


async def _send(send: Send, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _reply(send: Send, status: int, payload: dict[str, Any]) -> None:
    await _send(send, status, [("content-type", "application/json")], json.dumps(payload).encode())


class _ListProtocol(HttpToolsProtocol):
    """httptools (llhttp) refuses the ``LIST`` verb that hvac and the Vault CLI send: at the
    start of each request, ``LIST /p HTTP/1.1`` becomes ``GET /p?list=true HTTP/1.1``, which
    the proxy forwards as a list. A LIST pipelined behind another request in one read is not
    rewritten and fails closed (400), never as another operation."""

    _at_start = True
    _pending = b""

    def data_received(self, data: bytes) -> None:
        if self._at_start:
            data = self._pending + data
            line_end = data.find(b"\r\n")
            if line_end < 0 and len(data) < 8192:
                self._pending = data  # wait for the whole request line
                return
            self._pending = b""
            self._at_start = False
            if data.startswith(b"LIST ") and line_end > 0:
                parts = data[:line_end].split(b" ")
                if len(parts) == 3:
                    target = parts[1] + (b"&list=true" if b"?" in parts[1] else b"?list=true")
                    data = b"GET " + target + b" " + parts[2] + data[line_end:]
        super().data_received(data)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._at_start = True


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the agent handles signals itself


@dataclass
class RunningProxy:
    server: uvicorn.Server
    task: asyncio.Task[None]
    upstream: httpx.AsyncClient
    listener: ListenerConfig | None = None

    def reload_certificate(self) -> None:
        """SIGHUP: read the listener's certificate and key files again; new connections get
        them. A pair that does not load (unreadable, not matching) is refused whole and the
        listener keeps the one it has.

        Raises:
            OSError, ssl.SSLError: the new pair could not be loaded.
        """
        listener = self.listener
        live = self.server.config.ssl
        if listener is None or listener.tls_disable or live is None:
            return
        # try the pair on a scratch context first: a failed load_cert_chain on the live one
        # could leave it holding a new certificate with the old key
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
            listener.tls_cert_file, listener.tls_key_file
        )
        live.load_cert_chain(listener.tls_cert_file, listener.tls_key_file)

    async def close(self) -> None:
        self.server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(self.task, timeout=5)
        await self.upstream.aclose()


def _upstream(vault: VaultConfig) -> httpx.AsyncClient:
    verify: ssl.SSLContext | bool = False
    if vault.address.startswith("https"):
        verify = ssl.create_default_context(
            cafile=vault.ca_cert or None, capath=vault.ca_path or None
        )
        if vault.tls_skip_verify:
            verify.check_hostname = False
            verify.verify_mode = ssl.CERT_NONE
        if vault.client_cert:
            verify.load_cert_chain(vault.client_cert, vault.client_key or None)
    return httpx.AsyncClient(
        base_url=vault.address.rstrip("/"),
        verify=verify,
        timeout=httpx.Timeout(60.0, connect=5.0),
        trust_env=False,
        limits=httpx.Limits(max_connections=100),
    )


async def start_proxies(
    config: AgentConfig, vault: VaultConfig, agent: Agent
) -> list[RunningProxy]:
    """Start one proxy server per listener; return once each is accepting connections."""
    cache = LeaseCache() if config.cache else None
    agent.cache = cache
    api_proxy = config.api_proxy or ApiProxyConfig()
    index = IndexState()  # one for all listeners: a write through any is seen by all
    running: list[RunningProxy] = []
    for listener in config.listeners:
        upstream = _upstream(vault)
        app = ProxyApp(
            upstream,
            api_proxy,
            agent._token,
            cache,
            listener.require_request_header,
            agent._invalidate,
            vault.num_retries,
            server_name=vault.tls_server_name if vault.address.startswith("https") else "",
            index=index,
        )
        server = _Server(_uvicorn_config(app, listener))
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                await upstream.aclose()
                task.result()
                raise OSError(f"listener {listener.address} did not start")
            await asyncio.sleep(0.01)
        log.info("API proxy listening on %s", listener.address)
        running.append(RunningProxy(server, task, upstream, listener))
    return running


def _redirect_target(response: httpx.Response) -> str | None:
    """Where a redirect points, if it may be followed (an absolute http(s) URL that does
    not downgrade https to http)."""
    location = response.headers.get("location", "")
    if not location:
        return None
    target = response.request.url.join(location)
    if target.scheme not in ("http", "https"):
        return None
    if response.request.url.scheme == "https" and target.scheme != "https":
        return None
    return str(target)


def _uvicorn_config(app: ProxyApp, listener: ListenerConfig) -> uvicorn.Config:
    kwargs: dict[str, Any] = {
        "http": _ListProtocol,
        "lifespan": "off",
        "log_config": None,
        "access_log": False,
        "proxy_headers": False,
        "server_header": False,
    }
    if listener.type == "unix":
        kwargs["uds"] = listener.address
    else:
        host, _, port = listener.address.rpartition(":")
        kwargs["host"] = host.strip("[]") or "127.0.0.1"
        kwargs["port"] = int(port)
    if not listener.tls_disable:
        kwargs["ssl_certfile"] = listener.tls_cert_file
        kwargs["ssl_keyfile"] = listener.tls_key_file
    return uvicorn.Config(app, **kwargs)
