"""RabbitMQ topology (names and declaration) and the confirmed, pipelined job publisher."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractRobustConnection,
    DeliveryMode,
    ExchangeType,
    FieldValue,
)

from gleaner.shared import delays
from gleaner.shared.config import Config
from gleaner.shared.confirmed_batch import Encoded, missing_internals, publish_confirmed
from gleaner.shared.errors import StartupError
from gleaner.shared.messages import CONTENT_TYPE, Envelope, JobMessage, headers_of
from gleaner.shared.publish_frames import PublishEncoder
from gleaner.shared.startup import shown_url

log = logging.getLogger(__name__)

MAX_PRIORITY = 9
# on a job's own copy the worker publishes into the dead-letter exchange (a job of a group that failed): its work queue
DEAD_FROM_HEADER = "x-gleaner-dead-from"
PUBLISH_TIMEOUT_S = 10.0
EVENT_TIMEOUT_S = 5.0
# between reconnection attempts of a lost connection (aio-pika's default is 5 s): work waits for the broker's return
RECONNECT_INTERVAL_S = 1.0
# on the events exchange: a queue was paused or resumed (workers re-read the pauses)


@dataclass(frozen=True, slots=True)
class Topology:
    """Every exchange and queue name, derived from the namespace and the delay settings.

    Delay names carry the unit and level count: bindings are durable, so a changed layout gets new names
    instead of stale bindings that would route messages twice. Old delay queues drain into their own
    deliver exchange, which still reaches the work queues.
    """

    namespace: str
    queues: tuple[str, ...]
    delay_unit_ms: int
    delay_levels: int
    dead_letter_ttl_ms: int

    @classmethod
    def from_config(cls, config: Config) -> Topology:
        return cls(
            namespace=config.namespace,
            queues=config.queues,
            delay_unit_ms=config.delay_unit_ms,
            delay_levels=config.delay_levels,
            dead_letter_ttl_ms=config.dead_letter_ttl_s * 1000,
        )

    @property
    def jobs_exchange(self) -> str:
        return f"{self.namespace}.jobs"

    @property
    def dlx(self) -> str:
        return f"{self.namespace}.dlx"

    @property
    def dead_queue(self) -> str:
        return f"{self.namespace}.dead"

    @property
    def events_exchange(self) -> str:
        return f"{self.namespace}.events"

    def work_queue(self, queue: str) -> str:
        return f"{self.namespace}.q.{queue}"

    @property
    def _delay_prefix(self) -> str:
        return f"{self.namespace}.delay.{self.delay_unit_ms}ms{self.delay_levels}"

    def delay_level(self, level: int) -> str:
        """Name of level n's exchange and of its queue (they share it)."""
        return f"{self._delay_prefix}.L{level}"

    @property
    def delay_entry(self) -> str:
        return self.delay_level(self.delay_levels - 1)

    @property
    def delay_deliver(self) -> str:
        return f"{self._delay_prefix}.deliver"

    def delay_ttl_ms(self, level: int) -> int:
        return (1 << level) * self.delay_unit_ms

    def work_queue_arguments(self) -> dict[str, FieldValue]:
        return {"x-max-priority": MAX_PRIORITY, "x-dead-letter-exchange": self.dlx}


async def declare(channel: AbstractChannel, topology: Topology) -> None:
    """Declare everything idempotently; every service calls it at start."""
    jobs = await channel.declare_exchange(topology.jobs_exchange, ExchangeType.DIRECT, durable=True)
    dlx = await channel.declare_exchange(topology.dlx, ExchangeType.FANOUT, durable=True)
    await channel.declare_exchange(topology.events_exchange, ExchangeType.TOPIC, durable=True)
    dead = await channel.declare_queue(
        topology.dead_queue, durable=True, arguments={"x-message-ttl": topology.dead_letter_ttl_ms}
    )
    await dead.bind(dlx)
    deliver = await channel.declare_exchange(topology.delay_deliver, ExchangeType.TOPIC, durable=True)
    for name in topology.queues:
        queue = await channel.declare_queue(
            topology.work_queue(name), durable=True, arguments=topology.work_queue_arguments()
        )
        await queue.bind(jobs, routing_key=name)
        await queue.bind(deliver, routing_key=delays.deliver_pattern(topology.delay_levels, name))
    await _declare_delay_levels(channel, topology, deliver)


async def _declare_delay_levels(channel: AbstractChannel, topology: Topology, deliver: AbstractExchange) -> None:
    below = deliver
    for level in range(topology.delay_levels):
        name = topology.delay_level(level)
        exchange = await channel.declare_exchange(name, ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(
            name,
            durable=True,
            arguments={"x-message-ttl": topology.delay_ttl_ms(level), "x-dead-letter-exchange": below.name},
        )
        set_pattern, clear_pattern = delays.level_patterns(level, topology.delay_levels)
        await queue.bind(exchange, routing_key=set_pattern)
        await below.bind(exchange, routing_key=clear_pattern)
        below = exchange


def declared_names(topology: Topology) -> tuple[list[str], list[str]]:
    """The exchanges and the queues `declare` creates."""
    levels = [topology.delay_level(n) for n in range(topology.delay_levels)]
    exchanges = [topology.jobs_exchange, topology.dlx, topology.events_exchange, topology.delay_deliver, *levels]
    queues = [topology.dead_queue, *(topology.work_queue(q) for q in topology.queues), *levels]
    return exchanges, queues


async def check_declared(connection: AbstractRobustConnection, topology: Topology) -> None:
    """Check passively (no configure permission needed) that every exchange and queue exists.

    For services that may not declare (GLEANER_AMQP_DECLARE=0); raises TopologyMissing naming what is missing.
    """
    exchanges, queues = declared_names(topology)
    checks = [("exchange", name) for name in exchanges] + [("queue", name) for name in queues]
    missing: list[str] = []
    channel = await connection.channel()
    try:
        for kind, name in checks:
            try:
                if kind == "exchange":
                    await channel.declare_exchange(name, passive=True, robust=False)
                else:
                    await channel.declare_queue(name, passive=True, robust=False)
            except aiormq.exceptions.ChannelNotFoundEntity:
                missing.append(f"{kind} {name!r}")
                channel = await connection.channel()  # the broker closed the channel with NOT_FOUND
    finally:
        await channel.close()
    if missing:
        raise TopologyMissing(missing)


class BrokerUnavailable(ConnectionError):
    """No connection to RabbitMQ right now; the outbox relay will publish later."""


class TopologyMissing(BrokerUnavailable):
    """GLEANER_AMQP_DECLARE=0 and some exchanges or queues do not exist yet."""

    def __init__(self, missing: Sequence[str]) -> None:
        super().__init__(
            f"RabbitMQ lacks {', '.join(missing)}: with GLEANER_AMQP_DECLARE=0 services only check the topology; "
            "declare it with `gleaner migrate --topology` as a user that may configure it"
        )


class Broker:
    """One robust connection, a confirming publish channel, and the topology it declared."""

    def __init__(self, config: Config, *, name: str, identity: str | None = None) -> None:
        self.config = config
        self.topology = Topology.from_config(config)
        self.name = name
        # how the broker's management API names this connection: service, namespace and process
        process = identity or f"{socket.gethostname()}-{os.getpid()}"
        self.connection_name = f"gleaner-{name} {config.namespace} {process}"
        self.connection: AbstractRobustConnection | None = None
        self.channel: AbstractChannel | None = None
        self._jobs: AbstractExchange | None = None
        self._delay: AbstractExchange | None = None
        self._events: AbstractExchange | None = None
        self._dead: AbstractExchange | None = None
        self.reconnects = 0
        self._message_ids = itertools.count(1)
        # up from the first connect until the connection closes, up again once aio-pika reconnected it and restored
        # its channels: a robust connection's `is_closed` stays False all the while it reconnects
        self._up = False
        # batches as hand-encoded frames on aiormq's internals (confirmed_batch); False when the connected aiormq
        # lacks them: then one public publish per message, confirms still pipelined
        self.batch_frames = True

    @property
    def connected(self) -> bool:
        """Whether publishing can work now (the connection is up and the publish channel open); never blocks."""
        return self._up and self.channel is not None and not self.channel.is_closed

    async def connect(self) -> None:
        """Connect once, declare the topology and open the publish channel."""
        connection = await aio_pika.connect_robust(
            self.config.amqp_url,
            client_properties={"connection_name": self.connection_name},
            reconnect_interval=RECONNECT_INTERVAL_S,
        )
        connection.close_callbacks.add(self._on_close)
        connection.reconnect_callbacks.add(self._on_reconnect)
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        try:
            if self.config.amqp_declare:
                await declare(channel, self.topology)
            else:
                await check_declared(connection, self.topology)
        except BaseException:
            await connection.close()  # or every retry of connect_forever leaves a connection reconnecting forever
            raise
        self.batch_frames = await _frames_supported(channel)
        self._jobs = await channel.get_exchange(self.topology.jobs_exchange, ensure=False)
        self._delay = await channel.get_exchange(self.topology.delay_entry, ensure=False)
        self._events = await channel.get_exchange(self.topology.events_exchange, ensure=False)
        self._dead = await channel.get_exchange(self.topology.dlx, ensure=False)
        self.connection, self.channel = connection, channel
        self._up = not connection.is_closed

    async def connect_forever(self, stop: asyncio.Event, give_up_after_s: float | None = None) -> None:
        """Keep trying to connect until it works or `stop` is set (services that run without a broker).

        With `give_up_after_s` (a service that can do nothing without RabbitMQ: the worker's start), a refused
        login or vhost at once, or no connection within that time, is a StartupError naming GLEANER_AMQP_URL.
        """
        delay_s = 0.2
        deadline = None if give_up_after_s is None else time.monotonic() + give_up_after_s
        while not stop.is_set() and not self.connected:
            try:
                await self.connect()
                log.info("connected to RabbitMQ")
            except (TimeoutError, OSError, aio_pika.exceptions.AMQPError) as exc:
                if deadline is not None and (_refused(exc) or time.monotonic() + delay_s > deadline):
                    raise _unreachable(self.config.amqp_url, exc, give_up_after_s) from None
                log.warning("RabbitMQ unavailable, retrying in %.1fs: %s", delay_s, exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay_s)
                delay_s = min(delay_s * 2, 5.0)

    def _on_close(self, *_: object) -> None:
        if self._up:
            log.warning("lost the connection to RabbitMQ; reconnecting")
        self._up = False

    def _on_reconnect(self, *_: object) -> None:
        self.reconnects += 1
        self._up = True
        log.info("reconnected to RabbitMQ")

    async def close(self) -> None:
        self._up = False
        if self.connection is not None:
            await self.connection.close()
        self.connection = self.channel = None

    def _route(self, job: Envelope, delay_s: float) -> tuple[str, str]:
        """The exchange and routing key: the job's queue now, or the delay levels when `delay_s` > 0."""
        units = delays.delay_units(delay_s, self.topology.delay_unit_ms / 1000)
        if units == 0:
            return self.topology.jobs_exchange, job.queue
        units = min(units, (1 << self.topology.delay_levels) - 1)
        return self.topology.delay_entry, delays.routing_key(units, self.topology.delay_levels, job.queue)

    async def publish_one(self, job: Envelope, delay_s: float, timeout_s: float | None = PUBLISH_TIMEOUT_S) -> None:
        """Publish one job message (or group), through the delay levels when `delay_s` > 0; raises if unconfirmed."""
        if not self.connected or self._jobs is None or self._delay is None:
            raise BrokerUnavailable("not connected to RabbitMQ")
        exchange, key = self._route(job, delay_s)
        # priority rides along through the delay levels (which ignore it) to the work queue (which uses it)
        message = _persistent(job.encode(), job.priority, headers_of(job))
        target = self._jobs if exchange == self._jobs.name else self._delay
        # the timeout covers aio-pika waiting for a reconnecting channel, not only the confirm
        async with asyncio.timeout(timeout_s):
            await target.publish(message, key, timeout=timeout_s)

    async def publish_copy(self, body: bytes, headers: Mapping[str, FieldValue], queue: str, priority: int) -> None:
        """Publish a message as it is to a work queue (a delivery that failed, with its failure count in
        `headers`); raises if it is not confirmed in time."""
        if not self.connected or self._jobs is None:
            raise BrokerUnavailable("not connected to RabbitMQ")
        async with asyncio.timeout(PUBLISH_TIMEOUT_S):
            await self._jobs.publish(_persistent(body, priority, headers), queue, timeout=PUBLISH_TIMEOUT_S)

    async def publish_dead(self, job: JobMessage, queue: str) -> None:
        """Publish one job's own message into the dead-letter exchange (a copy in `<ns>.dead`), as a reject of a
        message of that job alone would; raises if it is not confirmed in time."""
        if not self.connected or self._dead is None:
            raise BrokerUnavailable("not connected to RabbitMQ")
        headers = {**headers_of(job), DEAD_FROM_HEADER: queue}
        async with asyncio.timeout(PUBLISH_TIMEOUT_S):
            await self._dead.publish(_persistent(job.encode(), job.priority, headers), queue, timeout=PUBLISH_TIMEOUT_S)

    async def publish_many(self, jobs: Sequence[tuple[Envelope, float]]) -> list[bool]:
        """Publish messages (a job or a group each), confirms pipelined (one write for the batch); True where the
        broker confirmed in time.

        One deadline for the whole batch; what is unconfirmed by then counts as failed.
        """
        if not jobs:
            return []
        if not self.connected or self.channel is None:
            return [False] * len(jobs)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PUBLISH_TIMEOUT_S
        if not self.batch_frames:
            return await self._publish_each(jobs, deadline)
        try:
            # aio-pika waits for a reconnecting connection here: that wait counts against the deadline
            async with asyncio.timeout_at(deadline):
                channel = await self.channel.get_underlay_channel()
            if not isinstance(channel, aiormq.Channel):
                raise TypeError(f"batch publishing needs an aiormq.Channel, not {type(channel).__name__}")
            encoder = PublishEncoder(channel.number, channel.max_content_size, CONTENT_TYPE)
            batch = [self._encoded(encoder, job, delay_s) for job, delay_s in jobs]
            outcomes = await publish_confirmed(channel, batch, max(0.0, deadline - loop.time()))
        except Exception as exc:  # noqa: BLE001 - a channel closed under the batch (aiormq fails its futures with
            # AMQP errors, RuntimeErrors or a bare Exception): nothing counts as published, the relay retries
            log.warning("publishing %d messages failed: %r", len(jobs), exc)
            return [False] * len(jobs)
        if not all(outcomes):
            log.warning(
                "%d of %d publishes unconfirmed within %gs", outcomes.count(False), len(jobs), PUBLISH_TIMEOUT_S
            )
        return outcomes

    async def _publish_each(self, jobs: Sequence[tuple[Envelope, float]], deadline: float) -> list[bool]:
        """The public path: one aio-pika publish per message, all awaited together under one deadline."""
        loop = asyncio.get_running_loop()

        async def one(job: Envelope, delay_s: float) -> bool:
            try:
                await self.publish_one(job, delay_s, timeout_s=max(0.0, deadline - loop.time()))
            except Exception as exc:  # noqa: BLE001 - unconfirmed, returned, or the channel closed: the relay retries
                log.debug("publishing %r failed: %r", job, exc)
                return False
            return True

        outcomes = list(await asyncio.gather(*(one(job, delay_s) for job, delay_s in jobs)))
        if not all(outcomes):
            log.warning("%d of %d publishes unconfirmed", outcomes.count(False), len(jobs))
        return outcomes

    def _encoded(self, encoder: PublishEncoder, job: Envelope, delay_s: float) -> Encoded:
        exchange, key = self._route(job, delay_s)
        message_id = f"{self.name}-{next(self._message_ids)}"
        frames = encoder.encode(
            exchange, key, job.encode(), priority=job.priority, headers=headers_of(job), message_id=message_id
        )
        return Encoded(message_id, frames)

    async def publish_event(self, routing_key: str, body: bytes) -> None:
        """Best-effort event for waiters and streams; the database stays the truth."""
        if not self.connected or self._events is None:
            return
        try:
            async with asyncio.timeout(EVENT_TIMEOUT_S):
                await self._events.publish(
                    aio_pika.Message(body, content_type=CONTENT_TYPE),
                    routing_key,
                    mandatory=False,
                    timeout=EVENT_TIMEOUT_S,
                )
        except Exception as exc:  # noqa: BLE001 - events are advisory; a failure must not fail the job
            log.debug("event publish failed: %r", exc)


async def _frames_supported(channel: AbstractChannel) -> bool:
    """Whether the connected aiormq has the internals batch publishing relies on; says what it lacks if not."""
    underlay = await channel.get_underlay_channel()
    missing = missing_internals(underlay) if isinstance(underlay, aiormq.Channel) else ["aiormq.Channel"]
    if missing:
        log.warning(
            "aiormq lacks %s: batches are published one message at a time (slower, still confirmed)", ", ".join(missing)
        )
    return not missing


def _persistent(body: bytes, priority: int, headers: Mapping[str, FieldValue]) -> aio_pika.Message:
    """A persistent job message (aio-pika's header type is a wider, invariant dict)."""
    return aio_pika.Message(
        body, content_type=CONTENT_TYPE, delivery_mode=DeliveryMode.PERSISTENT, priority=priority, headers=dict(headers)
    )


def _refused(exc: BaseException) -> bool:
    """A login or vhost RabbitMQ refuses: trying again cannot help."""
    return isinstance(exc, aiormq.exceptions.AuthenticationError | aiormq.exceptions.ConnectionNotAllowed) or (
        "ACCESS_REFUSED" in str(exc) or "NOT_ALLOWED" in str(exc)
    )


def _unreachable(url: str, exc: BaseException, waited_s: float | None) -> StartupError:
    where = f"(GLEANER_AMQP_URL={shown_url(url)})"
    if _refused(exc):
        return StartupError(f"RabbitMQ refused the connection {where}: {exc}; check the user, password and vhost")
    return StartupError(
        f"cannot reach RabbitMQ {where} within {waited_s:g}s: {exc}; start it (`make services`) or fix the URL"
    )
