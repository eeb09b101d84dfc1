"""The outbox relay: publish due rows without a confirmed message (job_outbox rows, unmarked rows), and re-arm rows
whose message went missing."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from gleaner.shared.broker_stats import declared_counts
from gleaner.shared.outbox import DELETE_OUTBOX, OUTBOX_COLUMNS, OutboxRow, publish_rows

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

# The gateway's submissions whose outbox row (migration 0039) outlived the grace or whose publish failed: at most about
# $3 jobs a batch, whole outbox rows in id order (the first one whatever its size).
DUE_OUTBOXES = """
SELECT id FROM (
    SELECT id, sum(cardinality(job_ids)) OVER (ORDER BY id) - cardinality(job_ids) AS before
    FROM job_outbox
    WHERE created_at < now() - make_interval(secs => $1) OR failed
    ORDER BY id
    LIMIT $2
) AS o
WHERE before < $3
"""
# Their jobs still waiting as the gateway left them, with their current attempt and generation. A job claimed or
# finished since is not published; one that another writer took over (a change, a retry, a release: `enqueued_at` NULL
# or later than the insert that wrote the outbox row) is that writer's to publish. Each job is read by primary key
# (`LIMIT 1` keeps the fence out of that read: beside it, the planner went through jobs_waiting).
OUTBOXED_ROWS = f"""
SELECT {OUTBOX_COLUMNS}, outbox_id
FROM (SELECT o.id AS outbox_id, unnest(o.job_ids) AS job_id, o.created_at AS recorded_at
      FROM job_outbox AS o WHERE o.id = ANY($1::bigint[])) AS w
CROSS JOIN LATERAL (
    SELECT j.id, j.attempt, j.queue, j.kind, j.priority, j.request_id, j.generation, j.run_at, j.state, j.enqueued_at
    FROM jobs AS j WHERE j.id = w.job_id LIMIT 1
) AS r
WHERE state IN ('scheduled', 'queued', 'retrying') AND enqueued_at <= recorded_at
ORDER BY outbox_id, id
"""
OUTBOX_BATCH_JOBS = 5000

# Waiting long past due, with a message confirmed long ago (not one the relay published a moment ago, after an outage:
# a count read before would miss it), in a queue the broker holds no ready message of: the message went missing, so
# the next pass republishes. A long backlog (a million jobs draining slower than the stale age) keeps
# its queue's messages ready, so its rows are not taken for lost ones (each would have cost a duplicate message); a
# queue the broker could not count is left alone. Rows another transaction holds are left for the next pass (SKIP
# LOCKED: the relay never waits in a lock cycle).
CLEAR_STALE = """
WITH stale AS (
    SELECT id FROM jobs
    WHERE queue = ANY($3::text[]) AND state IN ('scheduled', 'queued', 'retrying') AND enqueued_at IS NOT NULL
      AND run_at < now() - make_interval(secs => $1) AND enqueued_at < now() - make_interval(secs => $1)
    LIMIT $2
    FOR NO KEY UPDATE SKIP LOCKED
)
UPDATE jobs SET enqueued_at = NULL, updated_at = now()
WHERE id IN (SELECT id FROM stale) AND state IN ('scheduled', 'queued', 'retrying') AND enqueued_at IS NOT NULL
"""

BACKLOG = """
WITH unenqueued AS (
    SELECT count(*) AS jobs, min(run_at) AS oldest FROM jobs
    WHERE enqueued_at IS NULL AND state IN ('scheduled', 'queued', 'retrying') AND run_at <= now()
), outboxed AS (
    SELECT COALESCE(sum(cardinality(job_ids)), 0) AS jobs, min(created_at) AS oldest FROM job_outbox
    WHERE created_at < now() - make_interval(secs => $1) OR failed
)
SELECT u.jobs + o.jobs AS backlog,
       COALESCE(EXTRACT(EPOCH FROM (now() - LEAST(u.oldest, o.oldest))), 0)::float8 AS oldest_s
FROM unenqueued AS u, outboxed AS o
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
    """One pass: re-arm stale rows, publish outboxed and unpublished ones in batches, refresh the backlog gauges."""
    config, pool, metrics = duties.config, duties.pool, duties.metrics
    now = time.monotonic()
    if now - duties.stale_checked_at >= stale_check_interval_s(config.relay_stale_s):
        duties.stale_checked_at = now
        await clear_stale(duties)
    published = 0
    if duties.broker.connected:
        published = await _batches(duties, _outboxed_batch) + await _batches(duties, _unpublished_batch)
    backlog = await pool.fetchrow(BACKLOG, config.relay_grace_s)
    assert backlog is not None
    metrics.relay_backlog.set(backlog["backlog"])
    metrics.relay_oldest.set(max(0.0, backlog["oldest_s"]))
    return published


async def clear_stale(duties: Duties) -> int:
    """Re-arm the waiting rows whose message went missing, in queues the broker holds no ready message of."""
    # passive declares, not the management API: its figures trail by its sampling interval (5 s), and a queue that
    # just took a message must not read as empty
    counts = await declared_counts(duties.config, duties.broker)
    drained = sorted(queue for queue, count in counts.items() if count["ready"] == 0)
    if not drained:
        return 0
    stale_s = duties.config.relay_stale_s
    cleared = _affected(await duties.pool.execute(CLEAR_STALE, stale_s, BATCH, drained))
    if cleared:
        log.warning("%d waiting jobs had no message for %.0fs; republishing", cleared, stale_s)
    return cleared


# one batch: how many rows the broker confirmed, and whether to take another
Batch = Callable[["Duties"], Awaitable[tuple[int, bool]]]


async def _batches(duties: Duties, batch: Batch) -> int:
    """Up to MAX_BATCHES batches while each asks for another; how many rows were confirmed."""
    published = 0
    for _ in range(MAX_BATCHES):
        confirmed, more = await batch(duties)
        published += confirmed
        if not more:
            break
    return published


async def _unpublished_batch(duties: Duties) -> tuple[int, bool]:
    config, pool = duties.config, duties.pool
    records = await pool.fetch(UNPUBLISHED, config.max_delay_s, config.relay_grace_s, BATCH)
    rows = [OutboxRow.from_record(r) for r in records]
    confirmed = await publish_rows(duties.broker, pool, rows, duties.metrics)
    if confirmed:
        duties.metrics.relay_published.labels("unpublished").inc(confirmed)
    return confirmed, keep_going(len(rows), confirmed, BATCH)


async def _outboxed_batch(duties: Duties) -> tuple[int, bool]:
    """One batch of outbox rows: their waiting jobs published (the outbox rows deleted once confirmed, see
    publish_rows), those with no job left waiting deleted at once. Another batch while this one found outbox rows
    and the broker confirmed all of their jobs (each batch deletes what it took, so the next finds the others)."""
    pool = duties.pool
    ids = [r["id"] for r in await pool.fetch(DUE_OUTBOXES, duties.config.relay_grace_s, BATCH, OUTBOX_BATCH_JOBS)]
    rows = [OutboxRow.from_record(r) for r in await pool.fetch(OUTBOXED_ROWS, ids)] if ids else []
    done = sorted(set(ids) - {row.outbox_id for row in rows})
    if done:
        await pool.execute(DELETE_OUTBOX, done)
    confirmed = await publish_rows(duties.broker, pool, rows, duties.metrics)
    if confirmed:
        duties.metrics.relay_published.labels("outbox").inc(confirmed)
    return confirmed, bool(ids) and confirmed == len(rows)


def _affected(status: str) -> int:
    """The row count of an asyncpg command status such as 'UPDATE 3'."""
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0
