"""The broker closes every connection while jobs run: none runs again, all finish soon after the reconnect."""

from __future__ import annotations

import asyncio

from tests.faults.outcome import Outcome, all_final, since, until
from tests.faults.sizes import Sizes
from tests.faults.workload import ran_at_least, record_jobs, submit_batches
from tests.support.fault_rig import FaultRig, metric
from tests.support.stack import Service

RECONNECTS = "gleaner_amqp_reconnects_total"
DROP_SLEEP_S = 5.0
RECONNECT_PROMISE_S = 5.0


async def connection_drop(rig: FaultRig, sizes: Sizes) -> Outcome:
    """Connections closed by the broker while jobs run: none runs again, all finish within 5 s of the reconnect."""
    out = Outcome("AMQP connection drop")
    count = sizes.drop_in_flight
    async with rig.scene("drop") as scene:
        gateway, _, worker = await asyncio.gather(
            scene.start("gateway"),
            scene.start("scheduler"),
            scene.start("worker", GLEANER_WORKER_CONCURRENCY=str(count + 8)),
        )
        api = scene.api(gateway)
        ids = await submit_batches(api, record_jobs(count, "record.sleep", payload={"seconds": DROP_SLEEP_S}))
        out.check(await until(lambda: ran_at_least(scene, count), 30) is not None, f"{count} jobs never ran at once")
        out.figures["in_flight"] = (await scene.executions()).runs
        reconnects = await metric(worker, RECONNECTS)
        await rig.rabbit.drop_connections()
        reconnected = await until(lambda: _reconnected(worker, reconnects), 60)
        out.check(reconnected is not None, "the worker never reconnected")
        if reconnected is not None:
            out.recovery_s = since(reconnected, await until(lambda: all_final(scene.db, ids), 30))
            late = out.recovery_s is None or out.recovery_s > RECONNECT_PROMISE_S
            out.check(not late, f"in-flight jobs finished {out.recovery_s} s after the reconnect (promise: 5 s)")
        after = await api.submit(**record_jobs(1)[0])
        ran = await until(lambda: all_final(scene.db, [after["id"]]), 15)
        out.check(ran is not None, "a job submitted after the reconnect never finished")
        await out.tally(scene.db, [*ids, after["id"]])
        out.check(out.re_executed == 0, f"{out.re_executed} jobs ran again after the connection drop")
    return out


async def _reconnected(worker: Service, before: float) -> bool:
    return await metric(worker, RECONNECTS) > before
