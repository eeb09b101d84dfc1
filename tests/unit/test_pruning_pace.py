"""The pruning pace (pure loop over fake batches): rests in proportion to each batch while jobs wait, ends a turn at
its budget."""

from __future__ import annotations

import asyncio
import time

from gleaner.shared.pruning import Pace, Swept, delete_batched

WORK_S = 0.02


async def waiting() -> bool:
    return True


async def nothing_waits() -> bool:
    return False


class FakeTable:
    """Batches that each take WORK_S and delete a full batch until `rows` are gone; when each ran."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.runs: list[tuple[float, float]] = []

    async def batch(self, size: int) -> int:
        started = time.monotonic()
        await asyncio.sleep(WORK_S)
        deleted = min(size, self.rows)
        self.rows -= deleted
        self.runs.append((started, time.monotonic()))
        return deleted


async def test_the_pruner_rests_after_each_batch_in_proportion_to_the_time_it_took() -> None:
    table = FakeTable(rows=25)
    swept = await delete_batched(table.batch, Pace(batch=10, pause_ratio=3, budget_s=0), waiting)
    assert swept == Swept(25, more=False)
    gaps = [later[0] - earlier[1] for earlier, later in zip(table.runs, table.runs[1:], strict=False)]
    works = [end - start for start, end in table.runs]
    assert len(gaps) == 2
    assert all(gap >= 3 * work * 0.9 for gap, work in zip(gaps, works, strict=False)), (gaps, works)


async def test_a_table_s_turn_ends_at_its_budget_and_says_rows_are_left() -> None:
    table = FakeTable(rows=1_000_000)
    started = time.monotonic()
    swept = await delete_batched(table.batch, Pace(batch=10, pause_ratio=1, budget_s=0.2), waiting)
    assert swept.more and 0 < swept.rows < 1_000_000
    assert time.monotonic() - started < 0.2 + WORK_S + 0.5  # the last rest is cut to the budget
    assert table.rows == 1_000_000 - swept.rows


async def test_no_rest_and_no_budget_prunes_until_a_batch_comes_back_short() -> None:
    table = FakeTable(rows=95)
    assert await delete_batched(table.batch, Pace(batch=10, pause_ratio=0, budget_s=0), waiting) == Swept(
        95, more=False
    )
    assert len(table.runs) == 10


async def test_with_no_job_waiting_the_pruner_does_not_rest_and_it_asks_before_each_batch() -> None:
    asked: list[bool] = []

    async def waits_at_first() -> bool:
        asked.append(len(asked) == 0)
        return asked[-1]

    table = FakeTable(rows=35)
    swept = await delete_batched(table.batch, Pace(batch=10, pause_ratio=50, budget_s=0), waits_at_first)
    assert swept == Swept(35, more=False)
    gaps = [later[0] - earlier[1] for earlier, later in zip(table.runs, table.runs[1:], strict=False)]
    assert len(asked) == 4
    assert gaps[0] >= 50 * WORK_S * 0.9  # jobs waited before the first batch: it rested
    assert all(gap < 10 * WORK_S for gap in gaps[1:]), gaps  # then none waited: no rest (a rest would be a second)
