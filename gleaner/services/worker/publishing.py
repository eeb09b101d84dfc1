"""After a claim or finish batch commits: publish its events and the retries.

Events cost the worker one message per finish batch: the `job.started` events of the claims wait and ride in the
next finish batch's message, ahead of its outcomes (so a job's events stay in order); those of long jobs go out on
their own within STARTED_FLUSH_S. Publishing one message per claim batch as well cost about 9 % more worker CPU in
`make bench`'s e2e case (17.7 against 15.8 and 16.7 CPU seconds for 20,000 jobs, alternate runs on a busy box).

A finish batch hands its event to `JobEvents` and returns without waiting for the broker's confirm: events are
advisory (PostgreSQL, committed before, is the truth), and the confirm round trip held every job of the batch in
its worker slot and the next finish statement behind it (3.5 of 23 ms a batch in the e2e case). One task sends
them in the order the batches committed; batches that end while a message is in flight go out together in the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

import asyncpg

from gleaner.services.worker.claims import Claim, ClaimKey, Finish, Finished, JobStore
from gleaner.shared import events
from gleaner.shared.amqp import Broker
from gleaner.shared.metrics import Metrics
from gleaner.shared.outbox import Marks, OutboxRow, publish_rows

log = logging.getLogger(__name__)


STARTED_FLUSH_S = 0.1
# events waiting for a broker that does not confirm (a memory alarm, a lost connection) are dropped past this many
MAX_UNSENT_EVENTS = 100_000
# how long a stopping worker waits for its last events to go out
CLOSE_TIMEOUT_S = 2.0


def finished_event(results: Sequence[Finished | None], started: Sequence[events.Event] = ()) -> bytes | None:
    """The `job.finished` body: waiting `job.started` events, then the attempts that ended in this batch (retries
    too); None if there is neither."""
    done = [*started, *ended_events(results)]
    return events.encode(done) if done else None


def ended_events(results: Sequence[Finished | None]) -> list[events.Event]:
    """The events of the attempts a finish batch ended (a deferral is none)."""
    return [r.event for r in results if r is not None and r.event is not None]


class JobEvents:
    """`job.started` events waiting for the next finish batch's message, or for the timer; and the finish batches'
    messages, sent one at a time in the order their batches committed."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self._waiting: list[events.Event] = []
        # the events of finish batches not sent yet, in commit order (a job's started event ahead of its outcome)
        self._finished: list[events.Event] = []
        self._wake = asyncio.Event()

    def add(self, claims: Sequence[Claim | None]) -> None:
        self._waiting.extend(c.started for c in claims if c is not None and c.started is not None)

    def _take(self) -> list[events.Event]:
        taken, self._waiting = self._waiting, []
        return taken

    def finished(self, results: Sequence[Finished | None]) -> None:
        """A finish batch committed: its outcomes (after the started events waiting) go out with the next message."""
        done = ended_events(results)
        if not done and not self._waiting:
            return
        self._finished += self._take()
        self._finished += done
        if len(self._finished) > MAX_UNSENT_EVENTS:
            log.warning("the broker is not taking events: %d dropped", len(self._finished) - MAX_UNSENT_EVENTS)
            del self._finished[: len(self._finished) - MAX_UNSENT_EVENTS]
        self._wake.set()

    async def run(self) -> None:
        while True:
            # not `wait_for`, which on Python 3.11 can swallow a cancellation that meets a wake-up (and `close` hangs)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STARTED_FLUSH_S):
                    await self._wake.wait()
            self._wake.clear()
            await self._send()

    async def _send(self) -> None:
        if self._finished:
            sent, self._finished = self._finished, []
            await self._broker.publish_event(events.FINISHED, events.encode(sent))
        else:
            waiting = self._take()
            if waiting:
                await self._broker.publish_event(events.STARTED, events.encode(waiting))

    async def close(self, task: asyncio.Task[None]) -> None:
        """Stop the sending task and send what the last batches left (within CLOSE_TIMEOUT_S)."""
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                while self._finished or self._waiting:
                    await self._send()


class ClaimWriter:
    """The claim batcher's flush: claim, and leave the `job.started` events to JobEvents."""

    def __init__(self, store: JobStore, started: JobEvents) -> None:
        self._store = store
        self._started = started

    async def __call__(self, keys: Sequence[ClaimKey]) -> list[Claim | None]:
        claims = await self._store.claim(keys)
        self._started.add(claims)
        return claims


class FinishWriter:
    """The finish batcher's flush: commit outcomes, then publish (the messages are acked after this returns)."""

    def __init__(
        self,
        store: JobStore,
        broker: Broker,
        pool: asyncpg.Pool,
        metrics: Metrics,
        started: JobEvents,
        marks: Marks,
    ) -> None:
        self._store = store
        self._marks = marks
        self._broker = broker
        self._started = started
        self._pool = pool
        self._metrics = metrics

    async def __call__(self, items: Sequence[Finish]) -> list[Finished | None]:
        results = await self._store.finish(items)
        retries = [r.retry for r in results if r is not None and r.retry is not None]
        self._started.finished(results)
        await self._publish_retries(retries)
        return results

    async def _publish_retries(self, rows: Sequence[OutboxRow]) -> None:
        if not rows:
            return
        try:
            await publish_rows(self._broker, self._pool, rows, self._metrics, self._marks)
        except Exception as exc:  # noqa: BLE001 - committed rows stay unpublished; the relay publishes them
            log.warning("publishing %d retries failed, the relay will: %r", len(rows), exc)
