"""AMQP consumption and the per-message flow: decode, claim, run, finish, then ack."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Coroutine, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Generic, TypeVar, cast

import asyncpg
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustChannel, FieldValue
from aiormq.exceptions import AMQPError

from gleaner.services.worker import dead_letters, job_logs
from gleaner.services.worker.acks import AckCoalescer, channel_of
from gleaner.services.worker.children import ChildWriter, KindCache
from gleaner.services.worker.claims import Claim, ClaimKey, Finish, Finished, JobStore, Key
from gleaner.services.worker.context import Deferred, JobContext, JobInfo, JobLogger, job_logger
from gleaner.services.worker.dead_letters import HANDLING_FAILED
from gleaner.services.worker.flow_failures import FAILURES_HEADER, GIVE_UP, MAX_FAILURES, REQUEUE, next_step, transient
from gleaner.services.worker.handlers import Handler, ServedKinds
from gleaner.services.worker.job_metrics import JobMetrics, Series, observe_many
from gleaner.services.worker.prefetch import Held, JobWindow, announced_jobs
from gleaner.services.worker.queue_pauses import paused_queues
from gleaner.services.worker.recycle import JobAllowance
from gleaner.services.worker.results import ResultStore
from gleaner.services.worker.retry import (
    ABANDONED,
    DEFERRED,
    FAILED,
    HANDBACK,
    RETRYING,
    Outcome,
    early_by_s,
    from_error,
    refused,
)
from gleaner.services.worker.runner import RunningJobs
from gleaner.services.worker.site_sessions import SiteSessions
from gleaner.services.worker.slots import Slots
from gleaner.shared import events
from gleaner.shared import logging as context
from gleaner.shared.amqp import Broker
from gleaner.shared.batcher import Batcher, Refused
from gleaner.shared.config import Config
from gleaner.shared.db import ROW, failure_kind, unavailable
from gleaner.shared.errors import DecodeError, HandlerError
from gleaner.shared.messages import JobGroup, JobMessage, decode_jobs, headers_of
from gleaner.shared.metrics import Metrics
from gleaner.shared.soft_limit import with_soft_limit

log = logging.getLogger(__name__)
# the end line of an attempt whose flow was cancelled or failed before an outcome (a shutdown, a lost database)
INTERRUPTED = Outcome("interrupted")

# how a delivery is settled once all of its jobs are recorded (see `settlement`)
ACK = "ack"
REJECT = "reject"
GIVE_BACK = "give_back"
LOST = "lost"
# what one job of a delivery ended with: how it wants the delivery settled, or the error of its flow
Step = str | Exception
T = TypeVar("T")
# writes the outcomes of jobs that ended (`Consumer._run_claims`): each job's step by its position in the delivery
Recorder = Callable[[list[tuple[int, Claim, Outcome | Exception]]], Awaitable[dict[int, Step]]]

# a failed flow (database or broker trouble) waits this long before its message is requeued, to avoid a hot loop
REQUEUE_PAUSE_S = 1.0
# how long a flow keeps trying to write an outcome while PostgreSQL is unreachable (twice the lease, at least this)
FINISH_PATIENCE_MIN_S = 10.0
FINISH_RETRY_PAUSE_S = 0.2
FINISH_RETRY_MAX_PAUSE_S = 5.0
# job loggers kept, one per (kind, site): past this many the set starts again (sites come and go)
MAX_JOB_LOGGERS = 1024


@dataclass(slots=True)
class Batchers:
    """The group-commit writers every flow shares."""

    claims: Batcher[ClaimKey, Claim | None]
    finishes: Batcher[Finish, Finished | None]
    handbacks: Batcher[Key, bool]

    def start(self) -> None:
        for batcher in (self.claims, self.finishes, self.handbacks):
            batcher.start()

    async def close(self) -> None:
        for batcher in (self.claims, self.finishes, self.handbacks):
            await batcher.close()


@dataclass(slots=True)
class Consumer:
    """Consumes the work queues on its own channel (prefetch counted in jobs); one flow task per delivery."""

    config: Config
    broker: Broker
    pool: asyncpg.Pool
    registry: ServedKinds
    metrics: Metrics
    store: JobStore
    batchers: Batchers
    running: RunningJobs
    http: Any = None
    sites: SiteSessions | None = None
    # GLEANER_WORKER_MAX_JOBS: once spent, `recycle` drains this worker and exits it for a fresh one
    allowance: JobAllowance = field(default_factory=JobAllowance)
    recycle: Callable[[str], None] = field(default=lambda _reason: None)
    stopping: bool = False
    _series: JobMetrics | None = None
    _kinds: KindCache | None = None  # what ctx.submit checks child jobs against
    _loggers: dict[tuple[str, str | None], JobLogger] = field(default_factory=dict)
    _served: dict[str, tuple[Handler, float | None]] = field(default_factory=dict)  # see _served_kind
    _channel: AbstractRobustChannel | None = None
    _queues: dict[str, AbstractQueue] = field(default_factory=dict)
    _consumers: dict[str, str] = field(default_factory=dict)  # queue name → consumer tag
    # the heartbeat and a queues.changed event may reconcile at once: one at a time, or a queue gets two consumers
    _pausing: asyncio.Lock = field(default_factory=asyncio.Lock)
    _flows: int = 0
    _idle: asyncio.Event = field(default_factory=asyncio.Event)
    # the flow tasks (the loop keeps only weak references) and the slots that bound how many run at once
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _slots: Slots = field(init=False)
    acks: AckCoalescer = field(default_factory=AckCoalescer)
    # the jobs held, counted in jobs (see prefetch.py), and the task that keeps the channel's prefetch in step
    window: JobWindow = field(init=False)
    _prefetch_changed: asyncio.Event = field(default_factory=asyncio.Event)
    _prefetch_task: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self._slots = Slots(self.config.worker_concurrency)
        self.window = JobWindow.of_worker(self.config.worker_concurrency, self.config.group_max_jobs)

    async def start(self) -> None:
        """Declare the consumed queues and consume those not paused."""
        assert self.broker.connection is not None, "the broker must be connected first"
        if self.config.group_max_jobs > 2 * self.config.worker_concurrency:
            log.warning(
                "GLEANER_GROUP_MAX_JOBS=%d is more than twice GLEANER_WORKER_CONCURRENCY=%d: this worker will often "
                "keep only part of a group and publish the rest again (see prefetch.py)",
                self.config.group_max_jobs,
                self.config.worker_concurrency,
            )
        channel = await self.broker.connection.channel()
        assert isinstance(channel, AbstractRobustChannel)
        # one limit for the channel (all its queues), changed as jobs come and go: `global_` applies it at once
        await channel.set_qos(prefetch_count=self.window.prefetch(), global_=True)
        topology = self.broker.topology
        for name in self.config.consumed_queues:
            self._queues[name] = await channel.declare_queue(
                topology.work_queue(name),
                durable=True,
                arguments=topology.work_queue_arguments(),
                passive=not self.config.amqp_declare,  # a worker user without configure permission only checks
            )
        self._channel = channel
        self._idle.set()
        self._prefetch_task = asyncio.get_running_loop().create_task(self._follow_prefetch(channel), name="prefetch")
        await self.follow_pauses()

    async def follow_pauses(self) -> None:
        """Match the paused queues in the database now (at start, each heartbeat, on `queues.changed`)."""
        await self.apply_pauses(await paused_queues(self.pool))

    async def apply_pauses(self, paused: Collection[str]) -> None:
        """Consume every queue not in `paused` and none that is; deliveries already taken run on."""
        async with self._pausing:
            await self._apply_pauses(paused)

    async def _apply_pauses(self, paused: Collection[str]) -> None:
        for name, queue in self._queues.items():
            if self.stopping:
                return
            tag = self._consumers.get(name)
            if name in paused and tag is not None:
                del self._consumers[name]
                with contextlib.suppress(AMQPError, RuntimeError, ConnectionError, TimeoutError):
                    await queue.cancel(tag, timeout=5)
                log.info("queue %s paused: no new deliveries", name)
            elif name not in paused and tag is None:
                try:
                    self._consumers[name] = await queue.consume(functools.partial(self.on_message, name), no_ack=False)
                except (AMQPError, RuntimeError, ConnectionError, TimeoutError) as exc:
                    log.warning("could not consume queue %s, retrying with the next heartbeat: %r", name, exc)

    async def stop_consuming(self) -> None:
        """Stop taking deliveries; flows already under way go on."""
        self.stopping = True
        consumers, self._consumers = self._consumers, {}
        for name, tag in consumers.items():
            with contextlib.suppress(AMQPError, RuntimeError, ConnectionError, TimeoutError):
                await self._queues[name].cancel(tag, timeout=5)

    async def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no flow is under way; False if `timeout_s` passed first."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def _follow_prefetch(self, channel: AbstractRobustChannel) -> None:
        """Set the channel's prefetch whenever the jobs held change it (one request at a time, the latest value)."""
        current = self.window.prefetch()
        while True:
            await self._prefetch_changed.wait()
            self._prefetch_changed.clear()
            wanted = self.window.prefetch()
            if wanted == current:
                continue
            try:
                await channel.set_qos(prefetch_count=wanted, global_=True, timeout=5)
                current = wanted
            except (AMQPError, RuntimeError, ConnectionError, TimeoutError) as exc:
                # the robust channel restores the last value it set once it is back; the next change sets it again
                log.debug("could not set the prefetch to %d: %r", wanted, exc)

    async def close(self) -> None:
        if self._prefetch_task is not None:
            self._prefetch_task.cancel()
            self._prefetch_task = None
        await self.acks.drain()
        if self._channel is not None:
            with contextlib.suppress(AMQPError, RuntimeError, ConnectionError):
                await self._channel.close()
            self._channel = None

    async def on_message(self, queue: str, message: AbstractIncomingMessage) -> None:
        """aio-pika's callback: hand the delivery to a flow task this worker owns, and return.

        aiormq cancels a channel's callback tasks when the channel closes (a dropped connection), so a flow
        running in one would abandon its job midway. The owned flow keeps going and writes the outcome to
        PostgreSQL even when the ack can no longer be sent; the broker redelivers the message on the new channel,
        and the fenced claim drops the copy (an ack of a finished or still running attempt is stale).
        """
        self.acks.delivered(message)
        held = Held.of_delivery(self.window, announced_jobs(message.headers))
        self._prefetch_changed.set()
        self._flows += 1
        self._idle.clear()
        task = asyncio.get_running_loop().create_task(self._owned_flow(queue, message, held))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _owned_flow(self, queue: str, message: AbstractIncomingMessage, held: Held) -> None:
        """One delivery's flow; each of its jobs takes one of `worker_concurrency` slots before its claim.

        Prefetch bounds the deliveries of one channel; after a reconnect the new channel's deliveries (mostly
        redeliveries of the jobs still running here) wait for a slot, so handlers never outnumber the slots and
        the rows claimed are the rows running.
        """
        try:
            await self._flow(queue, message, held)
        except Exception as exc:  # noqa: BLE001 - every failure settles the message, see flow_failures
            await self._flow_failed(queue, message, exc)
        finally:
            held.close()
            self._prefetch_changed.set()
            self._flows -= 1
            if self._flows == 0:
                self._idle.set()

    async def _flow_failed(self, queue: str, message: AbstractIncomingMessage, error: Exception) -> None:
        """Requeue the delivery, or publish a copy that counts the failure, or make it a dead letter."""
        await asyncio.sleep(REQUEUE_PAUSE_S)  # never a hot loop
        step, failures = next_step(error, message.headers)
        if step == REQUEUE or self.stopping:
            log.warning("message flow failed, requeueing the message: %r", error)
            await self._give_back(message)
            return
        log.error("handling a message failed (%d of %d times)", failures, MAX_FAILURES, exc_info=error)
        try:
            if step == GIVE_UP:
                await self._poison(
                    queue, message, HANDLING_FAILED, f"handling failed {failures} times; last: {error!r}"
                )
            else:
                await self._count_failure(queue, message, failures)
        except Exception as exc:  # noqa: BLE001 - the database or the broker went away: the delivery comes back
            log.warning("could not count or record the failure, requeueing the message: %r", exc)
            await self._give_back(message)

    async def _count_failure(self, queue: str, message: AbstractIncomingMessage, failures: int) -> None:
        """Replace the delivery by a copy that carries its failure count."""
        headers = {**(message.headers or {}), FAILURES_HEADER: failures}
        await self.broker.publish_copy(message.body, headers, queue, message.priority or 0)
        self.acks.ack(message)

    async def _poison(self, queue: str, message: AbstractIncomingMessage, reason: str, detail: str) -> None:
        """Record a message as a dead letter and reject it into the dead-letter exchange."""
        try:
            await dead_letters.record(self.pool, queue, reason, detail, message.body, message.headers)
        except Exception as exc:
            if transient(exc):
                raise
            # never a loop: the copy in <ns>.dead is all that is kept of it
            log.error("could not record a dead letter (%s), rejecting the message anyway: %r", reason, exc)
        self.metrics.dead_letters.labels(reason).inc()
        await self._reject(message)

    async def _flow(self, queue: str, message: AbstractIncomingMessage, held: Held) -> None:
        if self.stopping:
            await self._give_back(message)
            return
        if channel_of(message) is None:
            return  # its channel closed meanwhile: the broker delivers it again
        try:
            jobs = decode_jobs(message.body)
        except DecodeError as exc:
            await self._undecodable(queue, message, exc)
            return
        wait_s = early_by_s(jobs[0].due_ms, int(time.time() * 1000), self.config.delay_unit_ms)
        if wait_s > 0:
            log.debug("job %d arrived %.3fs early: sent through the delay levels again", jobs[0].job_id, wait_s)
            await self.broker.publish_one(JobGroup(jobs) if len(jobs) > 1 else jobs[0], wait_s)
            self.acks.ack(message)
            return
        carried = len(jobs)
        kept = held.fit(carried)
        if kept < carried:
            jobs = await self._hand_on(jobs, kept)
        steps = await self._jobs(queue, message, jobs, carried, held)
        if carried == 1:  # a failure is the delivery's: see _flow_failed
            if isinstance(steps[0], Exception):
                raise steps[0]
            await self._settle(message, steps[0])
            return
        failed = [(job, step) for job, step in zip(jobs, steps, strict=True) if isinstance(step, Exception)]
        if failed:
            await self._split_off(queue, message, failed)
        asked = [step for step in steps if isinstance(step, str)]
        dead = [job for job, step in zip(jobs, steps, strict=True) if step == REJECT]
        await self._settle(message, await self._without_rejects(queue, dead, asked))

    async def _without_rejects(self, queue: str, dead: Sequence[JobMessage], asked: Sequence[str]) -> str:
        """How to settle a group whose `dead` jobs failed for good: each goes to `<ns>.dead` as a message of its own
        and the group is settled as the other jobs ask (a reject would copy every job of the group there)."""
        if not dead:
            return settlement(asked)
        try:
            for job in dead:
                await self.broker.publish_dead(job, queue)
        except Exception as exc:  # noqa: BLE001 - the dead queue is a copy: better all of the group than none of it
            log.warning("could not publish a failed job's copy to the dead queue; rejecting its group: %r", exc)
            return settlement(asked)
        return settlement([step for step in asked if step != REJECT])

    async def _hand_on(self, jobs: tuple[JobMessage, ...], kept: int) -> tuple[JobMessage, ...]:
        """Publish the jobs of a group past the room this worker has left as a group of their own (for any worker)
        and keep the first `kept`. The delivery is settled later with the kept jobs: if this worker dies first, the
        redelivered group and the copy both reach the fenced claim, which runs each job once."""
        rest = jobs[kept:]
        log.debug("holding %d jobs already: %d of a group of %d handed on", self.window.jobs, len(rest), len(jobs))
        await self.broker.publish_one(JobGroup(rest) if len(rest) > 1 else rest[0], 0.0)
        self.metrics.jobs_handed_on.inc(len(rest))
        return jobs[:kept]

    async def _split_off(
        self, queue: str, message: AbstractIncomingMessage, failed: Sequence[tuple[JobMessage, Exception]]
    ) -> None:
        """Give each job of a group whose flow raised a message of its own, counting the failure as a redelivery of
        the group would: the others, recorded already, are settled with the group and never handled again."""
        await asyncio.sleep(REQUEUE_PAUSE_S)  # never a hot loop
        for job, error in failed:
            _, failures = next_step(error, message.headers)
            log.warning("job %d of a group failed its flow, publishing it on its own: %r", job.job_id, error)
            headers: dict[str, FieldValue] = {**headers_of(job), FAILURES_HEADER: failures}
            await self.broker.publish_copy(job.encode(), headers, queue, job.priority)

    async def _settle(self, message: AbstractIncomingMessage, how: str) -> None:
        """Settle a delivery once, after every job it carried is recorded (or handed back)."""
        if how == ACK:
            self.acks.ack(message)
        elif how == REJECT:
            await self._reject(message)  # into the dead-letter exchange: a copy in <ns>.dead
        elif how == GIVE_BACK:
            await self._give_back(message)

    async def _jobs(
        self, queue: str, message: AbstractIncomingMessage, jobs: Sequence[JobMessage], carried: int, held: Held
    ) -> list[Step]:
        """Each job of a delivery to its outcome: how it wants the delivery settled (see `settlement`), or the error
        of its flow. Jobs with a handler take their slots in as few steps as the free slots allow (all at once when
        enough are free) and each such part is claimed as one batcher item."""
        steps: list[Step] = [ACK] * len(jobs)
        waiting: list[int] = []
        for n, job in enumerate(jobs):
            if job.kind in self._served or job.kind in self.registry:  # the first: a dict, no method calls
                waiting.append(n)
            else:
                steps[n] = await self._unknown(queue, message, job, carried, held)
        ran: list[tuple[list[int], list[Step]]] = []
        tasks: list[tuple[list[int], asyncio.Task[list[Step]]]] = []
        try:
            while waiting:
                taken = await self._slots.take(len(waiting))
                part, waiting = waiting[:taken], waiting[taken:]
                run = self._part(queue, message, [jobs[n] for n in part], carried, held)
                if tasks or waiting:  # the rest waits for slots while this part runs
                    tasks.append((part, asyncio.ensure_future(run)))
                else:  # the whole delivery in one step: no task of its own
                    ran.append((part, await run))
        except BaseException:
            for _, task in tasks:
                task.cancel()
            raise
        ran += [(part, await task) for part, task in tasks]
        for part, part_steps in ran:
            for n, step in zip(part, part_steps, strict=True):
                steps[n] = step
        return steps

    async def _unknown(
        self, queue: str, message: AbstractIncomingMessage, job: JobMessage, carried: int, held: Held
    ) -> Step:
        """A job no handler is registered for: a dead letter (it takes no slot)."""
        try:
            await self._unknown_kind(queue, job, letter_body(message, job, carried), message.headers)
        except Exception as exc:  # noqa: BLE001 - the job's own failure, see _flow
            return exc
        finally:
            held.ended(1)
            self._prefetch_changed.set()
        return REJECT

    async def _part(
        self, queue: str, message: AbstractIncomingMessage, jobs: Sequence[JobMessage], carried: int, held: Held
    ) -> list[Step]:
        """Jobs that took a slot each: claimed together, then run, each in a task of its own when several run (a
        cancel or a timeout cancels the task of its own job). Each job frees its slot once it ends."""
        try:
            claimed: list[Claim | Step] = await self._claim(queue, message, jobs, carried)
        except Exception as exc:  # noqa: BLE001 - the claim failed (the database is gone): each job's failure
            claimed = [exc] * len(jobs)
        except BaseException:
            self._ended(held, len(jobs))
            raise
        runs = [(n, claim) for n, claim in enumerate(claimed) if isinstance(claim, Claim)]
        self._ended(held, len(jobs) - len(runs))
        steps = await self._run_claims(runs, held) if runs else {}
        return [steps[n] if isinstance(claim, Claim) else claim for n, claim in enumerate(claimed)]

    async def _run_claims(self, runs: Sequence[tuple[int, Claim]], held: Held) -> dict[int, Step]:
        """Run claimed jobs to their recorded outcomes; their steps by position in the delivery.

        One job runs in this flow's task; several run as `_run_inline` says: each job lives in one task from its start
        to its end (a cancel or a timeout cancels the task of its own job), and the outcomes of jobs that ended are
        written while the others run on: a slow job never holds back the outcome of a quick one.
        """
        # the heartbeat renews the leases until the outcomes are written
        self.running.hold([(claim.job.id, claim.job.attempt) for _, claim in runs])
        self._count_started([claim for _, claim in runs])
        recorded: set[int] = set()  # the jobs handed to `_record`, which ends them whatever happens

        async def record(ended: list[tuple[int, Claim, Outcome | Exception]]) -> dict[int, Step]:
            recorded.update(n for n, _, _ in ended)
            return await self._record(ended, held)

        try:
            if len(runs) == 1:
                n, claim = runs[0]
                return await record([(n, claim, await self._attempt(claim))])
            return await self._run_inline(runs, record)
        finally:
            unrecorded = [claim for n, claim in runs if n not in recorded]  # a cancelled flow's
            self.running.release([claim.key for claim in unrecorded])
            self._observe_ended(unrecorded)
            self._ended(held, len(unrecorded))

    async def _run_inline(self, runs: Sequence[tuple[int, Claim]], record: Recorder) -> dict[int, Step]:
        """Run jobs in this task one after another while each ends without waiting for anything (a no-op: no task of
        its own to pay for, 4-5 us a job here); the first job that waits goes on in this task, which has been its
        own since its start (what it bound to the current task, such as an `asyncio.timeout`, stays right), while a
        new task records the jobs that ended and runs the rest the same way."""
        ended: list[tuple[int, Claim, Outcome | Exception]] = []
        for i, (n, claim) in enumerate(runs):
            # a context of its own, as a task of its own would copy (its log fields, what its handler sets): the
            # flow's and the next job's stay as they were
            own = contextvars.copy_context()
            attempt = self._attempt(claim)
            try:
                waiting_on = own.run(attempt.send, None)
            except StopIteration as stop:
                ended.append((n, claim, stop.value))
                continue
            later = runs[i + 1 :]
            rest = asyncio.ensure_future(self._record_and_run(ended, later, record)) if ended or later else None
            try:
                outcome: Outcome | Exception = await Resumed(attempt, waiting_on, own)
                steps = await record([(n, claim, outcome)])
            except BaseException:  # this flow was cancelled: the jobs still running end with it
                if rest is not None:
                    rest.cancel()
                raise
            return steps | await rest if rest is not None else steps
        return await record(ended)

    async def _record_and_run(
        self,
        ended: list[tuple[int, Claim, Outcome | Exception]],
        runs: Sequence[tuple[int, Claim]],
        record: Recorder,
    ) -> dict[int, Step]:
        steps = await record(ended) if ended else {}
        return steps | await self._run_inline(runs, record) if runs else steps

    async def _claim(
        self, queue: str, message: AbstractIncomingMessage, jobs: Sequence[JobMessage], carried: int
    ) -> list[Claim | Step]:
        """Claim jobs that took their slots, in one batcher item: a Claim for each job to run, else its step."""
        if self.stopping:
            return [GIVE_BACK] * len(jobs)
        if channel_of(message) is None:
            return [LOST] * len(jobs)  # its channel closed while it waited for a slot: the broker delivers it again
        allowed = self.allowance.take(len(jobs))
        if allowed < len(jobs):
            # the next worker skips the jobs of the group recorded here
            log.debug("recycling: handing back %d jobs for the next worker", len(jobs) - allowed)
        keys = [(job.job_id, job.attempt, job.generation) for job in jobs[:allowed]]
        results = await self.batchers.claims.submit_many(keys) if keys else []
        claimed: list[Claim | Step] = []
        for job, result in zip(jobs[:allowed], results, strict=True):
            if result is None:
                self.allowance.put_back()
                body = letter_body(message, job, carried)
                claimed.append(await _caught(self._unclaimed(queue, job, body, message.headers)))
            else:
                claimed.append(result.error if isinstance(result, Refused) else result)
        if self.allowance.spent:
            self.recycle(self.allowance.reason())
        return claimed + [GIVE_BACK] * (len(jobs) - allowed)

    def _ended(self, held: Held, count: int) -> None:
        """Jobs of a delivery ended (recorded, dropped, handed back): their slots and their room are free again."""
        if count:
            self._slots.give(count)
            held.ended(count)
            self._prefetch_changed.set()

    async def _unclaimed(self, queue: str, job: JobMessage, body: bytes, headers: Mapping[str, Any] | None) -> str:
        """No row to run: a duplicate or outdated message (dropped), or poison naming no job at all."""
        if await dead_letters.record_if_no_job(self.pool, queue, job, body, headers):
            self.metrics.dead_letters.labels(dead_letters.NO_SUCH_JOB).inc()
            return REJECT
        log.debug("dropped a stale or duplicate message of job %d attempt %d", job.job_id, job.attempt)
        self.metrics.stale_claims.labels(queue).inc()
        return ACK

    async def _undecodable(self, queue: str, message: AbstractIncomingMessage, error: DecodeError) -> None:
        await self._poison(queue, message, dead_letters.UNDECODABLE, str(error))

    async def _unknown_kind(self, queue: str, job: JobMessage, body: bytes, headers: Mapping[str, Any] | None) -> None:
        failed = await dead_letters.record_unknown_kind(self.pool, queue, job, body, headers)
        self.metrics.dead_letters.labels(dead_letters.UNKNOWN_KIND).inc()
        if failed:
            row = {"id": job.job_id, "kind": job.kind, "queue": job.queue, "attempt": job.attempt, "state": "failed"}
            why = f"no handler registered for kind {job.kind!r}"
            at = events.stamp()
            event = events.job_event(
                row, at, events.DEAD_LETTERED, error_class=dead_letters.UNKNOWN_KIND, error_message=why
            )
            await self.broker.publish_event(events.DEAD_LETTERED, events.encode([event]))

    async def _record(self, ended: Sequence[tuple[int, Claim, Outcome | Exception]], held: Held) -> dict[int, Step]:
        """Record the outcomes of jobs that ended together (one finish item, one hand-back item) and free their
        slots; each job's step by its position in the delivery."""
        try:
            steps: dict[int, Step] = {}
            finishes: list[tuple[int, Claim, Finish]] = []
            handbacks: list[int] = []
            for n, claim, outcome in ended:
                if isinstance(outcome, Exception):
                    steps[n] = outcome
                elif outcome.state == HANDBACK:
                    handbacks.append(n)
                elif outcome.state == ABANDONED:
                    log.warning("job %d attempt %d: its lease ran out; the reaper takes it over", *claim.key)
                    steps[n] = ACK  # the reaper publishes the next attempt's message
                else:
                    finishes.append((n, claim, Finish(claim.job.id, claim.job.attempt, outcome)))
            if handbacks:
                steps |= await self._hand_back([(n, claim.key) for n, claim, _ in ended if n in handbacks])
            if finishes:
                written = await self._write_outcomes([item for _, _, item in finishes])
                for (n, _, _), finished in zip(finishes, written, strict=True):
                    steps[n] = _recorded(finished)
                self._count(
                    (claim, finished.state)
                    for (_, claim, _), finished in zip(finishes, written, strict=True)
                    if isinstance(finished, Finished)
                )
            return steps
        finally:
            self.running.release([(claim.job.id, claim.job.attempt) for _, claim, _ in ended])
            self._observe_ended([claim for _, claim, _ in ended])
            self._ended(held, len(ended))

    async def _hand_back(self, keys: Sequence[tuple[int, Key]]) -> dict[int, Step]:
        """Undo attempts cancelled by a shutdown, so their requeued delivery claims them again."""
        try:
            results = await self.batchers.handbacks.submit_many([key for _, key in keys])
        except Exception as exc:  # noqa: BLE001 - each job's failure, see _flow
            return {n: exc for n, _ in keys}
        return {n: r.error if isinstance(r, Refused) else GIVE_BACK for (n, _), r in zip(keys, results, strict=True)}

    async def _write_outcomes(self, items: Sequence[Finish]) -> list[Finished | Exception | None]:
        """Write outcomes as one batcher item; those it could not write (a value PostgreSQL refused, a database
        outage) are written again each on its own (`_write_outcome`), all at once."""
        try:
            written: list[Finished | Refused | None] = await self.batchers.finishes.submit_many(items)
        except Exception as exc:  # noqa: BLE001 - the database is unavailable: each outcome waits for it on its own
            written = [Refused(exc)] * len(items)
        results: list[Finished | Exception | None] = [None if isinstance(r, Refused) else r for r in written]
        again = [n for n, result in enumerate(written) if isinstance(result, Refused)]
        if again:
            retried = await asyncio.gather(*(_caught(self._write_outcome(items[n])) for n in again))
            for n, result in zip(again, retried, strict=True):
                results[n] = result
        return results

    async def _write_outcome(self, item: Finish) -> Finished | None:
        """Write an attempt's outcome; one PostgreSQL refuses (its own values: the batch wrote its neighbours) is
        replaced by a storable one, so the job moves on instead of waiting for its lease to run out."""
        try:
            return await self._write_patiently(item)
        except Exception as exc:
            if failure_kind(exc) != ROW:
                raise
            log.warning("PostgreSQL refused the outcome of job %d; writing it without the refused values", item.job_id)
            return await self._write_patiently(Finish(item.job_id, item.attempt, refused(item.outcome, exc)))

    async def _write_patiently(self, item: Finish) -> Finished | None:
        """Write an outcome, through a database outage too: the handler ran, and running it again costs more
        than waiting. The lease is renewed meanwhile (when the database answers); if the reaper took the job
        over after all, the fenced write finds nothing and the attempt is dropped."""
        deadline = time.monotonic() + max(FINISH_PATIENCE_MIN_S, 2 * self.config.lease_s)
        pause_s = FINISH_RETRY_PAUSE_S
        while True:
            try:
                return await self.batchers.finishes.submit(item)
            except Exception as exc:
                if not unavailable(exc) or time.monotonic() + pause_s > deadline:
                    raise
                log.warning("writing the outcome of job %d failed, retrying: %r", item.job_id, exc)
            await asyncio.sleep(pause_s)
            pause_s = min(pause_s * 2, FINISH_RETRY_MAX_PAUSE_S)

    async def _give_back(self, message: AbstractIncomingMessage) -> None:
        await settle(message.nack(requeue=True))
        self.acks.settled(message)

    async def _reject(self, message: AbstractIncomingMessage) -> None:
        await settle(message.reject(requeue=False))
        self.acks.settled(message)

    async def _attempt(self, claim: Claim) -> Outcome | Exception:
        """A claimed job's handler run to its outcome (in the job's own task, or the flow's for a lone job), or the
        error of its flow (see `_flow`); its metrics are counted by part (`_count_started`) and by finish batch
        (`_observe_ended`)."""
        try:
            return await self._execute(claim)
        except Exception as exc:  # noqa: BLE001 - see Consumer._flow
            return exc

    async def _execute(self, claim: Claim) -> Outcome:
        job = claim.job
        context.request_id.set(job.request_id)
        context.job_id.set(job.id)
        context.attempt.set(job.attempt)
        handler, kind_soft_s = self._served_kind(job.kind)
        if job.soft_timeout_s is not None or kind_soft_s is not None:
            job = with_soft_limit(job, kind_soft_s)
        # positional, in field order (job, log, http, db, report, extras, site, results, children; mypy checks each
        # type): keywords and the default factory of `extras` cost its __init__ 0.87 -> 0.39 us (timeit, process time)
        ctx = JobContext(
            job,
            self._job_log(job),
            self.http,
            self.pool,
            functools.partial(self.store.progress, (job.id, job.attempt)),
            {},
            None,
            ResultStore(self.pool, job.id, job.site),
            self._children_of(job),
        )
        logged = job_logs.enabled()
        if logged:
            job_logs.started(job, claim.wait_s)
        started = time.monotonic()
        outcome: Outcome | None = None
        try:
            if self.sites is None or job.site is None:  # no site to enter (and no coroutine of its own to pay for)
                outcome = await self.running.run(handler, ctx, claim.budget)
            else:
                outcome = await self._run_in_site(ctx, claim, handler)
            return outcome
        finally:
            claim.ran_s = time.monotonic() - started
            if logged:
                job_logs.ended(job, outcome or INTERRUPTED, claim.ran_s)

    def _served_kind(self, kind: str) -> tuple[Handler, float | None]:
        """The handler the consumer runs for a kind (behind its payload check) and the kind's soft time limit, looked
        up once per kind (`ServedKinds.get` makes a new partial each time for a kind with a schema)."""
        served = self._served.get(kind)
        if served is None:
            served = self._served[kind] = (self.registry.get(kind), self.registry.soft_timeout_s(kind))
        return served

    def _job_log(self, job: JobInfo) -> JobLogger:
        """The logger of a job's context, one for the jobs of a kind and site: that is all a job's logger carries
        (the JSON lines take job_id and attempt from contextvars). Its `extra` is read-only, so no handler changes
        what another job's records say; 0.8 us a job less (timeit)."""
        key = (job.kind, job.site)
        logger = self._loggers.get(key)
        if logger is None:
            if len(self._loggers) >= MAX_JOB_LOGGERS:
                self._loggers.clear()
            logger = self._loggers[key] = job_logger(job)
            logger.extra = MappingProxyType(dict(logger.extra or {}))
        return logger

    def _children_of(self, job: JobInfo) -> ChildWriter:
        if self._kinds is None:
            self._kinds = KindCache(self.pool, self.config)
        return ChildWriter(self.pool, self.config, self._kinds, job, self.store.worker_id)

    async def _run_in_site(self, ctx: JobContext, claim: Claim, handler: Handler) -> Outcome:
        """Run the handler of a job of a site: first load the site and take a concurrency slot (or defer)."""
        assert self.sites is not None
        try:
            async with self.sites.enter(ctx):
                return await self.running.run(handler, ctx, claim.budget)
        except (Deferred, HandlerError) as exc:
            return from_error(exc, claim.budget)

    def _count_started(self, claims: Sequence[Claim]) -> None:
        """Count the attempts a part starts and observe their queue waits, once per kind (each `inc` and `observe`
        takes a lock); they are in progress until `_observe_ended`."""
        for (kind, queue), same in _by_kind(claims).items():
            series = self._metrics_of(kind, queue)
            series.started.inc(len(same))
            series.in_progress.inc(len(same))
            observe_many(series.queue_wait, [c.wait_s for c in same])

    def _observe_ended(self, claims: Sequence[Claim]) -> None:
        """Attempts recorded (or given up on) are no longer in progress; observe the run times of those that ran."""
        for (kind, queue), same in _by_kind(claims).items():
            series = self._metrics_of(kind, queue)
            series.in_progress.dec(len(same))
            observe_many(series.duration, [c.ran_s for c in same if c.ran_s is not None])

    def _count(self, written: Iterable[tuple[Claim, str]]) -> None:
        """Count the states written (a refused outcome may have changed one), one `inc(n)` per kind and state."""
        # DEFERRED is not an outcome: counted as a site wait where it was decided
        tally = Counter((c.job.kind, c.job.queue, state) for c, state in written if state != DEFERRED)
        for (kind, queue, state), count in tally.items():
            series = self._metrics_of(kind, queue)
            series.completed(state).inc(count)
            if state == RETRYING:
                series.retries.inc(count)

    def _metrics_of(self, kind: str, queue: str) -> Series:
        if self._series is None:
            self._series = JobMetrics(self.metrics)
        return self._series.of(kind, queue)


async def settle(action: Awaitable[None]) -> None:
    """Ack, nack or reject; on a lost channel the broker redelivers the message and the fenced claim drops it."""
    try:
        await action
    except (AMQPError, RuntimeError, ConnectionError) as exc:
        log.debug("could not settle a message: %r", exc)


def letter_body(message: AbstractIncomingMessage, job: JobMessage, carried: int) -> bytes:
    """The body a dead letter about `job` keeps: the delivery's, or for a job of a group its own message."""
    return message.body if carried == 1 else job.encode()


def settlement(steps: Collection[str]) -> str:
    """How to settle a delivery from what its jobs asked (pure).

    LOST (a job found the channel closed) leaves the delivery to the broker's redelivery; GIVE_BACK requeues it
    (shutdown: the jobs already recorded are skipped when it comes back); REJECT (a job failed for good, or poison)
    sends it to the dead-letter exchange; otherwise it is acked.
    """
    for how in (LOST, GIVE_BACK, REJECT):
        if how in steps:
            return how
    return ACK


class Resumed(Generic[T]):
    """Awaits a coroutine whose first step already ran in `context` (and left it waiting on `waiting_on`): the rest
    of it runs in the awaiting task, each step in that context, as if a task of its own with that context had awaited
    it from the start (`yield from` would send it a first None)."""

    def __init__(self, coroutine: Coroutine[Any, Any, T], waiting_on: Any, context: contextvars.Context) -> None:
        self._coroutine = coroutine
        self._waiting_on = waiting_on
        self._context = context

    def __await__(self) -> Generator[Any, Any, T]:
        coroutine, waiting_on, run = self._coroutine, self._waiting_on, self._context.run
        while True:
            try:
                sent = yield waiting_on
            except GeneratorExit:
                coroutine.close()
                raise
            except BaseException as exc:  # noqa: BLE001 - a cancellation or an error thrown in is the coroutine's
                try:
                    waiting_on = run(coroutine.throw, exc)
                except StopIteration as stop:
                    return cast(T, stop.value)
            else:
                try:
                    waiting_on = run(coroutine.send, sent)
                except StopIteration as stop:
                    return cast(T, stop.value)


def _by_kind(claims: Sequence[Claim]) -> Mapping[tuple[str, str], Sequence[Claim]]:
    """Claims by (kind, queue): the labels of their metric series. The jobs of a part came in one message, so mostly
    they share both and are taken as they are (16 claims: 2.6 -> 1.0 us, timeit)."""
    if claims:
        kind, queue = claims[0].job.kind, claims[0].job.queue
        for claim in claims:
            if claim.job.kind != kind or claim.job.queue != queue:
                break
        else:
            return {(kind, queue): claims}
    grouped: dict[tuple[str, str], list[Claim]] = {}
    for claim in claims:
        grouped.setdefault((claim.job.kind, claim.job.queue), []).append(claim)
    return grouped


async def _caught(flow: Awaitable[T]) -> T | Exception:
    """A job's flow to its end: its error (not a cancellation) is its result, for `Consumer._flow` to deal with."""
    try:
        return await flow
    except Exception as exc:  # noqa: BLE001 - see Consumer._flow
        return exc


def _recorded(finished: Finished | Exception | None) -> Step:
    """A job's step once its outcome is written (None: the fence dropped a reaped attempt)."""
    if isinstance(finished, Exception):
        return finished
    if finished is None:
        return ACK
    return REJECT if finished.state == FAILED else ACK
