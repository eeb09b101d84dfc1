"""`GET /jobs/{id}?wait=S`: one `job.finished` consumer per process wakes the waiters of those jobs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

import orjson
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from gleaner.shared.amqp import Broker

log = logging.getLogger(__name__)

FINISHED_EVENT = "job.finished"
POLL_S = 1.0


def finished_ids(body: bytes) -> list[int]:
    """Job ids of a `job.finished` body (a JSON list of {"id", "state"}); [] for anything else."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return []
    items = data if isinstance(data, list) else [data]
    return [
        item["id"]
        for item in items
        if isinstance(item, dict) and isinstance(item.get("id"), int) and not isinstance(item.get("id"), bool)
    ]


class Waiters:
    """Futures keyed by job id; an event wakes them, the caller re-reads the row either way."""

    def __init__(self) -> None:
        self._waiting: dict[int, set[asyncio.Future[None]]] = {}

    def wake(self, ids: Iterable[int]) -> None:
        for job_id in ids:
            for future in self._waiting.pop(job_id, ()):
                if not future.done():
                    future.set_result(None)

    async def wait(self, job_id: int, timeout_s: float) -> None:
        """Return when the job's event arrives or after `timeout_s` (capped at the poll interval by callers)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(job_id, set()).add(future)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(future, timeout_s)
        finally:
            waiting = self._waiting.get(job_id)
            if waiting is not None:
                waiting.discard(future)
                if not waiting:
                    del self._waiting[job_id]


class FinishedListener:
    """An exclusive, auto-delete queue bound to `job.finished` on the events exchange."""

    def __init__(self, broker: Broker, waiters: Waiters) -> None:
        self._broker = broker
        self._waiters = waiters
        self._channel: AbstractChannel | None = None

    async def start(self) -> None:
        if self._broker.connection is None:
            return
        channel = await self._broker.connection.channel()
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(self._broker.topology.events_exchange, routing_key=FINISHED_EVENT)
        await queue.consume(self._on_message, no_ack=True)
        self._channel = channel

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self._waiters.wake(finished_ids(message.body))

    async def close(self) -> None:
        if self._channel is not None:
            with contextlib.suppress(Exception):
                await self._channel.close()
            self._channel = None
