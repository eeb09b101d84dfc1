"""A plain run, no fault: every job runs exactly once and PostgreSQL detects no deadlock."""

from __future__ import annotations

import asyncio
import time

from tests.faults.outcome import Outcome, all_final, until
from tests.faults.sizes import Sizes
from tests.faults.workload import record_jobs, submit_batches
from tests.support.fault_rig import FaultRig, Scene

DEADLOCKS = "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
OTHER_BACKENDS = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"


async def plain_run(rig: FaultRig, sizes: Sizes) -> Outcome:
    """Many noop jobs, two workers, no fault: every job runs exactly once and PostgreSQL sees no deadlock."""
    out = Outcome("plain run")
    async with rig.scene("plain") as scene:
        workers = [
            scene.start("worker", f"worker-{n}", GLEANER_WORKER_CONCURRENCY="64") for n in range(sizes.plain_workers)
        ]
        gateway, *_ = await asyncio.gather(scene.start("gateway"), scene.start("scheduler"), *workers)
        before = await scene.db.fetchval(DEADLOCKS)
        started = time.monotonic()
        jobs = record_jobs(sizes.plain_jobs)
        for n, job in enumerate(jobs):
            job["priority"] = n % 10  # deliveries out of id order, as real traffic has them
        ids = await submit_batches(scene.api(gateway), jobs)
        drained = await until(lambda: all_final(scene.db, ids), 60 + sizes.plain_jobs / 100, interval_s=0.5)
        out.check(drained is not None, "the jobs did not all finish")
        if drained is not None:
            out.figures["jobs_per_s"] = round(len(ids) / (drained - started))
        await _stop_and_count_deadlocks(scene, out, before)
        await out.tally(scene.db, ids)
        out.check(out.re_executed == 0, f"{out.re_executed} re-executions without any fault")
    return out


async def _stop_and_count_deadlocks(scene: Scene, out: Outcome, before: int) -> None:
    """Stop the services (their backends flush statistics as they exit), then read both deadlock records."""
    scene.stack.stop_all()
    await until(lambda: _no_other_backends(scene), 10)
    counted = await scene.db.fetchval(DEADLOCKS) - before
    logged = scene.rig.postgres.log_count(scene.database, "deadlock detected")
    out.figures["deadlocks"] = max(counted, logged)
    out.check(counted == logged == 0, f"PostgreSQL detected deadlocks: {counted} counted, {logged} logged")


async def _no_other_backends(scene: Scene) -> bool:
    return bool(await scene.db.fetchval(OTHER_BACKENDS) == 0)
