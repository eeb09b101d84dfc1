"""The firing loop's pass: unless the scheduler is paused, fire due schedules, publish their jobs, record the lag."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from services.scheduler.firing import FireReport, fire_due
from shared.outbox import publish_rows

if TYPE_CHECKING:
    from services.scheduler.duties import Duties

log = logging.getLogger(__name__)

FIRE_INTERVAL_S = 1.0
BATCH = 500
MAX_BATCHES = 20

PAUSED = "SELECT paused FROM scheduler_state WHERE id = 1"
# due_backlog: due schedules left after this pass (a growing number means the leader cannot keep up)
RECORD = """
UPDATE scheduler_state SET
    last_fire_lag_s = COALESCE($1, last_fire_lag_s),
    due_backlog = (SELECT count(*) FROM schedules WHERE enabled AND NOT paused AND next_fire_at <= now())
WHERE id = 1
"""


async def fire_pass(duties: Duties) -> int:
    """Fire every due schedule (in batches); returns how many jobs were inserted."""
    if await duties.pool.fetchval(PAUSED):
        return 0
    fired = 0
    lags: list[float] = []
    for _ in range(MAX_BATCHES):
        report = await fire_due(duties.pool, duties.config, batch=BATCH)
        fired += len(report.rows)
        lags.extend(report.lags_s)
        await _publish(duties, report)
        if report.claimed < BATCH:
            break
    await duties.pool.execute(RECORD, max(lags) if lags else None)
    return fired


async def _publish(duties: Duties, report: FireReport) -> None:
    metrics = duties.metrics
    for outcome in report.outcomes:
        metrics.schedule_fires.labels(outcome).inc()
    for lag_s in report.lags_s:
        metrics.schedule_fire_lag.observe(lag_s)
    if report.rows and duties.broker.connected:
        # unconfirmed rows keep enqueued_at NULL; the relay publishes them
        await publish_rows(duties.broker, duties.pool, report.rows, metrics)
