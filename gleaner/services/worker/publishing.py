"""After a finish batch commits: publish the retries through the delay levels and one `job.finished` event."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import asyncpg
import orjson

from gleaner.services.worker.claims import Finish, Finished, JobStore
from gleaner.services.worker.retry import DEFERRED, RETRYING
from gleaner.shared.amqp import Broker
from gleaner.shared.metrics import Metrics
from gleaner.shared.outbox import OutboxRow, publish_rows

log = logging.getLogger(__name__)

FINISHED_EVENT = "job.finished"


def finished_event(items: Sequence[Finish], results: Sequence[Finished | None]) -> bytes | None:
    """The `job.finished` body for the jobs that reached a final state in this batch, or None if none did."""
    done = [
        {"id": item.job_id, "state": result.state}
        for item, result in zip(items, results, strict=True)
        if result is not None and result.state not in (RETRYING, DEFERRED)
    ]
    return orjson.dumps(done) if done else None


class FinishWriter:
    """The finish batcher's flush: commit outcomes, then publish (the messages are acked after this returns)."""

    def __init__(self, store: JobStore, broker: Broker, pool: asyncpg.Pool, metrics: Metrics) -> None:
        self._store = store
        self._broker = broker
        self._pool = pool
        self._metrics = metrics

    async def __call__(self, items: Sequence[Finish]) -> list[Finished | None]:
        results = await self._store.finish(items)
        retries = [r.retry for r in results if r is not None and r.retry is not None]
        event = finished_event(items, results)
        await asyncio.gather(self._publish_retries(retries), self._publish_event(event))
        return results

    async def _publish_retries(self, rows: Sequence[OutboxRow]) -> None:
        if not rows:
            return
        try:
            await publish_rows(self._broker, self._pool, rows, self._metrics)
        except Exception as exc:  # noqa: BLE001 - committed rows stay unpublished; the relay publishes them
            log.warning("publishing %d retries failed, the relay will: %r", len(rows), exc)

    async def _publish_event(self, body: bytes | None) -> None:
        if body is not None:
            await self._broker.publish_event(FINISHED_EVENT, body)
