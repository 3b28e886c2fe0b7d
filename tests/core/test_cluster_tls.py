"""The cluster CA (core/cluster_tls.py): made once behind the barrier, leaves per node,
TLS contexts that admit members of the same cluster only. Real TLS over local sockets."""

from __future__ import annotations

import asyncio
import ssl

import orjson
import pytest

from strongroom.core.cluster_tls import TLS_KEY, ClusterTLS, generate_ca, load_cluster_tls
from strongroom.storage import MemoryStorage


async def _exchange(server: ssl.SSLContext, client: ssl.SSLContext) -> bytes:
    """One line over TLS on 127.0.0.1: what the client read back (b"" if refused)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            writer.write(b"ok:" + line)
            await writer.drain()
        except (ssl.SSLError, ConnectionError):
            pass
        finally:
            writer.close()

    listener = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server)
    port = listener.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client)
        writer.write(b"hello\n")
        await writer.drain()
        try:
            return await reader.readline()
        except (ssl.SSLError, ConnectionError):
            return b""
        finally:
            writer.close()
    finally:
        listener.close()


def test_the_first_active_makes_the_ca_and_every_node_loads_the_same_one() -> None:
    asyncio.run(_first_active_makes_the_ca())


async def _first_active_makes_the_ca() -> None:
    storage = MemoryStorage()
    assert await load_cluster_tls(storage, "standby-1", create=False) is None
    assert await storage.get(TLS_KEY) is None  # a standby never writes
    first = await load_cluster_tls(storage, "active-1", create=True)
    stored = await storage.get(TLS_KEY)
    assert first is not None and stored is not None
    again = await load_cluster_tls(storage, "standby-1", create=True)
    assert again is not None and await storage.get(TLS_KEY) == stored  # made once
    assert first.ca_pem == again.ca_pem and first.cert_pem != again.cert_pem  # own leaves
    assert set(orjson.loads(stored)) == {"ca_cert", "ca_key"}
    assert "PRIVATE" not in repr(first) and repr(first) == "ClusterTLS()"


def test_members_talk_and_strangers_are_refused() -> None:
    asyncio.run(_members_and_strangers())


async def _members_and_strangers() -> None:
    ca = generate_ca()
    active, standby = ClusterTLS(ca, "active"), ClusterTLS(ca, "standby")
    assert await _exchange(active.server_context, standby.client_context) == b"ok:hello\n"
    stranger = ClusterTLS(generate_ca(), "stranger")
    # a server of another CA: refused by the client (pinned to its own cluster CA)
    with pytest.raises(ssl.SSLCertVerificationError):
        await _exchange(stranger.server_context, standby.client_context)
    with pytest.raises(ssl.SSLCertVerificationError):
        await _exchange(active.server_context, stranger.client_context)
    # a client certificate of another CA, from a client that checks nothing: refused by
    # the server
    stranger.client_context.verify_mode = ssl.CERT_NONE
    assert await _exchange(active.server_context, stranger.client_context) == b""
    # no client certificate at all
    bare = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    bare.check_hostname = False
    bare.verify_mode = ssl.CERT_NONE
    assert await _exchange(active.server_context, bare) == b""
