"""A TCP proxy a test can take down and bring back: a broker outage as the services see it, for the test's own
services only (the machine's RabbitMQ keeps running for everyone else)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any

from tests.support.stack import free_port


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `target`; `stop` drops every connection and refuses new ones until `start`.

    It runs its own event loop in a thread, so it keeps forwarding while the test's loop is blocked (a fixture
    stopping the services waits for each process synchronously, and they close their AMQP connections then).
    """

    def __init__(self, target_host: str, target_port: int, *, drop_answers: int = 0) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        # the first `drop_answers` connections reach the target, but their client is cut off at the answer
        self.drop_answers = drop_answers
        self.dropped = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)
        self._thread.start()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self._in_proxy(self._start())

    async def stop(self) -> None:
        await self._in_proxy(self._stop())

    async def close(self) -> None:
        await self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _in_proxy(self, coroutine: Coroutine[Any, Any, None]) -> None:
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self._loop))

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, reuse_address=True)

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()  # a reset, as when the broker's node goes away
        for pipe in list(self._pipes):
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        self._writers.clear()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        self._writers |= {client_writer, upstream_writer}
        drop = self.dropped < self.drop_answers
        self.dropped += drop
        for reader, writer, cut in ((client_reader, upstream_writer, False), (upstream_reader, client_writer, drop)):
            pipe = asyncio.get_running_loop().create_task(self._pipe(reader, writer, cut))
            self._pipes.add(pipe)
            pipe.add_done_callback(self._pipes.discard)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, cut: bool) -> None:
        """Copy until the end; `cut`: at the first data, reset the connection instead of passing it on."""
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while (data := await reader.read(65536)) and not cut:
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
        self._writers.discard(writer)
