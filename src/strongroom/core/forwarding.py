"""Request forwarding from a standby to the active node, over the active's cluster address.

A standby that receives a request it must not serve (a write, a login, a use-counted token…)
rebuilds it as an HTTP request and sends it to the active's *cluster* listener; the client
gets the active's answer (status, headers, body) as if it had asked the active itself.

Transports: ``unix:///path`` cluster addresses (the worker processes of one node: a socket in
a 0700 directory, reachable by the same user only), and ``https://host:port`` between
separate nodes: mutual TLS pinned to the cluster's own CA (core/cluster_tls.py), the
standby presenting its cluster client certificate. Without clustering (``disable_clustering``)
or before the cluster CA is loaded, an ``https://`` address is not forwarded to: the standby
answers Vault's 307 redirect to the active's ``api_addr`` instead.

The active handles a forwarded request with ``forwarded`` set (a context variable): should it
have stopped being active meanwhile, it answers 503 rather than forwarding again, so a
request never loops. A forwarded request reaches the active from a local socket; the
standby sends the client's address along (``X-Strongroom-Forwarded-For``) and the client's
verified TLS certificate, if any (``X-Strongroom-Forwarded-Client-Cert``, base64 DER), which
the active believes on its cluster listeners only (the workers' private socket, or the TLS
listener that admits cluster members alone), so CIDR-bound tokens, quotas, audit and
certificate logins see the original client through any node. Both headers are always
replaced (or removed) by the standby: a client cannot smuggle its own.
"""

from __future__ import annotations

import base64
import contextvars
import ssl
from collections.abc import Callable
from typing import Any

import httpx
import orjson

from strongroom.errors import Standby
from strongroom.logical import Operation, Request, Response

__all__ = [
    "ECHO_PATH",
    "FORWARDED",
    "FORWARDED_CERT",
    "FORWARDED_FOR",
    "Forwarder",
    "forwardable",
]

FORWARDED: contextvars.ContextVar[bool] = contextvars.ContextVar("forwarded", default=False)
"""True while handling a request another node forwarded to us (set by the cluster listener)."""

_METHODS = {
    Operation.READ: "GET",
    Operation.LIST: "GET",
    Operation.CREATE: "POST",
    Operation.UPDATE: "POST",
    Operation.DELETE: "DELETE",
    Operation.PATCH: "PATCH",
    Operation.HELP: "GET",
}
_TIMEOUT = httpx.Timeout(90.0, connect=5.0)
# every connection stays pooled (a TLS handshake costs far more than the request), idle
# ones for less time than the cluster listener keeps them (75 s), so we close them first;
# bounded, since the pool's bookkeeping looks at every pooled connection per request
_LIMITS = httpx.Limits(max_connections=64, max_keepalive_connections=64, keepalive_expiry=30)
FORWARDED_FOR = "x-strongroom-forwarded-for"
FORWARDED_CERT = "x-strongroom-forwarded-client-cert"
ECHO_PATH = "/cluster/echo"  # served by cluster listeners only (server/cluster_listener.py)
# the active's answer headers the client must see (ACME's nonce and links, rate limits…)
_KEPT_HEADERS = (
    "content-type",
    "x-vault-index",
    "retry-after",
    "location",
    "cache-control",
    "replay-nonce",
    "link",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
)


def forwardable(cluster_addr: str) -> bool:
    """Whether ``cluster_addr`` names a transport we forward over (unix or https)."""
    return cluster_addr.startswith(("unix://", "https://"))


class Forwarder:
    """Sends requests to the active's cluster listener; one connection pool per address.

    ``tls`` gives the current client context of the cluster CA (``None`` while it is not
    loaded); ``https://`` addresses are reachable only with one, and never when
    ``clustering`` is off.
    """

    def __init__(
        self, tls: Callable[[], ssl.SSLContext | None] = lambda: None, *, clustering: bool = True
    ) -> None:
        self._tls = tls
        self._clustering = clustering
        self._clients: dict[tuple[str, int], httpx.AsyncClient] = {}
        self._retired: list[httpx.AsyncClient] = []  # an earlier active's pool, closed at close

    def reachable(self, cluster_addr: str) -> bool:
        if cluster_addr.startswith("unix://"):
            return True
        if cluster_addr.startswith("https://"):
            return self._clustering and self._tls() is not None
        return False

    async def forward(self, cluster_addr: str, request: Request) -> Response:
        client = self._client(cluster_addr)
        headers = dict(request.headers)
        # what the active believes about the client: always ours, never the client's own
        headers[FORWARDED_FOR] = request.connection.remote_addr
        headers.pop(FORWARDED_CERT, None)
        if request.connection.peer_cert_der:
            headers[FORWARDED_CERT] = base64.b64encode(request.connection.peer_cert_der).decode()
        if request.client_token:
            headers["x-vault-token"] = request.client_token
        query = dict(request.query)
        if request.operation is Operation.HELP:
            query["help"] = "1"
        elif request.operation is Operation.LIST:
            query["list"] = "true"  # as GET: no HTTP parser need know the LIST method
        body = b""
        if request.data:
            body = orjson.dumps(request.data)
            headers["content-type"] = (
                "application/merge-patch+json"
                if request.operation is Operation.PATCH
                else "application/json"
            )
        try:
            answer = await client.request(
                _METHODS.get(request.operation, "GET"),
                "/v1/" + request.path,
                params=query,
                content=body,
                headers=headers,
            )
        except httpx.HTTPError as exc:
            # the outcome of a write that was sent is unknown: never reported as success
            raise Standby("could not reach the active node: " + type(exc).__name__) from None
        kept: dict[str, str] = {
            name: answer.headers[name] for name in _KEPT_HEADERS if name in answer.headers
        }
        content_type = kept.pop("content-type", "application/json")
        return Response(
            status=answer.status_code,
            raw_body=answer.content,
            content_type=content_type,
            headers=kept,
        )

    async def echo(self, cluster_addr: str, payload: dict[str, Any]) -> int:
        """Send this node's heartbeat to the active's cluster listener; its HTTP status."""
        client = self._client(cluster_addr)
        answer = await client.post(ECHO_PATH, content=orjson.dumps(payload), timeout=5.0)
        return answer.status_code

    def _client(self, cluster_addr: str) -> httpx.AsyncClient:
        if not self.reachable(cluster_addr):
            raise Standby("the active node cannot be reached at its cluster address")
        context = None if cluster_addr.startswith("unix://") else self._tls()
        key = (cluster_addr, id(context))
        client = self._clients.get(key)
        if client is None:
            if context is None:
                path = cluster_addr[len("unix://") :]
                transport = httpx.AsyncHTTPTransport(uds=path, retries=0, limits=_LIMITS)
                base = "http://active"
            else:
                # mutual TLS pinned to the cluster CA: our leaf as client certificate
                transport = httpx.AsyncHTTPTransport(verify=context, retries=0, limits=_LIMITS)
                base = cluster_addr.rstrip("/")
            client = httpx.AsyncClient(transport=transport, base_url=base, timeout=_TIMEOUT)
            self._retired.extend(self._clients.values())
            self._clients = {key: client}
        return client

    async def close(self) -> None:
        for client in [*self._clients.values(), *self._retired]:
            await client.aclose()
        self._clients.clear()
        self._retired.clear()
