"""Fire every due schedule now, in batches: the leader's firing pass and `POST /scheduler/run` both call this."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import asyncpg

from gleaner.shared import events
from gleaner.shared.amqp import Broker
from gleaner.shared.config import Config
from gleaner.shared.metrics import Metrics
from gleaner.shared.outbox import OutboxRow, publish_rows
from gleaner.shared.scheduling.firing import FireReport, fire_due

Publish = Callable[[Sequence[OutboxRow]], Awaitable[None]]

BATCH = 500
MAX_BATCHES = 20

# due_backlog: due schedules left after this pass (a growing number means the leader cannot keep up);
# returns the seconds until the next schedule is due, so the loop sleeps exactly that long
RECORD = """
UPDATE scheduler_state SET
    last_fire_lag_s = COALESCE($1, last_fire_lag_s),
    due_backlog = (SELECT count(*) FROM schedules WHERE enabled AND NOT paused AND next_fire_at <= now())
WHERE id = 1
RETURNING (SELECT EXTRACT(EPOCH FROM (min(next_fire_at) - now()))::float8
           FROM schedules WHERE enabled AND NOT paused) AS next_due_s
"""


async def fire_all(
    pool: asyncpg.Pool, config: Config, broker: Broker, metrics: Metrics, publish: Publish | None = None
) -> tuple[int, float | None]:
    """Fire every due schedule now (in batches): (jobs inserted, seconds until the next schedule is due).

    Each batch's committed rows go to `publish` (by default published here; unconfirmed ones are marked for the
    relay). Also what `POST /scheduler/run` does, paused or not; the slot constraint keeps it from doubling the
    leader.
    """

    async def publish_now(rows: Sequence[OutboxRow]) -> None:
        await publish_rows(broker, pool, rows, metrics)

    fired = 0
    lags: list[float] = []
    for _ in range(MAX_BATCHES):
        report = await fire_due(pool, config, batch=BATCH)
        fired += len(report.rows)
        lags.extend(report.lags_s)
        _count(metrics, report)
        if report.rows:
            await (publish or publish_now)(report.rows)
        await _announce(broker, report)
        if report.claimed < BATCH:
            break
    next_due_s: float | None = await pool.fetchval(RECORD, max(lags) if lags else None)
    return fired, next_due_s


async def _announce(broker: Broker, report: FireReport) -> None:
    for route, happened in ((events.FIRED, report.fired), (events.SKIPPED, report.skipped)):
        if happened:
            await broker.publish_event(route, events.encode(happened))


def _count(metrics: Metrics, report: FireReport) -> None:
    for outcome in report.outcomes:
        metrics.schedule_fires.labels(outcome).inc()
    for lag_s in report.lags_s:
        metrics.schedule_fire_lag.observe(lag_s)
