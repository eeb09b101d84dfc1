"""The outbox relay: publish due rows without a confirmed message, and re-arm rows whose message went missing."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from gleaner.shared.outbox import OUTBOX_COLUMNS, OutboxRow, publish_rows

if TYPE_CHECKING:
    from gleaner.services.scheduler.duties import Duties

log = logging.getLogger(__name__)

BATCH = 1000
# a pass stops after this many batches so the other duties and a fresh backlog reading get their turn
MAX_BATCHES = 50

# served by the jobs_unenqueued index; rows written within the grace period are left to their writer, unless their
# writer's publish failed (the broker was down): those go as soon as the broker is back
UNPUBLISHED = f"""
SELECT {OUTBOX_COLUMNS} FROM jobs
WHERE enqueued_at IS NULL AND state IN ('scheduled', 'queued', 'retrying')
  AND run_at <= now() + make_interval(secs => $1)
  AND (updated_at < now() - make_interval(secs => $2) OR publish_failed)
ORDER BY run_at
LIMIT $3
"""

# waiting long past due with a confirmed message: the message went missing, so the next pass republishes. Rows
# another transaction holds are left for the next pass (SKIP LOCKED: the relay never waits in a lock cycle).
CLEAR_STALE = """
WITH stale AS (
    SELECT id FROM jobs
    WHERE state IN ('scheduled', 'queued', 'retrying') AND enqueued_at IS NOT NULL
      AND run_at < now() - make_interval(secs => $1)
    LIMIT $2
    FOR NO KEY UPDATE SKIP LOCKED
)
UPDATE jobs SET enqueued_at = NULL, updated_at = now()
WHERE id IN (SELECT id FROM stale) AND state IN ('scheduled', 'queued', 'retrying') AND enqueued_at IS NOT NULL
"""

BACKLOG = """
SELECT count(*) AS backlog, COALESCE(EXTRACT(EPOCH FROM (now() - min(run_at))), 0)::float8 AS oldest_s
FROM jobs
WHERE enqueued_at IS NULL AND state IN ('scheduled', 'queued', 'retrying') AND run_at <= now()
"""


def keep_going(fetched: int, confirmed: int, batch: int) -> bool:
    """Another batch only when this one was full and fully confirmed (a broker outage must not spin)."""
    return fetched == batch and confirmed == fetched


def stale_check_interval_s(stale_s: float) -> float:
    """How often the relay looks for waiting rows whose message went missing: a tenth of the age that makes a row
    stale, so a lost message is republished between 1 and 1.1 times that age. Every pass (each second) read every
    waiting row past due through jobs_waiting: 27 µs a job of PostgreSQL time in the e2e bench, for an answer that
    cannot change within a second of a ten-minute threshold."""
    return stale_s / 10


async def relay_pass(duties: Duties) -> int:
    """One pass: re-arm stale rows, publish unpublished ones in batches, refresh the backlog gauges."""
    config, pool, metrics = duties.config, duties.pool, duties.metrics
    now = time.monotonic()
    if now - duties.stale_checked_at >= stale_check_interval_s(config.relay_stale_s):
        duties.stale_checked_at = now
        cleared = _affected(await pool.execute(CLEAR_STALE, config.relay_stale_s, BATCH))
        if cleared:
            log.warning("%d waiting jobs had no message for %.0fs; republishing", cleared, config.relay_stale_s)
    published = 0
    if duties.broker.connected:
        for _ in range(MAX_BATCHES):
            records = await pool.fetch(UNPUBLISHED, config.max_delay_s, config.relay_grace_s, BATCH)
            rows = [OutboxRow.from_record(r) for r in records]
            confirmed = await publish_rows(duties.broker, pool, rows, metrics)
            published += confirmed
            if confirmed:
                metrics.relay_published.labels("unpublished").inc(confirmed)
            if not keep_going(len(rows), confirmed, BATCH):
                break
    backlog = await pool.fetchrow(BACKLOG)
    assert backlog is not None
    metrics.relay_backlog.set(backlog["backlog"])
    metrics.relay_oldest.set(max(0.0, backlog["oldest_s"]))
    return published


def _affected(status: str) -> int:
    """The row count of an asyncpg command status such as 'UPDATE 3'."""
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0
