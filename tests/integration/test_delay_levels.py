"""The binary TTL delay levels deliver each delay on time, whatever was published before it."""

from __future__ import annotations

import asyncio
import time

import aio_pika

from gleaner.shared.amqp import Broker
from gleaner.shared.config import Config
from gleaner.shared.messages import JobMessage


async def test_a_one_unit_delay_is_not_held_behind_a_sixty_unit_one(config: Config) -> None:
    broker = Broker(config, name="test")
    await broker.connect()
    try:
        unit = config.delay_unit_s
        published_at = time.monotonic()
        # the long one first: a FIFO delay queue would hold the short one behind it
        await broker.publish_one(JobMessage(job_id=1, attempt=1, queue="default", kind="noop"), 60 * unit)
        await broker.publish_one(JobMessage(job_id=2, attempt=1, queue="default", kind="noop"), 1 * unit)
        await broker.publish_one(JobMessage(job_id=3, attempt=1, queue="default", kind="noop"), 13 * unit)
        await broker.publish_one(JobMessage(job_id=4, attempt=1, queue="default", kind="noop"), 5 * unit)
        arrivals = await _collect(broker, config, count=4, timeout_s=60 * unit + 5)
    finally:
        await broker.close()
    due = {1: 60 * unit, 2: 1 * unit, 3: 13 * unit, 4: 5 * unit}
    for job_id, arrived in arrivals.items():
        late = arrived - published_at - due[job_id]
        assert -0.01 <= late <= unit, f"job {job_id} arrived {late:+.3f}s from due"
    assert sorted(arrivals, key=arrivals.__getitem__) == [2, 4, 3, 1]


async def _collect(broker: Broker, config: Config, count: int, timeout_s: float) -> dict[int, float]:
    assert broker.connection is not None
    channel = await broker.connection.channel()
    queue = await channel.get_queue(broker.topology.work_queue("default"), ensure=False)
    arrivals: dict[int, float] = {}
    async with queue.iterator() as messages:
        async with asyncio.timeout(timeout_s):
            async for message in messages:
                async with message.process():
                    arrivals[JobMessage.decode(message.body).job_id] = time.monotonic()
                if len(arrivals) == count:
                    break
    await channel.close()
    return arrivals


async def test_the_topology_declares_twice_without_conflict(config: Config) -> None:
    for _ in range(2):
        broker = Broker(config, name="test")
        await broker.connect()
        await broker.close()
    connection = await aio_pika.connect(config.amqp_url)
    channel = await connection.channel()
    queue = await channel.declare_queue(Broker(config, name="x").topology.work_queue("default"), passive=True)
    assert queue.declaration_result.message_count == 0
    await connection.close()
