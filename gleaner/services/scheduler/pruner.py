"""The pruner: finished jobs, dead letters and site minutes past retention; day-old idempotency keys, workers and
webhook delivery records."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg

from gleaner.shared.prune_statements import (
    PRUNE_DEAD_LETTERS,
    PRUNE_IDEMPOTENCY,
    PRUNE_JOB_HOURS,
    PRUNE_JOB_MINUTES,
    PRUNE_JOBS,
    PRUNE_SITE_MINUTES,
    PRUNE_WORKERS,
)

if TYPE_CHECKING:
    from gleaner.services.scheduler.duties import Duties

# a delivery's row only keeps the gateway replicas from delivering one event twice: a day is plenty
PRUNE_WEBHOOK_DELIVERIES = """
DELETE FROM webhook_deliveries WHERE (webhook_id, event_key) IN (
    SELECT webhook_id, event_key FROM webhook_deliveries WHERE created_at < now() - make_interval(secs => $1) LIMIT $2)
"""
BATCH = 5000
MAX_BATCHES = 100
DAY_S = 86_400.0
IDEMPOTENCY_TTL_S = DAY_S
WORKERS_TTL_S = DAY_S  # a worker not seen for a day is forgotten


def plan(retention_days: float) -> list[tuple[str, str, float]]:
    """(table, statement, age in seconds) to prune; a retention of 0 days keeps jobs and dead letters forever."""
    steps = [
        ("idempotency_keys", PRUNE_IDEMPOTENCY, IDEMPOTENCY_TTL_S),
        ("workers", PRUNE_WORKERS, WORKERS_TTL_S),
        ("webhook_deliveries", PRUNE_WEBHOOK_DELIVERIES, DAY_S),
    ]
    if retention_days > 0:
        age_s = retention_days * DAY_S
        steps = [
            ("jobs", PRUNE_JOBS, age_s),
            ("job_minutes", PRUNE_JOB_MINUTES, age_s),
            ("job_hours", PRUNE_JOB_HOURS, age_s),
            ("dead_letters", PRUNE_DEAD_LETTERS, age_s),
            ("site_minutes", PRUNE_SITE_MINUTES, age_s),
            *steps,
        ]
    return steps


async def delete_batched(pool: asyncpg.Pool, statement: str, age_s: float, batch: int = BATCH) -> int:
    """Delete in batches of `batch` rows (one short transaction each) until none is left."""
    total = 0
    for _ in range(MAX_BATCHES):
        status = await pool.execute(statement, age_s, batch)
        count = int(status.rsplit(" ", 1)[-1])
        total += count
        if count < batch:
            break
    return total


async def prune_pass(duties: Duties) -> dict[str, int]:
    removed: dict[str, int] = {}
    for table, statement, age_s in plan(duties.config.retention_days):
        removed[table] = await delete_batched(duties.pool, statement, age_s)
        if removed[table]:
            duties.metrics.pruned.labels(table).inc(removed[table])
    return removed
