"""Background publishing of committed rows (the outbox step after the commit): whoever committed never waits for it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

import asyncpg

from gleaner.shared.amqp import Broker
from gleaner.shared.metrics import Metrics
from gleaner.shared.outbox import Marks, OutboxRow, publish_rows

log = logging.getLogger(__name__)

MAX_PER_PUBLISH = 5000
# rows waiting beyond this many (a broker that takes its time to confirm) are left to the relay
MAX_PENDING = 100_000


class Publisher:
    """Collects newly committed rows and publishes them in batches; whatever fails the relay republishes.

    The gateway's requests and the scheduler's firing hand their rows over and go on: a slow or absent broker
    never holds them up.
    """

    def __init__(
        self, broker: Broker, pool: asyncpg.Pool, metrics: Metrics, max_delay_s: float, mark_after_s: float
    ) -> None:
        self._broker = broker
        self._pool = pool
        self._metrics = metrics
        self._max_delay_s = max_delay_s
        self._marks = Marks(pool, mark_after_s)
        self._pending: list[OutboxRow] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def add(self, records: Iterable[asyncpg.Record]) -> None:
        """Queue committed rows (records with the outbox columns)."""
        self.add_rows(OutboxRow.from_record(r) for r in records)

    def add_rows(self, rows: Iterable[OutboxRow]) -> None:
        """Queue rows that are due within the delay levels' reach; later ones are left to the relay."""
        due = [row for row in rows if row.delay_s <= self._max_delay_s]
        room = MAX_PENDING - len(self._pending)
        if len(due) > room:
            log.warning("%d rows wait for the broker already; leaving %d to the relay", MAX_PENDING, len(due) - room)
            due = due[: max(0, room)]
        if due:
            self._pending.extend(due)
            self._wake.set()

    def start(self) -> None:
        self._marks.start()
        self._task = asyncio.create_task(self._run(), name="publisher")

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch, self._pending = self._pending[:MAX_PER_PUBLISH], self._pending[MAX_PER_PUBLISH:]
                await self._publish(batch)

    async def _publish(self, rows: list[OutboxRow]) -> None:
        try:
            await publish_rows(self._broker, self._pool, rows, self._metrics, self._marks)
        except Exception as exc:  # noqa: BLE001 - committed rows stay unenqueued; the relay publishes them
            log.warning("publishing %d rows failed, the relay will: %r", len(rows), exc)

    async def close(self) -> None:
        """Publish what is pending (best effort), mark what was confirmed, then stop."""
        if self._pending:
            rows, self._pending = self._pending, []
            await self._publish(rows)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._marks.close()
