"""The scheduler leader killed again and again: no slot fired twice or skipped."""

from __future__ import annotations

import asyncio
import time

from tests.faults.outcome import Outcome, since, until
from tests.faults.sizes import Sizes
from tests.faults.slots import settle_schedules
from tests.faults.workload import create_schedules, leaders
from tests.support.fault_rig import FaultRig, Scene
from tests.support.stack import Service

LEADER_INTERVAL_S = 2.0
TAKEOVER_TIMEOUT_S = 10.0


async def leader_kills(rig: FaultRig, sizes: Sizes) -> Outcome:
    """kill -9 of the scheduler leader, repeatedly, three schedulers running: no slot fired twice or skipped."""
    out = Outcome("scheduler leader kill -9")
    async with rig.scene("leader") as scene:
        gateway, _, *schedulers = await asyncio.gather(
            scene.start("gateway"),
            scene.start("worker"),
            *(scene.start("scheduler", f"scheduler-{n}") for n in range(3)),
        )
        api = scene.api(gateway)
        schedules = await create_schedules(api, sizes.leader_schedules, interval_s=LEADER_INTERVAL_S)
        takeovers = []
        for kill in range(sizes.leader_kills):
            await asyncio.sleep(LEADER_INTERVAL_S)  # the leader fires a slot first
            takeover = await _kill_leader(scene, schedulers, kill)
            out.check(takeover is not None, f"no new leader within {TAKEOVER_TIMEOUT_S} s of kill {kill + 1}")
            takeovers.append(takeover)
        await asyncio.sleep(LEADER_INTERVAL_S)  # the last leader fires a slot too
        measured = [t for t in takeovers if t is not None]
        out.recovery_s = max(measured, default=None)
        out.figures["takeovers_s"] = measured
        await settle_schedules(scene, out, api, schedules, interval_s=LEADER_INTERVAL_S)
        out.check(out.re_executed == 0, f"{out.re_executed} fired jobs ran twice")
    return out


async def _kill_leader(scene: Scene, schedulers: list[Service], kill: int) -> float | None:
    """Kill the one leader, time the takeover, and start a replacement so three run again."""
    await until(lambda: _one_leader(schedulers), TAKEOVER_TIMEOUT_S, interval_s=0.05)
    current = await leaders(schedulers)
    if len(current) != 1:
        return None
    leader = current[0]
    leader.kill()
    killed = time.monotonic()
    schedulers.remove(leader)
    took = since(killed, await until(lambda: _one_leader(schedulers), TAKEOVER_TIMEOUT_S, interval_s=0.05))
    schedulers.append(await scene.start("scheduler", name=f"scheduler-r{kill}"))
    return took


async def _one_leader(schedulers: list[Service]) -> bool:
    return len(await leaders(schedulers)) == 1
