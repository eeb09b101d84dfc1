"""The consumer's flows, database and broker faked: a flow outlives its delivery callback; concurrency holds."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from gleaner.services.worker.claims import Claim, ClaimKey, Finish, Finished, JobStore, Key
from gleaner.services.worker.consumer import ACK, GIVE_BACK, LOST, REJECT, Batchers, Consumer, settlement
from gleaner.services.worker.context import JobContext, JobInfo
from gleaner.services.worker.handlers import Registry, ServedKinds
from gleaner.services.worker.retry import CANCELLED, FAILED, REASON_CANCEL, RETRYING, SUCCEEDED, Budget
from gleaner.services.worker.runner import RunningJobs
from gleaner.shared import logging as log_fields
from gleaner.shared.amqp import Broker
from gleaner.shared.batcher import Batcher
from gleaner.shared.config import Config
from gleaner.shared.messages import JobGroup, JobMessage
from gleaner.shared.metrics import Metrics
from tests.support.stack import eventually


@dataclass
class FakeChannel:
    is_closed: bool = False


@dataclass
class FakeMessage:
    """What the consumer reads of an aio-pika delivery."""

    body: bytes
    delivery_tag: int
    _channel: FakeChannel
    settled: list[str] = field(default_factory=list)
    headers: dict[str, Any] = field(default_factory=dict)

    @property
    def channel(self) -> FakeChannel:
        if self._channel.is_closed:
            raise RuntimeError("channel closed")  # as aio-pika's ChannelInvalidStateError
        return self._channel

    async def ack(self, multiple: bool = False) -> None:
        self.settled.append("ack multiple" if multiple else "ack")

    async def nack(self, requeue: bool = True) -> None:
        self.settled.append("nack")

    async def reject(self, requeue: bool = False) -> None:
        self.settled.append("reject")


class FakeDatabase:
    """Claims every (id, attempt) once, records finishes."""

    def __init__(self) -> None:
        self.claimed: set[Key] = set()
        self.finished: list[Finish] = []

    async def claim(self, keys: Sequence[ClaimKey]) -> list[Claim | None]:
        out: list[Claim | None] = []
        for job_id, attempt, _generation in keys:
            if (job_id, attempt) in self.claimed:
                out.append(None)
                continue
            self.claimed.add((job_id, attempt))
            job = JobInfo(job_id, "block", "default", attempt, 3, {}, None, 60.0)
            out.append(Claim(job, Budget(attempt, 0, 3, 1.0, 10.0), 0.0))
        return out

    async def finish(self, items: Sequence[Finish]) -> list[Finished | None]:
        self.finished.extend(items)
        return [Finished(item.outcome.state) for item in items]

    async def hand_back(self, keys: Sequence[Key]) -> list[bool]:
        return [True] * len(keys)


class ExistingJobs:
    """The pool as the stale-claim path sees it: every job exists (nothing is recorded as poison)."""

    async def fetchrow(self, sql: str, *args: Any) -> None:
        return None


class Gate:
    """A handler that blocks until released and counts how many run at once."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.running = 0
        self.most = 0
        self.started = 0

    async def __call__(self, ctx: JobContext) -> Any:
        self.running += 1
        self.started += 1
        self.most = max(self.most, self.running)
        try:
            await self.release.wait()
            return {"id": ctx.job.id}
        finally:
            self.running -= 1


async def consumer_with(gate: Gate, database: FakeDatabase, concurrency: int) -> Consumer:
    config = Config.from_env({"GLEANER_WORKER_CONCURRENCY": str(concurrency), "GLEANER_BATCH_WINDOW_MS": "0"})
    registry = Registry()
    registry.add("block", gate)
    batchers = Batchers(
        claims=Batcher(database.claim, window_s=0, max_items=100, name="claims"),
        finishes=Batcher(database.finish, window_s=0, max_items=100, name="finishes"),
        handbacks=Batcher(database.hand_back, window_s=0, max_items=100, name="handbacks"),
    )
    batchers.start()
    return Consumer(
        config=config,
        broker=Broker(config, name="test"),
        pool=ExistingJobs(),  # type: ignore[arg-type]
        registry=ServedKinds(registry),
        metrics=Metrics("worker"),
        store=JobStore(None, "w", 30.0),  # type: ignore[arg-type]
        batchers=batchers,
        running=RunningJobs(),
    )


def delivery(job_id: int, tag: int, channel: FakeChannel) -> FakeMessage:
    body = JobMessage(job_id=job_id, attempt=1, queue="default", kind="block").encode()
    return FakeMessage(body, tag, channel)


def acked(messages: Sequence[FakeMessage]) -> set[int]:
    """The delivery tags the acks sent cover (`multiple` covers every tag up to its own)."""
    tags: set[int] = set()
    for message in messages:
        if "ack multiple" in message.settled:
            tags |= {m.delivery_tag for m in messages if m.delivery_tag <= message.delivery_tag}
        elif "ack" in message.settled:
            tags.add(message.delivery_tag)
    return tags


async def until(condition: Callable[[], bool]) -> None:
    async def check() -> bool:
        return condition()

    await eventually(check, timeout_s=2, interval_s=0.001)


async def test_a_job_runs_on_and_records_its_outcome_when_its_channel_closes_and_its_callback_is_cancelled() -> None:
    gate, database = Gate(), FakeDatabase()
    consumer = await consumer_with(gate, database, concurrency=4)
    channel = FakeChannel()
    message = delivery(7, 1, channel)
    callback = asyncio.create_task(consumer.on_message("default", message))  # type: ignore[arg-type]
    await until(lambda: gate.running == 1)
    # the connection drops: aiormq cancels the channel's consumer callback tasks
    channel.is_closed = True
    callback.cancel()
    await asyncio.sleep(0.01)
    gate.release.set()
    assert await consumer.wait_idle(2.0)
    assert [(f.job_id, f.outcome.state) for f in database.finished] == [(7, SUCCEEDED)]
    assert message.settled == []  # no ack on a closed channel: the broker redelivers, the fence drops the copy
    await consumer.batchers.close()


async def test_redeliveries_after_a_reconnect_wait_for_a_slot_and_the_fence_drops_them() -> None:
    gate, database = Gate(), FakeDatabase()
    consumer = await consumer_with(gate, database, concurrency=2)
    old, new = FakeChannel(), FakeChannel()
    first = [delivery(job_id, tag, old) for tag, job_id in enumerate((1, 2), start=1)]
    async with asyncio.timeout(1):  # the callback hands the flow over and returns
        for message in first:
            await consumer.on_message("default", message)  # type: ignore[arg-type]
    await until(lambda: gate.running == 2)
    old.is_closed = True
    # the new channel redelivers both jobs and brings a third
    again = [delivery(job_id, tag, new) for tag, job_id in enumerate((1, 2, 3), start=1)]
    async with asyncio.timeout(1):
        for message in again:
            await consumer.on_message("default", message)  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    assert (gate.running, gate.started) == (2, 2)  # no third handler while both slots are taken
    gate.release.set()
    assert await consumer.wait_idle(2.0)
    assert gate.most == 2
    assert sorted(f.job_id for f in database.finished) == [1, 2, 3]
    assert acked(again) == {1, 2, 3}  # the stale copies are acked and dropped
    await consumer.batchers.close()


def group_delivery(job_ids: Sequence[int], tag: int, channel: FakeChannel) -> FakeMessage:
    jobs = tuple(JobMessage(job_id=n, attempt=1, queue="default", kind="block") for n in job_ids)
    return FakeMessage(JobGroup(jobs).encode(), tag, channel)


async def test_a_group_runs_its_jobs_within_the_slots_and_is_acked_once_after_the_last_outcome() -> None:
    gate, database = Gate(), FakeDatabase()
    consumer = await consumer_with(gate, database, concurrency=2)
    message = group_delivery([1, 2, 3, 4], 1, FakeChannel())
    await consumer.on_message("default", message)  # type: ignore[arg-type]
    await until(lambda: gate.running == 2)
    await asyncio.sleep(0.05)
    assert gate.started == 2 and len(database.claimed) == 2  # the others wait unclaimed for a slot
    gate.release.set()
    assert await consumer.wait_idle(2.0)
    assert gate.most == 2
    assert sorted(f.job_id for f in database.finished) == [1, 2, 3, 4]
    assert message.settled == ["ack"]
    await consumer.batchers.close()


async def test_a_worker_keeps_of_a_group_only_the_jobs_it_has_room_for_and_hands_on_the_rest() -> None:
    gate, database = Gate(), FakeDatabase()
    consumer = await consumer_with(gate, database, concurrency=2)  # room for 6: two running, four waiting
    published: list[Any] = []

    async def publish_one(job: Any, delay_s: float, timeout_s: float | None = None) -> None:
        published.append((job, delay_s))

    consumer.broker.publish_one = publish_one  # type: ignore[method-assign]
    message = group_delivery([1, 2, 3, 4, 5, 6, 7, 8, 9], 1, FakeChannel())
    await consumer.on_message("default", message)  # type: ignore[arg-type]
    await until(lambda: gate.running == 2)
    assert consumer.window.jobs == 6 and consumer.window.prefetch() == 1  # full: no further delivery
    [(handed_on, delay_s)] = published
    assert isinstance(handed_on, JobGroup) and delay_s == 0.0
    assert [job.job_id for job in handed_on.jobs] == [7, 8, 9]
    gate.release.set()
    assert await consumer.wait_idle(2.0)
    assert sorted(f.job_id for f in database.finished) == [1, 2, 3, 4, 5, 6]
    assert message.settled == ["ack"]
    assert (consumer.window.jobs, consumer.window.messages) == (0, 0)
    await consumer.batchers.close()


def claim_sizes(database: FakeDatabase) -> list[int]:
    """The number of jobs each claim statement of `database` is handed, as they come."""
    sizes: list[int] = []
    claim = database.claim

    async def counted(keys: Sequence[ClaimKey]) -> list[Claim | None]:
        sizes.append(len(keys))
        return await claim(keys)

    database.claim = counted  # type: ignore[method-assign]
    return sizes


async def test_the_jobs_of_a_group_that_find_free_slots_are_claimed_in_one_statement() -> None:
    gate, database = Gate(), FakeDatabase()
    batches = claim_sizes(database)
    consumer = await consumer_with(gate, database, concurrency=8)
    gate.release.set()
    message = group_delivery([1, 2, 3, 4], 1, FakeChannel())
    await consumer.on_message("default", message)  # type: ignore[arg-type]
    assert await consumer.wait_idle(2.0)
    assert batches == [4]
    assert message.settled == ["ack"]
    await consumer.batchers.close()


def test_a_delivery_is_settled_by_the_weightiest_wish_of_its_jobs() -> None:
    assert settlement([ACK, ACK]) == ACK
    assert settlement([ACK, REJECT]) == REJECT  # recorded as failed or poison: a copy goes to the dead queue
    assert settlement([REJECT, GIVE_BACK, ACK]) == GIVE_BACK  # shutdown: the recorded jobs are skipped next time
    assert settlement([GIVE_BACK, LOST]) == LOST  # the channel is gone: the broker redelivers


async def test_a_stale_job_of_a_group_claimed_together_is_dropped_and_the_others_run() -> None:
    gate, database = Gate(), FakeDatabase()
    database.claimed.add((2, 1))  # job 2's attempt 1 ran already: its copy in the group is stale
    consumer = await consumer_with(gate, database, concurrency=8)
    gate.release.set()
    message = group_delivery([1, 2, 3], 1, FakeChannel())
    await consumer.on_message("default", message)  # type: ignore[arg-type]
    assert await consumer.wait_idle(2.0)
    assert sorted(f.job_id for f in database.finished) == [1, 3]
    assert message.settled == ["ack"]
    assert started(consumer) == 2 and completed(consumer, SUCCEEDED) == 2  # every job run is counted
    await consumer.batchers.close()


async def test_cancelling_one_job_of_a_group_cancels_only_that_job() -> None:
    gate, database = Gate(), FakeDatabase()
    consumer = await consumer_with(gate, database, concurrency=8)
    message = group_delivery([1, 2, 3], 1, FakeChannel())
    await consumer.on_message("default", message)  # type: ignore[arg-type]
    await until(lambda: gate.running == 3)
    assert consumer.running.cancel(2, REASON_CANCEL)
    await until(lambda: gate.running == 2)
    gate.release.set()
    assert await consumer.wait_idle(2.0)
    assert sorted((f.job_id, f.outcome.state) for f in database.finished) == [
        (1, SUCCEEDED),
        (2, CANCELLED),
        (3, SUCCEEDED),
    ]
    assert message.settled == ["ack"]
    assert started(consumer) == 3 and completed(consumer, SUCCEEDED) == 2
    await consumer.batchers.close()


async def test_a_group_larger_than_the_free_slots_is_claimed_in_parts_as_slots_free_up() -> None:
    gate, database = Gate(), FakeDatabase()
    batches = claim_sizes(database)
    consumer = await consumer_with(gate, database, concurrency=3)
    message = group_delivery([1, 2, 3, 4, 5], 1, FakeChannel())
    await consumer.on_message("default", message)  # type: ignore[arg-type]
    await until(lambda: gate.running == 3)
    assert batches == [3]  # the first three, together; the others wait for slots, unclaimed
    gate.release.set()
    assert await consumer.wait_idle(2.0)
    assert sum(batches) == 5 and gate.most == 3
    assert sorted(f.job_id for f in database.finished) == [1, 2, 3, 4, 5]
    assert message.settled == ["ack"]
    await consumer.batchers.close()


def started(consumer: Consumer) -> float:
    return (
        consumer.metrics.registry.get_sample_value("gleaner_jobs_started_total", {"kind": "block", "queue": "default"})
        or 0.0
    )


def completed(consumer: Consumer, outcome: str) -> float:
    labels = {"kind": "block", "queue": "default", "outcome": outcome}
    return consumer.metrics.registry.get_sample_value("gleaner_jobs_completed_total", labels) or 0.0


class SlowFor(Gate):
    """Blocks only the jobs named (with `timeout_s`, under an `asyncio.timeout` entered before their first wait); the
    others return at once."""

    def __init__(self, slow: set[int], timeout_s: float | None = None) -> None:
        super().__init__()
        self.slow = slow
        self.timeout_s = timeout_s

    async def __call__(self, ctx: JobContext) -> Any:
        if ctx.job.id not in self.slow:
            return {"id": ctx.job.id}
        async with asyncio.timeout(self.timeout_s):
            return await super().__call__(ctx)


async def test_the_quick_jobs_of_a_group_are_recorded_together_while_a_slow_one_runs() -> None:
    gate, database = SlowFor({3}), FakeDatabase()
    writes: list[list[int]] = []
    finish = database.finish

    async def counted(items: Sequence[Finish]) -> list[Finished | None]:
        writes.append(sorted(item.job_id for item in items))
        return await finish(items)

    database.finish = counted  # type: ignore[method-assign]
    consumer = await consumer_with(gate, database, concurrency=8)
    message = group_delivery([1, 2, 3], 1, FakeChannel())
    await consumer.on_message("default", message)  # type: ignore[arg-type]
    await until(lambda: len(database.finished) == 2)
    assert gate.running == 1 and writes == [[1, 2]]  # written while job 3 still runs, in one statement
    assert message.settled == []  # the delivery waits for its last job
    gate.release.set()
    assert await consumer.wait_idle(2.0)
    assert writes == [[1, 2], [3]]
    assert message.settled == ["ack"]
    await consumer.batchers.close()


async def test_the_jobs_after_a_slow_first_job_of_a_group_run_and_are_recorded_while_it_runs() -> None:
    gate, database = SlowFor({1}), FakeDatabase()
    consumer = await consumer_with(gate, database, concurrency=8)
    message = group_delivery([1, 2, 3], 1, FakeChannel())
    await consumer.on_message("default", message)  # type: ignore[arg-type]
    await until(lambda: len(database.finished) == 2)
    assert gate.running == 1 and sorted(f.job_id for f in database.finished) == [2, 3]
    assert consumer.running.cancel(1, REASON_CANCEL)  # the slow job is still its own to cancel
    assert await consumer.wait_idle(2.0)
    assert {f.job_id: f.outcome.state for f in database.finished} == {1: CANCELLED, 2: SUCCEEDED, 3: SUCCEEDED}
    assert message.settled == ["ack"]
    await consumer.batchers.close()


async def test_a_timeout_a_job_of_a_group_sets_before_it_first_waits_ends_that_job_only() -> None:
    gate, database = SlowFor({1, 3}, timeout_s=0.05), FakeDatabase()
    consumer = await consumer_with(gate, database, concurrency=8)
    message = group_delivery([1, 2, 3, 4], 1, FakeChannel())
    await consumer.on_message("default", message)  # type: ignore[arg-type]
    assert await consumer.wait_idle(2.0)
    outcomes = {f.job_id: (f.outcome.state, f.outcome.error_class) for f in database.finished}
    assert outcomes == {
        1: (RETRYING, "TimeoutError"),
        2: (SUCCEEDED, None),
        3: (RETRYING, "TimeoutError"),
        4: (SUCCEEDED, None),
    }
    assert message.settled == ["ack"]
    await consumer.batchers.close()


LABEL: contextvars.ContextVar[int | None] = contextvars.ContextVar("label", default=None)


class Labels(Gate):
    """Notes what each job finds in a context variable, sets it, and notes it again with the job's log field after
    the jobs named `waiting` waited once."""

    def __init__(self, waiting: set[int]) -> None:
        super().__init__()
        self.waiting = waiting
        self.seen: dict[int, tuple[int | None, int | None, int | None]] = {}

    async def __call__(self, ctx: JobContext) -> Any:
        found = LABEL.get()
        LABEL.set(ctx.job.id)
        if ctx.job.id in self.waiting:
            await asyncio.sleep(0)
        self.seen[ctx.job.id] = (found, LABEL.get(), log_fields.job_id.get())
        return {}


async def test_each_job_of_a_group_has_a_context_of_its_own_whether_or_not_it_waits() -> None:
    gate, database = Labels({2}), FakeDatabase()
    consumer = await consumer_with(gate, database, concurrency=8)
    await consumer.on_message("default", group_delivery([1, 2, 3, 4], 1, FakeChannel()))  # type: ignore[arg-type]
    assert await consumer.wait_idle(2.0)
    assert gate.seen == {n: (None, n, n) for n in (1, 2, 3, 4)}
    await consumer.batchers.close()


async def test_an_outcome_refused_in_a_group_write_fails_only_its_job_and_the_others_are_recorded() -> None:
    gate, database = Gate(), FakeDatabase()
    finish = database.finish

    async def refusing(items: Sequence[Finish]) -> list[Finished | None]:
        if any(item.job_id == 2 and item.outcome.state == SUCCEEDED for item in items):
            raise asyncpg.UntranslatableCharacterError("unsupported Unicode escape sequence")
        return await finish(items)

    database.finish = refusing  # type: ignore[method-assign]
    consumer = await consumer_with(gate, database, concurrency=8)
    gate.release.set()
    message = group_delivery([1, 2, 3], 1, FakeChannel())
    await consumer.on_message("default", message)  # type: ignore[arg-type]
    assert await consumer.wait_idle(2.0)
    outcomes = {f.job_id: (f.outcome.state, f.outcome.error_class) for f in database.finished}
    assert outcomes == {1: (SUCCEEDED, None), 2: (FAILED, "result_refused"), 3: (SUCCEEDED, None)}
    assert message.settled == ["reject"]  # the failed job: no broker here for its copy alone, so the group goes
    await consumer.batchers.close()


def sample(consumer: Consumer, name: str, **labels: str) -> float:
    return consumer.metrics.registry.get_sample_value(name, labels) or 0.0


async def test_each_attempt_of_a_group_is_observed_once_in_progress_while_held_and_in_both_histograms() -> None:
    gate, database = Gate(), FakeDatabase()
    consumer = await consumer_with(gate, database, concurrency=8)
    message = group_delivery([1, 2, 3, 4], 1, FakeChannel())
    await consumer.on_message("default", message)  # type: ignore[arg-type]
    await until(lambda: gate.running == 4)
    assert sample(consumer, "gleaner_jobs_in_progress", queue="default") == 4
    assert sample(consumer, "gleaner_job_queue_wait_seconds_count", queue="default") == 4
    gate.release.set()
    assert await consumer.wait_idle(2.0)
    assert sample(consumer, "gleaner_jobs_in_progress", queue="default") == 0
    assert sample(consumer, "gleaner_job_duration_seconds_count", kind="block", queue="default") == 4
    assert sample(consumer, "gleaner_job_duration_seconds_bucket", kind="block", queue="default", le="+Inf") == 4
    await consumer.batchers.close()


class Logging(Gate):
    """Logs through its context's logger and tries to change what the logger adds to every record."""

    def __init__(self) -> None:
        super().__init__()
        self.refused = 0

    async def __call__(self, ctx: JobContext) -> Any:
        ctx.log.warning("fetched", extra={"url": f"https://example.com/{ctx.job.id}"})
        try:
            ctx.log.extra["kind"] = "other"  # type: ignore[index]
        except TypeError:
            self.refused += 1
        return None


async def test_jobs_log_with_their_kind_and_site_and_none_can_change_what_another_jobs_records_say(
    caplog: Any,
) -> None:
    handler, database = Logging(), FakeDatabase()
    consumer = await consumer_with(handler, database, concurrency=8)
    with caplog.at_level("WARNING", logger="gleaner.job.block"):
        await consumer.on_message("default", group_delivery([1, 2, 3], 1, FakeChannel()))  # type: ignore[arg-type]
        assert await consumer.wait_idle(2.0)
    records = [r for r in caplog.records if r.name == "gleaner.job.block"]
    assert sorted(r.url for r in records) == [f"https://example.com/{n}" for n in (1, 2, 3)]
    assert {(r.kind, r.site) for r in records} == {("block", None)}
    assert handler.refused == 3
    await consumer.batchers.close()
