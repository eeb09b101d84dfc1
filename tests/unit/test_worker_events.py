"""The worker's job events: sent after their batch committed, in commit order, without holding the batch."""

from __future__ import annotations

import asyncio
from typing import Any

from gleaner.services.worker.claims import Finished
from gleaner.services.worker.publishing import JobEvents
from gleaner.services.worker.retry import SUCCEEDED
from gleaner.shared import events


class SlowBroker:
    """Confirms each event message only when the test lets it."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[tuple[int, str]]]] = []
        self.confirm = asyncio.Event()

    async def publish_event(self, routing_key: str, body: bytes) -> None:
        self.sent.append((routing_key, [(e["job_id"], e["type"]) for e in events.decode(body)]))
        await self.confirm.wait()


def ended(job_id: int) -> Finished:
    row = {"id": job_id, "kind": "noop", "queue": "default", "attempt": 1, "state": SUCCEEDED}
    return Finished(SUCCEEDED, event=events.job_event(row, events.stamp()))


def started(job_id: int) -> Any:
    row = {"id": job_id, "kind": "noop", "queue": "default", "attempt": 1, "state": "running"}
    return events.job_event(row, events.stamp(), events.STARTED, state="running")


async def test_finish_batches_do_not_wait_for_the_broker_and_their_events_keep_commit_order() -> None:
    broker = SlowBroker()
    sender = JobEvents(broker)  # type: ignore[arg-type]
    task = asyncio.create_task(sender.run())
    sender._waiting.append(started(1))
    sender.finished([ended(1)])  # returns at once: the confirm is not awaited here
    await asyncio.sleep(0.01)
    assert broker.sent == [(events.FINISHED, [(1, "job.started"), (1, "job.succeeded")])]
    sender.finished([ended(2), None])  # two batches commit while the first message waits for its confirm
    sender.finished([ended(3)])
    await asyncio.sleep(0.01)
    assert len(broker.sent) == 1
    broker.confirm.set()
    await asyncio.sleep(0.01)
    assert broker.sent[1] == (events.FINISHED, [(2, "job.succeeded"), (3, "job.succeeded")])  # one message, in order
    sender.finished([ended(4)])
    await sender.close(task)  # a stopping worker sends what is left
    assert broker.sent[2] == (events.FINISHED, [(4, "job.succeeded")])
