"""A TCP proxy for fault tests: forwards every connection to a target port, and can drop the first ones
after the target answered, so the request took effect but its answer never reaches the client."""

from __future__ import annotations

import asyncio
import contextlib

from tests.support.stack import free_port

CHUNK = 65536


class DroppingProxy:
    """`async with DroppingProxy(port, drops=1) as proxy`: `proxy.port` forwards to `port`; the first `drops`
    connections are cut (reset) as soon as the target starts answering; `dropped` counts them."""

    def __init__(self, target_port: int, drops: int = 1) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.drops_left = drops
        self.dropped = 0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> DroppingProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._serve(client_reader, client_writer)
        finally:
            self._tasks.discard(task)
            client_writer.close()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        target_reader, target_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        drop = self.drops_left > 0
        self.drops_left -= drop
        forward = asyncio.create_task(_pump(client_reader, target_writer))
        try:
            if drop:
                answer = await target_reader.read(CHUNK)  # the target answered: it acted on the request
                assert answer, "the target closed without answering"
                self.dropped += 1
                client_writer.transport.abort()  # a reset: the client never sees the answer
            else:
                await _pump(target_reader, client_writer)
        finally:
            forward.cancel()
            target_writer.close()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await forward


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while chunk := await reader.read(CHUNK):
            writer.write(chunk)
            await writer.drain()
