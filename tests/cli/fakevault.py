"""A fake Vault API behind httpx.MockTransport: routes by method and path, requests recorded."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

ADDR = "https://vault.test:8200"
TOKEN = "hvs.root-token"

Reply = tuple[int, Any] | Callable[[httpx.Request], tuple[int, Any]]


@dataclass
class Seen:
    """One request the fake server received."""

    method: str  # "LIST" for GET ?list=true, as Vault's router sees it
    path: str  # without the /v1/ prefix
    params: dict[str, str]
    headers: httpx.Headers
    body: Any
    url: str


@dataclass
class FakeServer:
    """Routes keyed by (method, path); a path ending in ``*`` matches a prefix."""

    routes: dict[tuple[str, str], Reply] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    def on(self, method: str, path: str, status: int = 200, body: Any = None) -> None:
        self.routes[(method, path)] = (status, body)

    def on_call(self, method: str, path: str, reply: Callable[[httpx.Request], Any]) -> None:
        self.routes[(method, path)] = reply

    def kv_mount(self, mount: str, version: int) -> None:
        """Answer the CLI's KV pre-flight for every path under ``mount`` (e.g. ``secret/``)."""
        options = {"version": str(version)} if version == 2 else None
        body = {"data": {"path": mount, "type": "kv", "options": options}}
        self.on("GET", f"sys/internal/ui/mounts/{mount.rstrip('/')}*", 200, body)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/v1/")
        params = dict(request.url.params)
        method = request.method
        if method == "GET" and params.get("list") == "true":
            method = "LIST"
        body = orjson.loads(request.content) if request.content else None
        self.seen.append(Seen(method, path, params, request.headers, body, str(request.url)))
        reply = self.routes.get((method, path))
        if reply is None:
            for (m, p), candidate in self.routes.items():
                if m == method and p.endswith("*") and path.startswith(p[:-1]):
                    reply = candidate
                    break
        if reply is None:
            return httpx.Response(404, json={"errors": []})
        status, payload = reply(request) if callable(reply) else reply
        if payload is None:
            return httpx.Response(status)
        return httpx.Response(status, json=payload)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def last(self, method: str | None = None) -> Seen:
        matching = [s for s in self.seen if method is None or s.method == method]
        assert matching, f"no {method or ''} request seen"
        return matching[-1]

    def calls(self) -> list[tuple[str, str]]:
        return [(s.method, s.path) for s in self.seen]


@dataclass
class Result:
    code: int
    out: str
    err: str


Runner = Callable[..., Result]


def secret(data: dict[str, Any] | None, **envelope: Any) -> dict[str, Any]:
    """A Vault response envelope around ``data``."""
    return {
        "request_id": "req-1",
        "lease_id": "",
        "renewable": False,
        "lease_duration": 0,
        "data": data,
        "wrap_info": None,
        "warnings": None,
        "auth": None,
        **envelope,
    }
