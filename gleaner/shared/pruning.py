"""Pruning at a pace that leaves the hot path alone: the scheduler's pruner and `maintenance.prune` delete a table's
rows past their age in short batches (one transaction each), rest after each batch in proportion to the time it
took, and end a table's turn once its time budget is spent (so every table gets its turn; the next pass goes on).

Deleting a finished job costs PostgreSQL some 50-80 µs of CPU (its five cascaded child tables and the rollup
trigger), so pruning a backlog flat out takes one core of a small box away from the running jobs; resting four
times as long as each batch took keeps pruning to a fifth of one backend, whatever the load makes a batch cost.
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

# one batch of a given size: how many rows it deleted (fewer than the size: none is left)
Batch = Callable[[int], Awaitable[int]]
Progress = Callable[[int], Awaitable[None]]


class Database(Protocol):
    """A pool or a connection: what the batches run on."""

    async def execute(self, query: str, *args: object) -> str: ...
    async def fetchrow(self, query: str, *args: object) -> Row | None: ...


@dataclass(frozen=True, slots=True)
class Pace:
    """`batch` rows per statement; then a rest `pause_ratio` times as long as the statement took; a table's turn
    in a pass ends after `budget_s` seconds (0: when nothing is left)."""

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


async def delete_batched(batch: Batch, pace: Pace, progress: Progress | None = None) -> Swept:
    """Run `batch` until one deletes less than a batch or the budget is spent, resting after each."""
    total = 0
    deadline = pace.deadline(time.monotonic())
    while True:
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
        await asyncio.sleep(min(pace.rest_s(finished - started), deadline - finished))
