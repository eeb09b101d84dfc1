"""Maintenance kinds run by the default maintenance schedules: prune old jobs and results, refresh statistics,
requeue failed jobs automatically (a default schedule, off until enabled).

Each deletes in batches (one short transaction per batch) so it never holds long locks on busy tables.
"""

from __future__ import annotations

from typing import Any

from services.worker.context import JobContext
from shared.errors import PermanentError
from shared.prune_statements import PRUNE_DEAD_LETTERS, PRUNE_IDEMPOTENCY, PRUNE_JOBS, PRUNE_SITE_MINUTES
from shared.requeue import AUTO_REQUEUE

DEFAULT_BATCH = 5000

PRUNE_RESULTS = """
UPDATE jobs SET result = NULL, progress = NULL WHERE id IN (
    SELECT id FROM jobs
    WHERE finished_at < now() - make_interval(secs => $1) AND (result IS NOT NULL OR progress IS NOT NULL)
    LIMIT $2)
"""
# bodies no scrape result refers to any more (their jobs were pruned); a day old at least, so a fetch storing
# the same content right now keeps its body
PRUNE_BODIES = """
DELETE FROM scrape_bodies WHERE content_hash IN (
    SELECT b.content_hash FROM scrape_bodies AS b
    WHERE b.created_at < now() - make_interval(secs => $1)
      AND NOT EXISTS (SELECT 1 FROM scrape_results AS r WHERE r.body_hash = b.content_hash)
    LIMIT $2)
"""
ANALYZED = ("jobs", "job_attempts", "schedules", "dead_letters", "scrape_results")
DAY_S = 86_400.0


async def prune(ctx: JobContext) -> Any:
    """Delete finished jobs (with their attempts and scrape results), dead letters and per-minute site
    counters older than `retention_days` (default 30), idempotency keys older than `idempotency_hours`
    (default 24), and page bodies no result refers to any more."""
    days = _number(ctx.job.payload, "retention_days", 30.0)
    hours = _number(ctx.job.payload, "idempotency_hours", 24.0)
    batch = int(_number(ctx.job.payload, "batch", DEFAULT_BATCH))
    return {
        "jobs": await _batched(ctx, PRUNE_JOBS, days * DAY_S, batch),
        "dead_letters": await _batched(ctx, PRUNE_DEAD_LETTERS, days * DAY_S, batch),
        "site_minutes": await _batched(ctx, PRUNE_SITE_MINUTES, days * DAY_S, batch),
        "idempotency_keys": await _batched(ctx, PRUNE_IDEMPOTENCY, hours * 3600, batch),
        "scrape_bodies": await _batched(ctx, PRUNE_BODIES, DAY_S, batch),
    }


async def prune_results(ctx: JobContext) -> Any:
    """Drop `result` and `progress` of jobs finished more than `retention_days` (default 7) ago; the rows stay."""
    days = _number(ctx.job.payload, "retention_days", 7.0)
    batch = int(_number(ctx.job.payload, "batch", DEFAULT_BATCH))
    return {"jobs": await _batched(ctx, PRUNE_RESULTS, days * DAY_S, batch)}


async def analyze(ctx: JobContext) -> Any:
    """Refresh the planner statistics of Gleaner's busy tables."""
    for table in ANALYZED:
        await ctx.db.execute(f"ANALYZE {table}")
    return {"analyzed": list(ANALYZED)}


async def _batched(ctx: JobContext, statement: str, age_s: float, batch: int) -> int:
    total = 0
    while True:
        status: str = await ctx.db.execute(statement, age_s, batch)
        count = int(status.rsplit(" ", 1)[-1])
        total += count
        if count < batch:
            return total
        await ctx.progress({"rows": total})


async def requeue_failed(ctx: JobContext) -> Any:
    """Give failed jobs that used up their attempts another round of `max_attempts` (seed: "process-dlq").

    Only jobs that failed at least `min_age_s` ago (default 3600: time for the cause to be fixed) and have
    had fewer than `rounds` rounds in all (default 3, so a job that keeps failing stops coming back);
    `kind` and `queue` narrow it, `limit` caps one run (default 1000). The relay publishes the rows.
    """
    payload = ctx.job.payload if isinstance(ctx.job.payload, dict) else {}
    rounds = _number(payload, "rounds", 3.0)
    min_age_s = _number(payload, "min_age_s", 3600.0)
    limit = int(_number(payload, "limit", 1000.0))
    kind, queue = _text(payload, "kind"), _text(payload, "queue")
    rows = await ctx.db.fetch(AUTO_REQUEUE, int(rounds), min_age_s, kind, queue, limit)
    return {"requeued": len(rows), "job_ids": [r["id"] for r in rows][:100]}


def _text(payload: dict[str, Any], name: str) -> str | None:
    value = payload.get(name)
    if value is not None and not isinstance(value, str):
        raise PermanentError(f"payload.{name} must be a string")
    return value


def _number(payload: Any, name: str, default: float) -> float:
    value = payload.get(name, default) if isinstance(payload, dict) else default
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise PermanentError(f"payload.{name} must be a positive number")
    return float(value)


def register(registry: Any) -> None:
    registry.add("maintenance.prune", prune)
    registry.add("maintenance.prune_results", prune_results)
    registry.add("maintenance.analyze", analyze)
    registry.add("maintenance.requeue_failed", requeue_failed)
