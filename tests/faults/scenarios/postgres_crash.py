"""PostgreSQL stopped at once under load: nothing acknowledged while it is down, every job final soon after."""

from __future__ import annotations

import asyncio
import time

from tests.faults.outcome import Outcome, all_final, since, until
from tests.faults.sizes import Sizes
from tests.faults.workload import Submitter, lease_s, ran_at_least, record_jobs, submit_batches
from tests.support.fault_rig import FaultRig, Scene

FINAL_AFTER_LEASE_S = 15.0


async def postgres_outage(rig: FaultRig, sizes: Sizes) -> Outcome:
    """An immediate stop of PostgreSQL under load: no 2xx while it is down, every job final within lease + 15 s."""
    out = Outcome("PostgreSQL crashed")
    async with rig.scene("crash") as scene:
        # enough handlers that the backlog of the outage drains within the promise at every size
        concurrency = str(max(32, sizes.postgres_jobs // 5))
        gateway, *_ = await asyncio.gather(
            scene.start("gateway"),
            scene.start("scheduler"),
            scene.start("worker", GLEANER_WORKER_CONCURRENCY=concurrency),
        )
        api = scene.api(gateway)
        jobs = record_jobs(sizes.postgres_jobs, "record.sleep", payload={"seconds": 0.2}, retry_base_s=0.2)
        ids = await submit_batches(api, jobs)
        submitter = Submitter(gateway.url, sizes.postgres_rate_per_s, record_jobs(1)[0])
        submitter.start()
        await until(lambda: ran_at_least(scene, min(20, len(ids))), 20)
        crashed, restarting, back = await _crash(scene, sizes.postgres_outage_s)
        submitter.stop()
        await submitter.settle()
        while_down = [a for a in submitter.answers if a.sent >= crashed and a.answered <= restarting]
        accepted = [a.status for a in while_down if 200 <= a.status < 300]
        out.figures["submissions_while_down"] = len(while_down)
        out.check(not accepted, f"{len(accepted)} of {len(while_down)} submissions got 2xx while PostgreSQL was down")
        acknowledged = ids + submitter.acknowledged
        promise = lease_s(scene) + FINAL_AFTER_LEASE_S
        out.recovery_s = since(back, await until(lambda: all_final(scene.db, acknowledged), promise + 30))
        late = out.recovery_s is None or out.recovery_s > promise
        out.check(not late, f"jobs final {out.recovery_s} s after PostgreSQL came back (promise: {promise} s)")
        await out.tally(scene.db, acknowledged)
    return out


async def _crash(scene: Scene, seconds: float) -> tuple[float, float, float]:
    """Crash the cluster for `seconds`; monotonic (crashed, restart begun, back). The scene's pool is renewed."""
    scene.close_db()
    await scene.rig.postgres.crash()
    crashed = time.monotonic()
    await asyncio.sleep(seconds)  # the outage lasts this long
    restarting = time.monotonic()
    await scene.rig.postgres.restart_after_crash()
    back = time.monotonic()
    await scene.reopen_db()
    return crashed, restarting, back
