"""A TCP proxy a test can cut: the database "goes away" for the processes behind it."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class CuttableProxy:
    """Forwards 127.0.0.1:<port> to ``upstream``. ``cut`` drops every open connection and stops
    listening (a new connection is refused, as by a restarting server); ``restore`` listens on
    the same port again.

    It runs on its own event loop in its own thread, so a test that blocks its loop (waiting
    for a process to exit) does not stall the connections of the processes behind it.
    """

    def __init__(self, host: str, port: int) -> None:
        self._upstream = (host, port)
        self._server: asyncio.Server | None = None
        self._lines: set[asyncio.Transport] = set()
        self._pipes: set[asyncio.Future[tuple[None, None]]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="proxy", daemon=True)
        self.port = 0

    async def start(self) -> int:
        self._thread.start()
        await self._run(self._listen())
        return self.port

    async def cut(self) -> None:
        await self._run(self._cut())

    async def restore(self) -> None:
        await self._run(self._listen())

    async def aclose(self) -> None:
        await self._run(self._cut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        await asyncio.to_thread(self._thread.join)
        self._loop.close()

    async def _run(self, work: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, self._loop))

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _cut(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        # An abort (RST), not a polite close: both ends learn at once that the line is dead.
        for line in list(self._lines):
            line.abort()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = _transport(writer)
        self._lines.add(client)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            client.abort()
            self._lines.discard(client)
            return
        upstream = _transport(up_writer)
        self._lines.add(upstream)
        pipe = asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
        self._pipes.add(pipe)
        try:
            await pipe
        finally:
            client.abort()
            upstream.abort()
            self._lines -= {client, upstream}
            self._pipes.discard(pipe)


def _transport(writer: asyncio.StreamWriter) -> asyncio.Transport:
    transport = writer.transport
    assert isinstance(transport, asyncio.Transport)
    return transport


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    writer.transport.abort()
