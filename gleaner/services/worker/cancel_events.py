"""Listen for `job.cancel` events (cancel that job's running handler) and `queues.changed` (re-read pauses)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from aio_pika.abc import AbstractIncomingMessage, AbstractRobustChannel

from gleaner.services.worker.retry import REASON_CANCEL
from gleaner.services.worker.runner import RunningJobs
from gleaner.shared import events
from gleaner.shared.amqp import Broker
from gleaner.shared.ops import spawn

log = logging.getLogger(__name__)


class CancelListener:
    """An exclusive, auto-delete queue bound to `job.cancel` on the events exchange (restored on reconnect)."""

    def __init__(
        self,
        broker: Broker,
        running: RunningJobs,
        *,
        on_queues_changed: Callable[[], Coroutine[Any, Any, None]] | None = None,
    ) -> None:
        self._broker = broker
        self._running = running
        self._on_queues_changed = on_queues_changed
        self._channel: AbstractRobustChannel | None = None

    async def start(self) -> None:
        assert self._broker.connection is not None, "the broker must be connected first"
        channel = await self._broker.connection.channel()
        assert isinstance(channel, AbstractRobustChannel)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(self._broker.topology.events_exchange, routing_key=events.CANCEL)
        if self._on_queues_changed is not None:
            await queue.bind(self._broker.topology.events_exchange, routing_key=events.QUEUES_CHANGED)
        await queue.consume(self._on_message, no_ack=True)
        self._channel = channel

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        if message.routing_key == events.QUEUES_CHANGED:
            if self._on_queues_changed is not None:
                spawn(self._on_queues_changed(), "queue-pauses")
            return
        job_id = events.cancel_target(message.body)
        if job_id is not None and self._running.cancel(job_id, REASON_CANCEL):
            log.info("cancelled job %d on request", job_id)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
