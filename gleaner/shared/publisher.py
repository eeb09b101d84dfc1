"""Background publishing of committed rows (the outbox step after the commit): whoever committed never waits for it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence

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
        """Queue committed rows (records with the outbox columns); the rows of one insert statement come in one call."""
        self.add_rows(OutboxRow.from_record(r) for r in records)

    def add_rows(self, rows: Iterable[OutboxRow]) -> None:
        """Queue rows that are due within the delay levels' reach; later ones are left to the relay.

        Rows that do not all fit are all left to the relay: an outbox row is deleted once the rows handed over with
        it are confirmed, so none of them may be dropped alone, nor handed over in another call.
        """
        due = [row for row in rows if row.delay_s <= self._max_delay_s]
        if len(due) > MAX_PENDING - len(self._pending):
            log.warning("%d rows wait for the broker already; leaving %d to the relay", len(self._pending), len(due))
        elif due:
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
                cut = batch_end(self._pending, MAX_PER_PUBLISH)
                batch, self._pending = self._pending[:cut], self._pending[cut:]
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


def batch_end(rows: Sequence[OutboxRow], size: int) -> int:
    """Where a batch of about `size` rows ends (pure): never inside the rows of one outbox row, which are confirmed
    (and the outbox row deleted) together."""
    cut = min(size, len(rows))
    while 0 < cut < len(rows) and rows[cut].outbox_id is not None and rows[cut].outbox_id == rows[cut - 1].outbox_id:
        cut += 1
    return cut
