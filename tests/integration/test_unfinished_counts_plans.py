"""The statements that count unfinished jobs (GET /queues, the scheduler's state gauges, GET /stats, the bench's drain
probe) read them from the partial indexes that hold them, whatever the statistics say, and count every one.

Since migration 0043 jobs_waiting holds the waiting rows only and jobs_leases the running ones: a count of both reads
each part from its own index. A statement asking for `state IN (..., 'running')` in one part would have no index that
holds all its rows and scan the whole table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
import orjson
import pytest

from bench.cases import UNFINISHED
from bench.plans import _nodes, _scan
from bench.scale import load_history
from gleaner.services.gateway.queues_api import COUNTS
from gleaner.services.scheduler.state_gauges import COUNT_UNFINISHED
from gleaner.shared.stats.store import JOB_GROUPS, ROLLUP_GROUPS

HISTORY = 100_000
QUEUED = 300
RUNNING = 40
# a count of a few hundred rows by partial index: their index pages and a heap page each, far from the table's pages
BUFFERS = 2 * (QUEUED + RUNNING) + 100

WAITING_AND_RUNNING = """
INSERT INTO jobs (kind, queue, state, lease_owner, lease_expires_at, attempt)
SELECT 'noop', 'default', CASE WHEN i <= $2 THEN 'running' ELSE 'queued' END,
       CASE WHEN i <= $2 THEN 'w' END, CASE WHEN i <= $2 THEN now() + interval '1 minute' END,
       CASE WHEN i <= $2 THEN 1 ELSE 0 END
FROM generate_series(1, $1::int + $2::int) AS i
"""

# name, statement, its parameters' types and values (the values bound in a custom plan, the types for a generic one)
STATEMENTS: list[tuple[str, str, Sequence[str], str]] = [
    ("queues", COUNTS, ["text"], "NULL"),
    ("queue", COUNTS, ["text"], "'default'"),
    ("gauges", COUNT_UNFINISHED, [], ""),
    ("stats", JOB_GROUPS, ["timestamptz", "text", "text"], "now() - interval '1 hour', NULL, NULL"),
    ("stats kind", JOB_GROUPS, ["timestamptz", "text", "text"], "now() - interval '1 hour', NULL, 'noop'"),
    ("rollups", ROLLUP_GROUPS, ["timestamptz", "text", "text"], "now() - interval '1 day', NULL, NULL"),
    ("drain", UNFINISHED, [], ""),
]


async def plan_of(connection: asyncpg.Connection, statement: str, types: Sequence[str], values: str, mode: str) -> Any:
    """The statement's plan as a prepared statement runs it under `mode`, with its buffers."""
    declared = f"({', '.join(types)})" if types else ""
    await connection.execute(f"SET plan_cache_mode = {mode}; PREPARE counted{declared} AS {statement}")
    try:
        executed = f"EXECUTE counted({values})" if values else "EXECUTE counted"
        raw = await connection.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {executed}")
    finally:
        await connection.execute("DEALLOCATE counted; RESET plan_cache_mode")
    # the pool decodes json itself (init_connection)
    return (orjson.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]


@pytest.mark.parametrize("mode", ["force_custom_plan", "force_generic_plan"])
async def test_counts_of_unfinished_jobs_read_the_waiting_and_the_running_indexes_not_the_table(
    db: asyncpg.Pool, mode: str
) -> None:
    # vacuumed and analyzed with nothing unfinished: the statistics say both partial indexes are empty
    await load_history(db, HISTORY, 7.0)
    await db.execute(WAITING_AND_RUNNING, QUEUED, RUNNING)
    async with db.acquire() as connection:
        for name, statement, types, values in STATEMENTS:
            plan = await plan_of(connection, statement, types, values, mode)
            scans = {scan for scan in map(_scan, _nodes(plan)) if scan}
            buffers = plan["Shared Hit Blocks"] + plan["Shared Read Blocks"]
            assert "Seq Scan on jobs" not in scans, (name, scans)
            assert buffers < BUFFERS, (name, buffers, scans)


async def test_the_counts_of_unfinished_jobs_hold_the_running_ones(db: asyncpg.Pool) -> None:
    await db.execute(WAITING_AND_RUNNING, QUEUED, RUNNING)
    [queue] = await db.fetch(COUNTS, "default")
    assert (queue["queued"], queue["running"], queue["scheduled"], queue["retrying"]) == (QUEUED, RUNNING, 0, 0)
    gauges = {(r["state"], r["queue"]): (r["n"], r["ready"]) for r in await db.fetch(COUNT_UNFINISHED)}
    assert gauges == {("queued", "default"): (QUEUED, QUEUED), ("running", "default"): (RUNNING, 0)}
    [stats] = await db.fetch(JOB_GROUPS, None, None, None)
    assert (stats["queued"], stats["running"]) == (QUEUED, RUNNING)
    await db.execute("UPDATE jobs SET state = 'succeeded', finished_at = now() WHERE state = 'queued'")
    assert await db.fetchval(UNFINISHED)
    await db.execute("UPDATE jobs SET state = 'succeeded', finished_at = now() WHERE state = 'running'")
    assert not await db.fetchval(UNFINISHED)
