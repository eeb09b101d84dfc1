"""Schedule slots after a fault: pause the scheduler, let the jobs finish, count slots fired twice or skipped."""

from __future__ import annotations

from tests.faults.outcome import FINAL, Outcome, until
from tests.support.fault_rig import Scene
from tests.support.stack import Api

ALL_JOBS = "SELECT id FROM jobs"
UNFINISHED = "SELECT count(*) FROM jobs WHERE state <> ALL($1::text[])"
SLOTS = """
SELECT schedule_id, count(*) AS jobs, count(DISTINCT scheduled_for) AS slots,
       EXTRACT(EPOCH FROM max(scheduled_for) - min(scheduled_for))::float8 AS span_s
FROM jobs WHERE schedule_id = ANY($1) GROUP BY schedule_id
"""


async def settle_schedules(scene: Scene, out: Outcome, api: Api, schedules: list[int], interval_s: float) -> None:
    """Pause the scheduler, let every job finish, then check each schedule's slots: none twice, none skipped."""
    status, _ = await api.request("POST", "/scheduler/pause")
    assert status == 200, status
    await until(lambda: nothing_unfinished(scene), 30)
    await out.tally(scene.db, [row["id"] for row in await scene.db.fetch(ALL_JOBS)])
    skipped = await skipped_slots(scene, schedules, interval_s)
    out.figures["skipped_slots"] = skipped
    out.check(skipped == 0, f"{skipped} schedule slots have no job")


async def nothing_unfinished(scene: Scene) -> bool:
    return not await scene.db.fetchval(UNFINISHED, list(FINAL))


async def skipped_slots(scene: Scene, schedules: list[int], interval_s: float) -> int:
    """Slots between each schedule's first and last job that have no job (or a second one)."""
    skipped = 0
    for row in await scene.db.fetch(SLOTS, schedules):
        expected = round(row["span_s"] / interval_s) + 1
        skipped += abs(expected - row["slots"]) + (row["jobs"] - row["slots"])
    return skipped
