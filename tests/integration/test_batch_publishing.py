"""Batch publishing on the real broker: every confirmed message arrives intact, refusals are reported."""

from __future__ import annotations

import asyncio
import time

import aio_pika
import aiormq
import pytest

from gleaner.shared import amqp, confirmed_batch
from gleaner.shared.amqp import Broker
from gleaner.shared.config import Config
from gleaner.shared.confirmed_batch import Encoded, publish_confirmed
from gleaner.shared.messages import JobMessage
from gleaner.shared.publish_frames import PublishEncoder


async def _drain(broker: Broker, queue_name: str, count: int) -> list[aio_pika.abc.AbstractIncomingMessage]:
    assert broker.connection is not None
    channel = await broker.connection.channel()
    queue = await channel.get_queue(queue_name, ensure=False)
    received: list[aio_pika.abc.AbstractIncomingMessage] = []
    async with asyncio.timeout(10):
        while len(received) < count:
            message = await queue.get(fail=False)
            if message is None:
                await asyncio.sleep(0.02)
                continue
            await message.ack()
            received.append(message)
    assert await queue.get(fail=False) is None, "more messages than were published"
    await channel.close()
    return received


async def _underlay(broker: Broker) -> aiormq.Channel:
    assert broker.channel is not None
    channel = await broker.channel.get_underlay_channel()
    assert isinstance(channel, aiormq.Channel)
    return channel


async def test_a_confirmed_batch_arrives_whole_with_each_jobs_body_priority_and_headers(broker: Broker) -> None:
    jobs = [
        JobMessage(job_id=i, attempt=1 + i % 3, queue="default", kind="noop", priority=i % 10, request_id=f"r{i}")
        for i in range(1, 301)
    ]

    outcomes = await broker.publish_many([(job, 0.0) for job in jobs])

    assert outcomes == [True] * len(jobs)
    received = await _drain(broker, broker.topology.work_queue("default"), len(jobs))
    by_id = {JobMessage.decode(m.body).job_id: m for m in received}
    assert sorted(by_id) == [job.job_id for job in jobs]
    for job in jobs:
        message = by_id[job.job_id]
        assert JobMessage.decode(message.body) == job
        assert message.priority == job.priority
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert message.content_type == "application/json"
        assert message.headers == {"job_id": job.job_id, "attempt": job.attempt, "request_id": job.request_id}
    channel = await _underlay(broker)
    assert channel.message_id_delivery_tag == {} and not channel.confirmations


async def test_an_unroutable_message_is_reported_unconfirmed_and_the_rest_of_its_batch_is_not(broker: Broker) -> None:
    jobs = [JobMessage(job_id=i, attempt=1, queue="default", kind="noop") for i in range(1, 11)]
    jobs[4] = JobMessage(job_id=5, attempt=1, queue="no-such-queue", kind="noop")

    outcomes = await broker.publish_many([(job, 0.0) for job in jobs])

    assert outcomes == [i != 4 for i in range(10)]
    received = await _drain(broker, broker.topology.work_queue("default"), 9)
    assert sorted(JobMessage.decode(m.body).job_id for m in received) == [1, 2, 3, 4, 6, 7, 8, 9, 10]


async def test_batches_and_single_publishes_interleave_on_one_channel(broker: Broker) -> None:
    def job(i: int) -> JobMessage:
        return JobMessage(job_id=i, attempt=1, queue="default", kind="noop")

    singles = [broker.publish_one(job(i), 0.0) for i in range(1, 51)]
    batches = [broker.publish_many([(job(b * 100 + i), 0.0) for i in range(50)]) for b in range(1, 5)]

    results = await asyncio.gather(*singles, *batches)

    assert results[50:] == [[True] * 50] * 4
    received = await _drain(broker, broker.topology.work_queue("default"), 250)
    assert len({JobMessage.decode(m.body).job_id for m in received}) == 250


async def test_a_delayed_job_goes_through_the_delay_levels(broker: Broker, config: Config) -> None:
    job = JobMessage(job_id=7, attempt=2, queue="default", kind="noop")

    assert await broker.publish_many([(job, 2 * config.delay_unit_s)]) == [True]

    (message,) = await _drain(broker, broker.topology.work_queue("default"), 1)
    assert JobMessage.decode(message.body) == job
    assert message.headers.get("x-death"), "the message did not pass through a delay level"


async def test_publishing_on_a_closed_connection_reports_every_message_unconfirmed(broker: Broker) -> None:
    assert broker.connection is not None
    await broker.connection.close()
    jobs = [(JobMessage(job_id=i, attempt=1, queue="default", kind="noop"), 0.0) for i in range(1, 4)]

    assert await broker.publish_many(jobs) == [False, False, False]


async def test_a_channel_the_broker_closes_mid_batch_fails_the_rest_of_the_batch_at_once(broker: Broker) -> None:
    channel = await _underlay(broker)
    encoder = PublishEncoder(channel.number, channel.max_content_size, "application/json")

    def encoded(i: int, exchange: str) -> Encoded:
        body = JobMessage(job_id=i, attempt=1, queue="default", kind="noop").encode()
        frames = encoder.encode(exchange, "default", body, priority=0, headers={}, message_id=f"t-{i}")
        return Encoded(f"t-{i}", frames)

    jobs_exchange = broker.topology.jobs_exchange
    # a publish to a missing exchange makes the broker close the channel (404)
    batch = [encoded(1, jobs_exchange), encoded(2, "no-such-exchange"), encoded(3, jobs_exchange)]
    started = time.monotonic()

    outcomes = await publish_confirmed(channel, batch, timeout_s=10)

    assert outcomes[1:] == [False, False]
    assert time.monotonic() - started < 5, "waited for the timeout instead of failing with the channel"
    assert channel.is_closed


async def test_publishing_on_a_channel_closed_underneath_the_broker_reports_failure_instead_of_raising(
    broker: Broker,
) -> None:
    channel = await _underlay(broker)
    await channel.close()
    jobs = [(JobMessage(job_id=i, attempt=1, queue="default", kind="noop"), 0.0) for i in range(1, 4)]

    assert await broker.publish_many(jobs) == [False, False, False]


async def test_a_batch_that_cannot_get_the_channel_in_time_fails_and_leaves_the_channel_usable(broker: Broker) -> None:
    channel = await _underlay(broker)
    encoder = PublishEncoder(channel.number, channel.max_content_size, "application/json")
    body = JobMessage(job_id=1, attempt=1, queue="default", kind="noop").encode()
    frames = encoder.encode(broker.topology.jobs_exchange, "default", body, priority=0, headers={}, message_id="t-1")
    tag_before = channel.delivery_tag

    async with channel.lock:  # another publisher holds the channel past the deadline
        outcomes = await publish_confirmed(channel, [Encoded("t-1", frames)], timeout_s=0.2)

    assert outcomes == [False]
    assert channel.delivery_tag == tag_before and channel.message_id_delivery_tag == {}
    job = JobMessage(job_id=2, attempt=1, queue="default", kind="noop")
    assert await broker.publish_many([(job, 0.0)]) == [True]
    (message,) = await _drain(broker, broker.topology.work_queue("default"), 1)
    assert JobMessage.decode(message.body) == job


async def test_messages_the_broker_nacks_are_reported_unconfirmed(broker: Broker) -> None:
    assert broker.channel is not None and broker.connection is not None
    name = f"{broker.topology.namespace}.full"
    # a queue that holds one message and refuses (nacks) further publishes
    queue = await broker.channel.declare_queue(
        name, auto_delete=True, arguments={"x-max-length": 1, "x-overflow": "reject-publish"}
    )
    try:
        channel = await _underlay(broker)
        encoder = PublishEncoder(channel.number, channel.max_content_size, "application/json")
        batch = [
            Encoded(f"n-{i}", encoder.encode("", name, b"{}", priority=0, headers={}, message_id=f"n-{i}"))
            for i in range(3)
        ]

        outcomes = await publish_confirmed(channel, batch, timeout_s=10)

        assert outcomes == [True, False, False]
    finally:
        await queue.delete(if_unused=False, if_empty=False)


async def test_an_aiormq_without_the_batch_internals_still_publishes_every_job_with_confirms(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an aiormq release that renamed one of the channel internals confirmed_batch relies on
    monkeypatch.setattr(confirmed_batch, "CHANNEL_INTERNALS", (*confirmed_batch.CHANNEL_INTERNALS, "renamed_lock"))

    async def internals_touched(*_: object) -> list[bool]:
        raise AssertionError("the fallback must not use the aiormq internals")

    monkeypatch.setattr(amqp, "publish_confirmed", internals_touched)
    broker = Broker(config, name="fallback")
    await broker.connect()
    try:
        assert not broker.batch_frames
        jobs = [JobMessage(job_id=i, attempt=1, queue="default", kind="noop", priority=i % 10) for i in range(1, 201)]
        jobs[7] = JobMessage(job_id=8, attempt=1, queue="no-such-queue", kind="noop")

        outcomes = await broker.publish_many([(job, 0.0) for job in jobs])

        # confirmed where routed, refused where the broker returned the message: confirms, not fire and forget
        assert outcomes == [i != 7 for i in range(200)]
        received = await _drain(broker, broker.topology.work_queue("default"), 199)
        assert sorted(JobMessage.decode(m.body).job_id for m in received) == [i for i in range(1, 201) if i != 8]
        assert all(m.delivery_mode == aio_pika.DeliveryMode.PERSISTENT for m in received)
    finally:
        await broker.close()


async def test_the_aiormq_this_project_pins_has_every_internal_batch_publishing_uses(broker: Broker) -> None:
    assert confirmed_batch.missing_internals(await _underlay(broker)) == []
    assert broker.batch_frames
