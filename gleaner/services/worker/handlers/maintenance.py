"""Maintenance kinds run by the default maintenance schedules: prune old jobs and results, refresh statistics,
requeue failed jobs automatically and keep a report (default schedules, off until enabled).

Each deletes in batches (one short transaction per batch) so it never holds long locks on busy tables. Only `admin`
may submit them (they are registered privileged); the gateway checks their payloads at submit against the kind's
schema, and the worker checks again before the handler acts, so a payload that slipped past (an old schedule, a
message sent by hand) fails the job permanently instead of deleting anything. With no `retention_days` in the payload
the configured retention governs (GLEANER_RETENTION_DAYS, GLEANER_RESULT_RETENTION_DAYS; 0 keeps forever).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any

from gleaner.handlers import Handler, Registry
from gleaner.job_context import JobContext
from gleaner.json_types import JsonObject, JsonObjectInput
from gleaner.shared.config import MAX_RETENTION_DAYS, QUEUE_NAME, Config
from gleaner.shared.kind_rules import KIND_NAME
from gleaner.shared.prune_statements import PRUNE_DEAD_LETTERS, PRUNE_IDEMPOTENCY, PRUNE_JOBS, PRUNE_SITE_MINUTES
from gleaner.shared.pruning import Pace, batches, delete_batched, jobs_waiting
from gleaner.shared.requeue import AUTO_REQUEUE
from gleaner.shared.stats.report import DEFAULT_HOURS, MAX_HOURS, build_report

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
MAX_BATCH = 100_000
MAX_REQUEUE = 10_000

# the payload of each kind: every member optional (null: its default), nothing else allowed
AGED = {"jobs": PRUNE_JOBS, "dead_letters": PRUNE_DEAD_LETTERS, "site_minutes": PRUNE_SITE_MINUTES}
RETENTION_DAYS = {"type": ["number", "null"], "minimum": 1, "maximum": MAX_RETENTION_DAYS}
BATCH = {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_BATCH}


def closed(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "additionalProperties": False}


PRUNE_SCHEMA = closed(
    {
        "retention_days": RETENTION_DAYS,
        "idempotency_hours": {"type": ["number", "null"], "minimum": 1, "maximum": 366 * 24},
        "batch": BATCH,
    }
)
PRUNE_RESULTS_SCHEMA = closed({"retention_days": RETENTION_DAYS, "batch": BATCH})
ANALYZE_SCHEMA = closed({})
REQUEUE_SCHEMA = closed(
    {
        "rounds": {"type": ["integer", "null"], "minimum": 1, "maximum": 100},
        "min_age_s": {"type": ["number", "null"], "minimum": 0, "maximum": 366 * DAY_S},
        "kind": {"type": ["string", "null"], "pattern": f"^{KIND_NAME.pattern}$"},
        "queue": {"type": ["string", "null"], "pattern": f"^{QUEUE_NAME.pattern}$"},
        "limit": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_REQUEUE},
    }
)

REPORT_SCHEMA = closed({"hours": {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": MAX_HOURS}})


@dataclass(frozen=True, slots=True)
class Retention:
    """The configured retentions in days (0: keep forever): finished jobs with their attempts, dead letters and
    site minutes; and the `result`/`progress` of finished jobs."""

    jobs_days: float = 30.0
    results_days: float = 7.0
    # the scheduler's pruning pace (its batch unless the payload names one), with no budget: a job runs to the end
    pace: Pace = field(default_factory=Pace)

    @classmethod
    def of(cls, config: Config) -> Retention:
        pace = dataclasses.replace(Pace.of(config), budget_s=0.0)
        return cls(config.retention_days, config.result_retention_days, pace)

    def paced(self, payload: JsonObject) -> Pace:
        return dataclasses.replace(self.pace, batch=int(_number(payload, "batch", self.pace.batch)))


async def prune(ctx: JobContext, retention: Retention = Retention()) -> Any:
    """Delete finished jobs (with their attempts and scrape results), dead letters and per-minute site
    counters older than `retention_days` (default: the configured retention; 0 there keeps them forever),
    idempotency keys older than `idempotency_hours` (default 24), and page bodies no result refers to any more."""
    payload = ctx.job.payload
    days = _number(payload, "retention_days", retention.jobs_days)
    hours = _number(payload, "idempotency_hours", 24.0)
    pace = retention.paced(payload)
    counts: dict[str, Any] = {}
    for table, statement in AGED.items():
        counts[table] = await _batched(ctx, statement, days * DAY_S, pace) if days > 0 else 0
    return counts | {
        "idempotency_keys": await _batched(ctx, PRUNE_IDEMPOTENCY, hours * 3600, pace),
        "scrape_bodies": await _batched(ctx, PRUNE_BODIES, DAY_S, pace),
        "retention_days": days,
    }


async def prune_results(ctx: JobContext, retention: Retention = Retention()) -> Any:
    """Drop `result` and `progress` of jobs finished more than `retention_days` ago (default: the configured
    result retention; 0 there keeps them forever); the rows stay."""
    payload = ctx.job.payload
    days = _number(payload, "retention_days", retention.results_days)
    pruned = await _batched(ctx, PRUNE_RESULTS, days * DAY_S, retention.paced(payload)) if days > 0 else 0
    return {"jobs": pruned, "retention_days": days}


async def analyze(ctx: JobContext) -> Any:
    """Refresh the planner statistics of Gleaner's busy tables."""
    for table in ANALYZED:
        await ctx.db.execute(f"ANALYZE {table}")
    return {"analyzed": list(ANALYZED)}


async def _batched(ctx: JobContext, statement: str, age_s: float, pace: Pace) -> int:
    total = 0

    async def progress(rows: int) -> None:
        nonlocal total
        total += rows
        await ctx.progress({"rows": total})

    return (await delete_batched(batches(ctx.db, statement, age_s), pace, jobs_waiting(ctx.db), progress)).rows


async def requeue_failed(ctx: JobContext) -> Any:
    """Give failed jobs that used up their attempts another round of `max_attempts` (seed: "process-dlq").

    Only jobs that failed at least `min_age_s` ago (default 3600: time for the cause to be fixed) and have
    had fewer than `rounds` rounds in all (default 3, so a job that keeps failing stops coming back);
    `kind` and `queue` narrow it, `limit` caps one run (default 1000). The relay publishes the rows.
    """
    payload = ctx.job.payload
    rounds = int(_number(payload, "rounds", 3))
    min_age_s = payload.get("min_age_s")
    min_age_s = float(min_age_s) if isinstance(min_age_s, int | float) else 3600.0
    limit = int(_number(payload, "limit", 1000))
    rows = await ctx.db.fetch(AUTO_REQUEUE, rounds, min_age_s, payload.get("kind"), payload.get("queue"), limit)
    return {"requeued": len(rows), "job_ids": [r["id"] for r in rows][:100]}


async def report(ctx: JobContext) -> Any:
    """Per site and kind over the last `hours` (default 24): outcomes, success rate, p50/p95 durations, top error
    classes and dead letters, stored as the job's result (what `gleaner report` prints)."""
    return await build_report(ctx.db, _number(ctx.job.payload, "hours", DEFAULT_HOURS))


def _number(payload: JsonObject, name: str, default: float) -> float:
    """A member the schema checked already; absent, null or 0 means the default."""
    value = payload.get(name)
    return float(value) if isinstance(value, int | float) and value else default


def register(registry: Registry, retention: Retention) -> None:
    """The maintenance kinds, privileged; prune and prune_results default to the configured retention."""
    kinds: dict[str, tuple[Handler, str | None, JsonObjectInput]] = {
        "maintenance.prune": (functools.partial(prune, retention=retention), prune.__doc__, PRUNE_SCHEMA),
        "maintenance.prune_results": (
            functools.partial(prune_results, retention=retention),
            prune_results.__doc__,
            PRUNE_RESULTS_SCHEMA,
        ),
        "maintenance.analyze": (analyze, analyze.__doc__, ANALYZE_SCHEMA),
        "maintenance.requeue_failed": (requeue_failed, requeue_failed.__doc__, REQUEUE_SCHEMA),
        "maintenance.report": (report, report.__doc__, REPORT_SCHEMA),
    }
    for name, (handler, doc, schema) in kinds.items():
        description = (doc or "").strip().split("\n", 1)[0]
        registry.add(name, handler, description=description, schema=schema, privileged=True)
