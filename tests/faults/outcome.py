"""What a fault scenario observed: the table figures (acknowledged, finished, lost, ...) and every broken promise."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field

import asyncpg

from tests.support import recording

FINAL = ("succeeded", "partial", "failed", "cancelled")

FINAL_IDS = "SELECT id FROM jobs WHERE id = ANY($1::bigint[]) AND state = ANY($2::text[])"
COUNT_FINAL = "SELECT count(*) FROM jobs WHERE id = ANY($1::bigint[]) AND state = ANY($2::text[])"
FAILED = "SELECT count(*) FROM jobs WHERE id = ANY($1::bigint[]) AND state = 'failed'"
# attempts the reaper ended because their lease ran out: where re-executions came from
LEASES_EXPIRED = "SELECT count(*) FROM job_attempts WHERE error_class = 'lease_expired'"
# a job that reached a successful outcome in two attempts ran to completion twice
COMPLETED_TWICE = """
SELECT count(*) FROM (
    SELECT job_id FROM job_attempts WHERE outcome IN ('succeeded', 'partial') GROUP BY job_id HAVING count(*) > 1
) AS twice
"""


@dataclass(slots=True)
class Outcome:
    """One scenario's figures and the checks it failed (empty `problems`: every promise held)."""

    scenario: str
    acknowledged: int = 0
    finished: int = 0
    lost: int = 0
    re_executed: int = 0
    completed_twice: int = 0
    recovery_s: float | None = None
    figures: dict[str, object] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def check(self, holds: bool, problem: str) -> bool:
        if not holds:
            self.problems.append(problem)
        return holds

    async def tally(self, db: asyncpg.Pool, acknowledged: Collection[int]) -> None:
        """Count the acknowledged jobs, which of them finished, and re-executions; 0 lost and 0 twice are checked."""
        ids = sorted(set(acknowledged))
        final = {row["id"] for row in await db.fetch(FINAL_IDS, ids, list(FINAL))}
        runs = await recording.executions(db)
        self.acknowledged, self.finished = len(ids), len(final)
        self.lost = len(ids) - len(final)
        self.re_executed = runs.repeated
        self.completed_twice = await db.fetchval(COMPLETED_TWICE)
        failed = await db.fetchval(FAILED, ids)
        self.figures["leases_expired"] = await db.fetchval(LEASES_EXPIRED)
        self.check(self.lost == 0, f"{self.lost} acknowledged jobs never finished")
        self.check(self.completed_twice == 0, f"{self.completed_twice} jobs completed twice")
        self.check(failed == 0, f"{failed} jobs that would succeed ended failed")

    def report(self) -> str:
        lines = [f"{self.scenario}: {'ok' if not self.problems else 'FAILED'}", f"  {self.row()}"]
        lines += [f"  {name} = {value}" for name, value in self.figures.items()]
        lines += [f"  - {problem}" for problem in self.problems]
        return "\n".join(lines)

    def row(self) -> str:
        recovery = "-" if self.recovery_s is None else f"{self.recovery_s:.2f}"
        return (
            f"acknowledged {self.acknowledged}, finished {self.finished}, lost {self.lost}, "
            f"re-executed {self.re_executed}, completed twice {self.completed_twice}, recovery {recovery} s"
        )


async def until(check: Callable[[], Awaitable[object]], timeout_s: float, interval_s: float = 0.1) -> float | None:
    """Poll `check` until it is truthy: the monotonic time it first was, or None after `timeout_s`.

    No exception on timeout: the scenario records the broken promise and goes on measuring.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        if await check():
            return time.monotonic()
        if time.monotonic() > deadline:
            return None
        await asyncio.sleep(interval_s)


def since(start: float, end: float | None) -> float | None:
    """Seconds from `start` to `end` (never negative), or None when `end` never came."""
    return None if end is None else round(max(0.0, end - start), 2)


async def all_final(db: asyncpg.Pool, ids: Collection[int]) -> bool:
    """Every job of `ids` is in a final state."""
    unique = sorted(set(ids))
    return bool(await db.fetchval(COUNT_FINAL, unique, list(FINAL)) == len(unique))
