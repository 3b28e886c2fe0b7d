"""A TCP proxy a test controls, to cut connections between a client and a real server.

It runs on its own thread and event loop, so the code under test (on the test's loop) sees
a real network peer. ``cut()`` drops every open connection (as a failed link or a restarted
middlebox would); ``drop_after(marker, forward=...)`` drops the connection carrying the next
client chunk that contains ``marker`` (e.g. ``b"COMMIT"``), either after forwarding it (the
server acts on it, the client never hears back) or before (the server never sees it).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

__all__ = ["TcpProxy"]


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._marker: bytes | None = None
        # connections whose server-to-client direction is no longer forwarded
        self._frozen: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._forward_marker = True
        self.dropped = threading.Event()
        self.refuse = False

    def start(self) -> TcpProxy:
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._accept, "127.0.0.1", 0))
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def cut(self) -> None:
        """Drop every open connection now."""
        self._call(self._cut())

    def drop_after(self, marker: bytes, *, forward: bool) -> None:
        self.dropped.clear()
        self._forward_marker = forward
        self._marker = marker

    def _call(self, coro: object) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)  # type: ignore[arg-type]

    async def _cut(self) -> None:
        for client, upstream in list(self._pairs):
            _abort(client)
            _abort(upstream)
        self._pairs.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refuse:
            _abort(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _abort(writer)
            return
        pair = (writer, up_writer)
        self._pairs.add(pair)
        await asyncio.gather(
            self._pipe(reader, up_writer, pair, from_client=True),
            self._pipe(up_reader, writer, pair, from_client=False),
        )
        self._pairs.discard(pair)
        self._frozen.discard(pair)

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        pair: tuple[asyncio.StreamWriter, asyncio.StreamWriter],
        *,
        from_client: bool,
    ) -> None:
        try:
            while data := await reader.read(65536):
                marker = self._marker
                if from_client and marker is not None and marker in data:
                    self._marker = None
                    self._frozen.add(pair)  # the client never hears the answer
                    if self._forward_marker:
                        writer.write(data)
                        await writer.drain()
                        await asyncio.sleep(0.2)  # let the server act on it
                    for side in pair:
                        _abort(side)
                    self.dropped.set()
                    return
                if not from_client and pair in self._frozen:
                    continue
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for side in pair:
                _abort(side)


def _abort(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.transport.abort()
