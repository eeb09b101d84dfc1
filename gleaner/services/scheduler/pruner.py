"""The pruner: finished jobs, dead letters and site minutes past retention; day-old idempotency keys, workers and
webhook delivery records."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import Counter

from gleaner.shared.prune_statements import (
    PRUNE_DEAD_LETTERS,
    PRUNE_IDEMPOTENCY,
    PRUNE_JOB_HOURS,
    PRUNE_JOB_MINUTES,
    PRUNE_JOBS,
    PRUNE_SITE_MINUTES,
    PRUNE_WORKERS,
)
from gleaner.shared.pruning import Pace, Swept, batches, delete_batched, jobs_waiting

if TYPE_CHECKING:
    from gleaner.services.scheduler.duties import Duties

# a delivery's row only keeps the gateway replicas from delivering one event twice: a day is plenty
PRUNE_WEBHOOK_DELIVERIES = """
DELETE FROM webhook_deliveries WHERE (webhook_id, event_key) IN (
    SELECT webhook_id, event_key FROM webhook_deliveries WHERE created_at < now() - make_interval(secs => $1) LIMIT $2)
"""
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


async def prune_pass(duties: Duties) -> dict[str, Swept]:
    """Each table's turn, gently (see `gleaner.shared.pruning`); what each deleted."""
    pace = Pace.of(duties.config)
    busy = jobs_waiting(duties.pool)
    swept: dict[str, Swept] = {}
    for table, statement, age_s in plan(duties.config.retention_days):
        counter = duties.metrics.pruned.labels(table)

        async def counted(rows: int, counter: Counter = counter) -> None:
            counter.inc(rows)

        swept[table] = await delete_batched(batches(duties.pool, statement, age_s), pace, busy, counted)
    return swept


async def prune_step(duties: Duties) -> float:
    """A pass; how long to wait for the next one: none when a table's turn ended with rows past their age left."""
    swept = await prune_pass(duties)
    return 0.0 if any(s.more for s in swept.values()) else duties.config.prune_interval_s
