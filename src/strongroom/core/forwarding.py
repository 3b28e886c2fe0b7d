"""Request forwarding from a standby to the active node, over the active's cluster address.

A standby that receives a request it must not serve (a write, a login, a use-counted token…)
rebuilds it as an HTTP request and sends it to the active's *cluster* listener; the client
gets the active's answer (status, headers, body) as if it had asked the active itself.

Transports: ``unix:///path`` cluster addresses (the worker processes of one node: a socket in
a 0700 directory, reachable by the same user only) are forwarded to. Other cluster addresses
(``https://`` between nodes, which needs mutual TLS with a cluster certificate) are not
built yet: the standby answers Vault's 307 redirect to the active's ``api_addr`` instead.

The active handles a forwarded request with ``forwarded`` set (a context variable): should it
have stopped being active meanwhile, it answers 503 rather than forwarding again, so a
request never loops. A forwarded request reaches the active from a local socket; the
standby sends the client's address along (``X-Strongroom-Forwarded-For``), which the active
believes on its private cluster socket only, so tokens bound to CIDRs work through any
worker.
"""

from __future__ import annotations

import contextvars

import httpx
import orjson

from strongroom.errors import Standby
from strongroom.logical import Operation, Request, Response

__all__ = ["FORWARDED", "Forwarder", "forwardable"]

FORWARDED: contextvars.ContextVar[bool] = contextvars.ContextVar("forwarded", default=False)
"""True while handling a request another node forwarded to us (set by the cluster listener)."""

_METHODS = {
    Operation.READ: "GET",
    Operation.LIST: "LIST",
    Operation.CREATE: "POST",
    Operation.UPDATE: "POST",
    Operation.DELETE: "DELETE",
    Operation.PATCH: "PATCH",
    Operation.HELP: "GET",
}
_TIMEOUT = httpx.Timeout(90.0, connect=5.0)
_KEPT_HEADERS = ("content-type", "x-vault-index", "retry-after", "location", "cache-control")


def forwardable(cluster_addr: str) -> bool:
    return cluster_addr.startswith("unix://")


class Forwarder:
    """Sends requests to the active's cluster listener; one connection pool per address."""

    def __init__(self) -> None:
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._retired: list[httpx.AsyncClient] = []  # an earlier active's pool, closed at close

    async def forward(self, cluster_addr: str, request: Request) -> Response:
        client = self._client(cluster_addr)
        headers = dict(request.headers)
        headers["x-strongroom-forwarded-for"] = request.connection.remote_addr
        if request.client_token:
            headers["x-vault-token"] = request.client_token
        query = dict(request.query)
        if request.operation is Operation.HELP:
            query["help"] = "1"
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

    def _client(self, cluster_addr: str) -> httpx.AsyncClient:
        client = self._clients.get(cluster_addr)
        if client is None:
            if not forwardable(cluster_addr):
                raise Standby("forwarding to " + cluster_addr + " is not supported")
            path = cluster_addr[len("unix://") :]
            transport = httpx.AsyncHTTPTransport(uds=path, retries=0)
            client = httpx.AsyncClient(
                transport=transport, base_url="http://active", timeout=_TIMEOUT
            )
            self._retired.extend(self._clients.values())
            self._clients = {cluster_addr: client}
        return client

    async def close(self) -> None:
        for client in [*self._clients.values(), *self._retired]:
            await client.aclose()
        self._clients.clear()
        self._retired.clear()
