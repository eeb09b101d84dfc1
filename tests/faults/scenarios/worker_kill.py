"""A worker killed and restarted under the same id: the dead start's jobs recover within the lease."""

from __future__ import annotations

import asyncio
import time

from tests.faults.outcome import Outcome, all_final, since, until
from tests.faults.sizes import Sizes
from tests.faults.workload import lease_s, ran_at_least, record_jobs, submit_batches
from tests.support.fault_rig import FaultRig

RECOVERED_AFTER_LEASE_S = 5.0
RUNNING = "SELECT id FROM jobs WHERE state = 'running'"


async def worker_kill(rig: FaultRig, sizes: Sizes) -> Outcome:
    """kill -9 of a worker, restarted at once under the same GLEANER_WORKER_ID and kept busy: the dead start's
    jobs recover within lease + 5 s (the new start's heartbeat must not keep their leases alive)."""
    out = Outcome("worker kill -9")
    count = sizes.kill_jobs
    worker_env = {"GLEANER_WORKER_ID": "victim", "GLEANER_WORKER_CONCURRENCY": str(2 * count)}
    async with rig.scene("kill") as scene:
        gateway, _, victim = await asyncio.gather(
            scene.start("gateway"), scene.start("scheduler"), scene.start("worker", "victim", **worker_env)
        )
        api = scene.api(gateway)
        ids = await submit_batches(api, record_jobs(count, "record.sleep", payload={"seconds": 2.0}, retry_base_s=0.2))
        await until(lambda: ran_at_least(scene, count // 2), 20)
        in_flight = [row["id"] for row in await scene.db.fetch(RUNNING)]
        victim.kill()
        killed = time.monotonic()
        await scene.start("worker", name="victim", **worker_env)
        promise = lease_s(scene) + RECOVERED_AFTER_LEASE_S
        busy = record_jobs(max(1, count // 2), "record.sleep", payload={"seconds": promise + 2})
        ids += await submit_batches(api, busy)
        out.figures["in_flight_at_kill"] = len(in_flight)
        out.recovery_s = since(killed, await until(lambda: all_final(scene.db, in_flight), promise + 30))
        late = out.recovery_s is None or out.recovery_s > promise
        out.check(
            not late, f"the killed worker's jobs recovered {out.recovery_s} s after the kill (promise: {promise})"
        )
        await until(lambda: all_final(scene.db, ids), 30)
        await out.tally(scene.db, ids)
    return out
