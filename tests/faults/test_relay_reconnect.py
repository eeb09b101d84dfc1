"""The scheduler's relay after its broker connection was closed from the broker's side (on the private node)."""

from __future__ import annotations

import orjson
import pytest

from gleaner.services.scheduler import relay
from gleaner.services.scheduler.duties import Duties
from gleaner.shared.amqp import Broker
from gleaner.shared.config import Config
from gleaner.shared.metrics import Metrics
from tests.support.fault_rig import FaultRig
from tests.support.stack import eventually

pytestmark = pytest.mark.faults


async def test_the_relay_publishes_rows_committed_while_its_broker_connection_was_down(rig: FaultRig) -> None:
    async with rig.scene("relay") as scene:
        config = Config.from_env(scene.env)
        name = f"relay-{scene.database}"
        broker = Broker(config, name=name)
        await broker.connect()
        try:
            duties = Duties(config, scene.db, broker, Metrics("scheduler"))
            assert await rig.rabbit.drop_connection_named(f"gleaner-{name}") == 1
            job_id = await scene.db.fetchval(
                "INSERT INTO jobs (kind, queue, state, updated_at) "
                "VALUES ('noop', 'default', 'queued', now() - interval '1 minute') RETURNING id"
            )

            async def relayed() -> bool:
                await relay.relay_pass(duties)
                return bool(await scene.db.fetchval("SELECT enqueued_at IS NOT NULL FROM jobs WHERE id = $1", job_id))

            await eventually(relayed, timeout_s=30, interval_s=0.5, what="the relay to publish after reconnecting")
            assert broker.connection is not None
            channel = await broker.connection.channel()
            queue = await channel.get_queue(broker.topology.work_queue("default"), ensure=False)
            message = await queue.get(no_ack=True, fail=False)
            assert message is not None and orjson.loads(message.body)["id"] == job_id
        finally:
            await broker.close()
