"""AMQP consumption and the per-message flow: decode, claim, run, finish, then ack."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Collection
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustChannel
from aiormq.exceptions import AMQPError

from services.worker import dead_letters
from services.worker.acks import AckCoalescer
from services.worker.claims import Claim, Finish, Finished, JobStore, Key
from services.worker.context import Deferred, JobContext, job_logger
from services.worker.handlers import Registry
from services.worker.job_metrics import JobMetrics, Series
from services.worker.queue_pauses import paused_queues
from services.worker.results import ResultStore
from services.worker.retry import DEFERRED, FAILED, HANDBACK, RETRYING, Outcome, early_by_s, from_error
from services.worker.runner import RunningJobs
from services.worker.site_sessions import SiteSessions
from shared import logging as context
from shared.amqp import Broker
from shared.batcher import Batcher
from shared.config import Config
from shared.errors import DecodeError, HandlerError
from shared.messages import JobMessage
from shared.metrics import Metrics

log = logging.getLogger(__name__)

# a failed flow (database or broker trouble) waits this long before its message is requeued, to avoid a hot loop
REQUEUE_PAUSE_S = 1.0


@dataclass(slots=True)
class Batchers:
    """The group-commit writers every flow shares."""

    claims: Batcher[Key, Claim | None]
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
    """Consumes the work queues on its own channel (prefetch = concurrency); one flow task per delivery."""

    config: Config
    broker: Broker
    pool: asyncpg.Pool
    registry: Registry
    metrics: Metrics
    store: JobStore
    batchers: Batchers
    running: RunningJobs
    http: Any = None
    sites: SiteSessions | None = None
    stopping: bool = False
    _series: JobMetrics | None = None
    _channel: AbstractRobustChannel | None = None
    _queues: dict[str, AbstractQueue] = field(default_factory=dict)
    _consumers: dict[str, str] = field(default_factory=dict)  # queue name → consumer tag
    # the heartbeat and a queues.changed event may reconcile at once: one at a time, or a queue gets two consumers
    _pausing: asyncio.Lock = field(default_factory=asyncio.Lock)
    _flows: int = 0
    _idle: asyncio.Event = field(default_factory=asyncio.Event)
    acks: AckCoalescer = field(default_factory=AckCoalescer)

    async def start(self) -> None:
        """Declare the consumed queues and consume those not paused."""
        assert self.broker.connection is not None, "the broker must be connected first"
        channel = await self.broker.connection.channel()
        assert isinstance(channel, AbstractRobustChannel)
        await channel.set_qos(prefetch_count=self.config.worker_concurrency)
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

    async def close(self) -> None:
        await self.acks.drain()
        if self._channel is not None:
            with contextlib.suppress(AMQPError, RuntimeError, ConnectionError):
                await self._channel.close()
            self._channel = None

    async def on_message(self, queue: str, message: AbstractIncomingMessage) -> None:
        self.acks.delivered(message)
        self._flows += 1
        self._idle.clear()
        try:
            await self._flow(queue, message)
        except Exception:
            log.exception("message flow failed; requeueing the message")
            await asyncio.sleep(REQUEUE_PAUSE_S)
            await self._give_back(message)
        finally:
            self._flows -= 1
            if self._flows == 0:
                self._idle.set()

    async def _flow(self, queue: str, message: AbstractIncomingMessage) -> None:
        if self.stopping:
            await self._give_back(message)
            return
        try:
            job = JobMessage.decode(message.body)
        except DecodeError as exc:
            await self._undecodable(queue, message, exc)
            return
        wait_s = early_by_s(job.due_ms, int(time.time() * 1000), self.config.delay_unit_ms)
        if wait_s > 0:
            await self.broker.publish_one(job, wait_s)
            self.acks.ack(message)
            return
        if job.kind not in self.registry:
            await self._unknown_kind(queue, message, job)
            return
        claim = await self.batchers.claims.submit((job.job_id, job.attempt))
        if claim is None:
            self.metrics.stale_claims.labels(queue).inc()
            self.acks.ack(message)
            return
        await self._run(message, claim)

    async def _undecodable(self, queue: str, message: AbstractIncomingMessage, error: DecodeError) -> None:
        await dead_letters.record_undecodable(self.pool, queue, str(error), message.body, message.headers)
        self.metrics.dead_letters.labels(dead_letters.UNDECODABLE).inc()
        await self._reject(message)

    async def _unknown_kind(self, queue: str, message: AbstractIncomingMessage, job: JobMessage) -> None:
        failed = await dead_letters.record_unknown_kind(self.pool, queue, job, message.body, message.headers)
        self.metrics.dead_letters.labels(dead_letters.UNKNOWN_KIND).inc()
        if failed:
            await self.broker.publish_event("job.finished", b'[{"id":%d,"state":"failed"}]' % job.job_id)
        await self._reject(message)

    async def _run(self, message: AbstractIncomingMessage, claim: Claim) -> None:
        job = claim.job
        context.request_id.set(job.request_id)
        context.job_id.set(job.id)
        context.attempt.set(job.attempt)
        outcome = await self._execute(claim)
        if outcome.state == HANDBACK:
            await self.batchers.handbacks.submit((job.id, job.attempt))
            await self._give_back(message)
            return
        finished = await self.batchers.finishes.submit(Finish(job.id, job.attempt, outcome))
        if finished is None:
            self.acks.ack(message)
            return
        self._count(claim, outcome)
        if finished.state == FAILED:
            await self._reject(message)  # into the dead-letter exchange: a copy in <ns>.dead
        else:
            self.acks.ack(message)

    async def _give_back(self, message: AbstractIncomingMessage) -> None:
        await settle(message.nack(requeue=True))
        self.acks.settled(message)

    async def _reject(self, message: AbstractIncomingMessage) -> None:
        await settle(message.reject(requeue=False))
        self.acks.settled(message)

    async def _execute(self, claim: Claim) -> Outcome:
        job = claim.job
        series = self._metrics_of(job.kind, job.queue)
        series.started.inc()
        series.queue_wait.observe(claim.wait_s)
        ctx = JobContext(
            job=job,
            log=job_logger(job),
            http=self.http,
            db=self.pool,
            report=functools.partial(self.store.progress, (job.id, job.attempt)),
            results=ResultStore(self.pool, job.id, job.site),
        )
        series.in_progress.inc()
        started = time.monotonic()
        try:
            return await self._run_in_site(ctx, claim)
        finally:
            series.in_progress.dec()
            series.duration.observe(time.monotonic() - started)

    async def _run_in_site(self, ctx: JobContext, claim: Claim) -> Outcome:
        """Run the handler; a job of a site first loads the site and takes a concurrency slot (or defers)."""
        handler = self.registry.get(ctx.job.kind)
        if self.sites is None:
            return await self.running.run(handler, ctx, claim.budget)
        try:
            async with self.sites.enter(ctx):
                return await self.running.run(handler, ctx, claim.budget)
        except (Deferred, HandlerError) as exc:
            return from_error(exc, claim.budget)

    def _count(self, claim: Claim, outcome: Outcome) -> None:
        if outcome.state == DEFERRED:
            return  # not an outcome: counted as a site wait where it was decided
        series = self._metrics_of(claim.job.kind, claim.job.queue)
        series.completed(outcome.state).inc()
        if outcome.state == RETRYING:
            series.retries.inc()

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
