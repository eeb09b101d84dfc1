"""Pruning at a pace that leaves the hot path alone: the scheduler's pruner and `maintenance.prune` delete a table's
rows past their age in short batches (one transaction each), rest after each batch in proportion to the time it
took, and end a table's turn once its time budget is spent (so every table gets its turn; the next pass goes on).

Deleting a finished job costs PostgreSQL some 50-80 µs of CPU (its five cascaded child tables and the rollup
trigger), so pruning a backlog flat out takes one core of a small box away from the running jobs; resting four
times as long as each batch took keeps pruning to a fifth of one backend, whatever the load makes a batch cost.

The rest is only taken while jobs wait: at that pace pruning removes some 1,300-4,100 rows a second on a 2-core box,
less than a busy system writes, so a history written faster for hours would outgrow it. Before each batch the pruner
asks whether a job has waited past its due time for longer than `WAIT_S` (the workers are saturated); if none has,
the workers have room to spare and the batch is followed by no rest. Pruning flat out then takes CPU from the
running jobs until some wait, and the rests come back: the pace follows the load instead of a fixed guess.
"""

from __future__ import annotations

import asyncio
import datetime
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from gleaner.shared.config import Config
from gleaner.shared.prune_statements import PRUNE_JOBS
from gleaner.shared.rows import Row

# a queued job waiting this much longer than its due time means the workers are saturated: the pruner rests
WAIT_S = 0.25
# Only `queued` rows (due when submitted): `jobs_state_id` reaches them in id order, the oldest first, so a backlog
# answers at its first entry and a flowing system has few queued rows to look at. Delayed (`scheduled`) and
# `retrying` rows are left out on purpose: a million jobs scheduled for tomorrow would make every probe read them all.
JOBS_WAITING = """
SELECT EXISTS (SELECT 1 FROM jobs WHERE state = 'queued' AND run_at < now() - make_interval(secs => $1))
"""

# one batch of a given size: how many rows it deleted (fewer than the size: none is left)
Batch = Callable[[int], Awaitable[int]]
# whether jobs are waiting now (the pruner rests only then)
Busy = Callable[[], Awaitable[bool]]
Progress = Callable[[int], Awaitable[None]]


class Database(Protocol):
    """A pool or a connection: what the batches run on."""

    async def execute(self, query: str, *args: object) -> str: ...
    async def fetchrow(self, query: str, *args: object) -> Row | None: ...
    async def fetchval(self, query: str, *args: object) -> object: ...


@dataclass(frozen=True, slots=True)
class Pace:
    """`batch` rows per statement; then, while jobs wait, a rest `pause_ratio` times as long as the statement took;
    a table's turn in a pass ends after `budget_s` seconds (0: when nothing is left)."""

    batch: int = 1000
    pause_ratio: float = 4.0
    budget_s: float = 0.0

    def rest_s(self, worked_s: float) -> float:
        return worked_s * self.pause_ratio

    @classmethod
    def of(cls, config: Config) -> Pace:
        return cls(config.prune_batch, config.prune_pause_ratio, config.prune_budget_s)

    def deadline(self, now: float) -> float:
        return now + self.budget_s if self.budget_s > 0 else math.inf


def jobs_waiting(db: Database) -> Busy:
    """The probe `delete_batched` asks before each batch: has a queued job waited past due longer than WAIT_S?"""

    async def busy() -> bool:
        return bool(await db.fetchval(JOBS_WAITING, WAIT_S))

    return busy


def batches(db: Database, statement: str, age_s: float) -> Batch:
    """The batches of a statement of `prune_statements`: PRUNE_JOBS goes on from the finish time where the batch
    before it stopped; the others take ($1 age in seconds, $2 batch size)."""
    reached: datetime.datetime | None = None

    async def jobs(size: int) -> int:
        nonlocal reached
        row = await db.fetchrow(PRUNE_JOBS, age_s, size, reached)
        assert row is not None  # an aggregate answers one row
        reached = row["reached"] or reached
        return int(row["deleted"])

    async def plain(size: int) -> int:
        status = await db.execute(statement, age_s, size)
        return int(status.rsplit(" ", 1)[-1])

    return jobs if statement == PRUNE_JOBS else plain


@dataclass(frozen=True, slots=True)
class Swept:
    """What a table's turn deleted, and whether it left rows past their age (its budget ran out first)."""

    rows: int
    more: bool


async def delete_batched(batch: Batch, pace: Pace, busy: Busy, progress: Progress | None = None) -> Swept:
    """Run `batch` until one deletes less than a batch or the budget is spent, resting after each while `busy`."""
    total = 0
    deadline = pace.deadline(time.monotonic())
    while True:
        rest = pace.pause_ratio > 0 and await busy()
        started = time.monotonic()
        count = await batch(pace.batch)
        total += count
        if progress is not None:
            await progress(count)
        finished = time.monotonic()
        if count < pace.batch:
            return Swept(total, more=False)
        if finished >= deadline:
            return Swept(total, more=True)
        if rest:
            await asyncio.sleep(min(pace.rest_s(finished - started), deadline - finished))
