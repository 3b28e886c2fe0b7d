"""The HA cluster listeners: where standbys forward requests to the active, and echo to it.

Two kinds, one handler:

- **between nodes**, a TCP listener on the node's cluster address with mutual TLS pinned to
  the cluster CA (core/cluster_tls.py): the handshake is refused unless the client presents
  a certificate that chains to that CA, so nothing is served to anyone else; a sealed node
  (which cannot read the CA) refuses every handshake. The certificate is chosen per
  handshake (a TLS server-name callback), so the socket is bound once at start and serves
  from the first unseal on.
- **between the workers of one node**, a Unix socket in the supervisor's 0700 directory
  (server/workers.py).

Requests arriving there were forwarded by a cluster member: they are handled with
``FORWARDED`` set (never forwarded again), and the member's word on the original client's
address and TLS certificate is believed (``X-Strongroom-Forwarded-For``,
``X-Strongroom-Forwarded-Client-Cert``), so audit, quotas, CIDR-bound tokens and certificate
logins see that client. ``POST /cluster/echo`` (outside ``/v1``: no forwarded client request
can reach it) records a standby's heartbeat for ``sys/ha-status``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import os
import socket
import ssl
import urllib.parse
from dataclasses import replace
from typing import Any

import orjson
import uvicorn

from strongroom.core.cluster import Cluster
from strongroom.core.forwarding import ECHO_PATH, FORWARDED, FORWARDED_CERT, FORWARDED_FOR
from strongroom.errors import StrongroomError
from strongroom.http import StrongroomApp
from strongroom.logical import Connection, Request, Response
from strongroom.server.config import ServerConfig
from strongroom.server.listener import protocol_class
from strongroom.server.wiring import Assembly, ha_enabled

__all__ = [
    "ClusterApp",
    "bind_cluster_listener",
    "cluster_address_of",
    "tls_cluster_config",
    "unix_cluster_config",
]

log = logging.getLogger("strongroom.server")

_MAX_ECHO = 256 * 1024  # an echo carries up to 400 client-count records
_KEEP_ALIVE = 75


def cluster_address_of(config: ServerConfig) -> str:
    """The cluster address this node advertises: ``cluster_addr``, else (as Vault) the
    ``api_addr`` host with the next port, over https; "" without HA or with clustering off."""
    if config.disable_clustering or not ha_enabled(dict(config.storage.options)):
        return ""
    if config.cluster_addr:
        return config.cluster_addr
    api = urllib.parse.urlsplit(config.api_addr)
    if not api.hostname or not api.port:
        return ""
    host = f"[{api.hostname}]" if ":" in api.hostname else api.hostname
    return f"https://{host}:{api.port + 1}"


def bind_cluster_listener(config: ServerConfig, cluster_addr: str) -> socket.socket | None:
    """Bind the TCP cluster listener: the first listener's ``cluster_address`` if set, else
    the host and port of ``cluster_addr``. ``None`` (logged) when it cannot be bound: this
    node then advertises no cluster address, and standbys redirect to it (307)."""
    if not cluster_addr.startswith("https://"):
        if cluster_addr:
            log.error("cluster_addr must be an https:// address; clustering is off")
        return None
    bind = next((lst.cluster_address for lst in config.listeners if lst.cluster_address), "")
    if bind:
        host, _, port_text = bind.rpartition(":")
        host = host.strip("[]")
        port = int(port_text)
    else:
        parsed = urllib.parse.urlsplit(cluster_addr)
        host, port = parsed.hostname or "", parsed.port or 8201
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM)
        family, _, _, _, address = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(512)
        except OSError:
            sock.close()
            raise
    except OSError as exc:
        log.error(
            "cluster listener: cannot listen on %s:%d (%s); standbys will redirect clients"
            " to this node instead of forwarding (set the listener's cluster_address)",
            host,
            port,
            exc.strerror or type(exc).__name__,
        )
        return None
    log.info("cluster listener on %s:%d (mutual TLS, cluster CA)", host, port)
    return sock


def _forwarded_handler(app: StrongroomApp) -> Any:
    async def forwarded(request: Request) -> Response | None:
        FORWARDED.set(True)
        # a cluster member (a sibling on our 0700 socket, or a node holding a certificate
        # of the cluster CA): its word on the client's address and certificate holds
        client = request.headers.get(FORWARDED_FOR, "")
        cert: bytes | None = None
        encoded = request.headers.get(FORWARDED_CERT, "")
        if encoded:
            with contextlib.suppress(binascii.Error, ValueError):
                cert = base64.b64decode(encoded, validate=True)
        connection = Connection(remote_addr=client, tls=cert is not None, peer_cert_der=cert)
        return await app.handler(replace(request, connection=connection))

    return forwarded


class ClusterApp:
    """ASGI app of a cluster listener: ``/cluster/echo``, else the forwarded API."""

    def __init__(self, assembly: Assembly) -> None:
        app = assembly.app
        self.cluster: Cluster | None = assembly.core.cluster
        self.api = StrongroomApp(_forwarded_handler(app), limits=app.limits, hooks=app.hooks)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == ECHO_PATH:
            await self._echo(scope, receive, send)
            return
        await self.api(scope, receive, send)

    async def _echo(self, scope: Any, receive: Any, send: Any) -> None:
        body = b""
        more = True
        while more and len(body) <= _MAX_ECHO:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        cluster = self.cluster
        status = 204
        if scope["method"] != "POST":
            status = 405
        elif cluster is None or not cluster.active:
            status = 503  # only the active keeps the registry
        elif len(body) > _MAX_ECHO:
            status = 413
        else:
            try:
                payload = orjson.loads(body)
                if not isinstance(payload, dict):
                    raise ValueError("echo: expected an object")
                cluster.registry.heard(payload)
                if "activity" in payload and cluster.relay is not None:
                    await cluster.relay.receive(payload["activity"])  # client counts
            except ValueError:
                status = 400
            except StrongroomError:
                status = 503  # not stored (no longer active, sealed): the standby resends
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def _tls_context(assembly: Assembly) -> ssl.SSLContext:
    """The listener's context: every handshake gets the cluster CA's context if this node
    is unsealed and has loaded it (sealing drops it: core/cluster.py ``resign``), and
    fails otherwise."""
    core = assembly.core
    base = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    base.minimum_version = ssl.TLSVersion.TLSv1_3
    base.verify_mode = ssl.CERT_REQUIRED  # and no CA at all: nothing verifies here

    def choose(sock: ssl.SSLObject, _name: str | None, _context: ssl.SSLContext) -> int | None:
        cluster = core.cluster
        tls = cluster.tls if cluster is not None else None
        if tls is None:
            return ssl.ALERT_DESCRIPTION_HANDSHAKE_FAILURE
        sock.context = tls.server_context
        return None

    base.sni_callback = choose
    return base


def tls_cluster_config(assembly: Assembly) -> uvicorn.Config:
    """The uvicorn config of the TCP cluster listener (serve it on the bound socket)."""
    context = _tls_context(assembly)
    return uvicorn.Config(
        ClusterApp(assembly),
        http=protocol_class(),
        ssl_context_factory=lambda _config, _default: context,
        loop="none",
        lifespan="off",
        log_config=None,
        access_log=False,
        server_header=False,
        # longer than the forwarder's pool keeps an idle connection (30 s), so the client,
        # never the server, closes it: no request races a closing connection
        timeout_keep_alive=_KEEP_ALIVE,
        timeout_graceful_shutdown=5,
    )


def unix_cluster_config(assembly: Assembly, path: str) -> uvicorn.Config:
    """A worker's private listener (a Unix socket in the supervisor's 0700 directory)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    return uvicorn.Config(
        ClusterApp(assembly),
        uds=path,
        http=protocol_class(),
        loop="none",
        lifespan="off",
        log_config=None,
        access_log=False,
        server_header=False,
        # longer than the forwarder's pool keeps an idle connection (30 s), so the client,
        # never the server, closes it: no request races a closing connection
        timeout_keep_alive=_KEEP_ALIVE,
        timeout_graceful_shutdown=5,
    )
