"""RabbitMQ stopped: submissions and schedule slots keep committing, the outage shows, all starts on its return."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from tests.faults.outcome import Outcome, since, until
from tests.faults.sizes import Sizes
from tests.faults.slots import settle_schedules
from tests.faults.workload import Submitter, create_schedules, record_jobs
from tests.support.fault_rig import FaultRig, Scene, get_status
from tests.support.stack import Service

NOW = "SELECT now()"
# schedules that fired at least $2 jobs that succeeded
FIRED_EACH = """
SELECT count(*) FROM (
    SELECT schedule_id FROM jobs WHERE schedule_id = ANY($1) AND state = 'succeeded'
    GROUP BY schedule_id HAVING count(*) >= $2
) AS fired
"""
FIRED_BETWEEN = "SELECT id FROM jobs WHERE scheduled_for BETWEEN $1 AND $2"
STARTED = "SELECT count(*) FROM jobs WHERE id = ANY($1) AND started_at IS NOT NULL"
LAST_START = "SELECT max(started_at) FROM jobs WHERE id = ANY($1)"
DEGRADED_PROMISE_S = 2.0
START_PROMISE_S = 5.0
HEALTHY_AGAIN_S = 15.0


async def broker_outage(rig: FaultRig, sizes: Sizes) -> Outcome:
    """RabbitMQ stopped while the gateway takes jobs and a 1 s schedule fires: the outage shows, nothing waits."""
    out = Outcome("RabbitMQ stopped")
    async with rig.scene("outage") as scene:
        services = list(await asyncio.gather(*(scene.start(command) for command in ("gateway", "scheduler", "worker"))))
        api = scene.api(services[0])
        schedules = await create_schedules(api, sizes.outage_schedules, interval_s=1)
        fired = await until(lambda: _fired_each(scene, schedules, 2), 20)
        out.check(fired is not None, "the schedules did not fire before the outage")
        rate = sizes.outage_submissions / sizes.broker_outage_s
        submitter = Submitter(services[0].url, rate, record_jobs(1)[0])
        window = await _outage(scene, out, submitter, services, sizes.broker_outage_s)
        await submitter.settle()
        refused = [a.status for a in submitter.answers if a.status != 202]
        out.check(not refused, f"submissions during the outage answered {refused} instead of 202")
        await _started_after_return(scene, out, submitter.acknowledged, window)
        healthy = since(window.returned, await until(lambda: _all_status(services, "/health", 200), 30))
        out.figures["healthy_again_s"] = healthy
        out.check(healthy is not None and healthy <= HEALTHY_AGAIN_S, f"/health not 200 again {healthy} s after")
        await settle_schedules(scene, out, api, schedules, interval_s=1)
    return out


async def _fired_each(scene: Scene, schedules: list[int], count: int) -> bool:
    return bool(await scene.db.fetchval(FIRED_EACH, schedules, count) == len(schedules))


@dataclass(frozen=True, slots=True)
class Window:
    """An outage by the database clock (`down`, `up`), and the monotonic time the broker returned."""

    down: datetime
    up: datetime
    returned: float


async def _outage(scene: Scene, out: Outcome, submitter: Submitter, services: list[Service], seconds: float) -> Window:
    """Stop the broker for `seconds` with submissions going on, and check what the services say meanwhile."""
    await scene.rig.rabbit.app_down()
    stopped = time.monotonic()
    down = await scene.db.fetchval(NOW)
    submitter.start()
    await _watch_degraded(out, services, stopped)
    await asyncio.sleep(max(0.0, stopped + seconds - time.monotonic()))  # the outage lasts this long
    submitter.stop()
    await scene.rig.rabbit.app_up()
    returned = time.monotonic()
    return Window(down, await scene.db.fetchval(NOW), returned)


async def _watch_degraded(out: Outcome, services: list[Service], stopped: float) -> None:
    """/health of every service 503 `degraded`, and the worker's /readyz 503, within 2 s of the outage."""
    watches = [_degraded(service.url + "/health") for service in services]
    worker = next(s for s in services if s.command == "worker")
    watches.append(_status(worker.url + "/readyz", 503))
    seen = await asyncio.gather(*(until(watch, 5, interval_s=0.05) for watch in watches))
    names = [f"{s.name} /health" for s in services] + [f"{worker.name} /readyz"]
    for name, when in zip(names, seen, strict=True):
        seconds = since(stopped, when)
        out.figures[f"{name} degraded after s"] = seconds
        out.check(seconds is not None and seconds <= DEGRADED_PROMISE_S, f"{name} not 503 within 2 s: {seconds}")


def _degraded(url: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        status, body = await get_status(url)
        return status == 503 and body.get("status") == "degraded"

    return check


def _status(url: str, wanted: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return (await get_status(url))[0] == wanted

    return check


async def _all_status(services: list[Service], path: str, wanted: int) -> bool:
    return all([(await get_status(s.url + path))[0] == wanted for s in services])


async def _started_after_return(scene: Scene, out: Outcome, submitted: list[int], window: Window) -> None:
    """Every job submitted or fired while the broker was down starts within 5 s of its return."""
    fired = await scene.db.fetch(FIRED_BETWEEN, window.down, window.up)
    ids = submitted + [row["id"] for row in fired]
    out.figures["fired_during_outage"] = len(fired)
    started = await until(lambda: _all_started(scene, ids), 30)
    out.check(started is not None, "jobs of the outage never started")
    latest = await scene.db.fetchval(LAST_START, ids)
    out.recovery_s = None if latest is None else round(max(0.0, (latest - window.up).total_seconds()), 2)
    late = out.recovery_s is None or out.recovery_s > START_PROMISE_S
    out.check(not late, f"the last job of the outage started {out.recovery_s} s after the broker came back")


async def _all_started(scene: Scene, ids: list[int]) -> bool:
    return bool(await scene.db.fetchval(STARTED, ids) == len(set(ids)))
