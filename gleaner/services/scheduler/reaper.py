"""The reaper: running jobs whose lease expired (the worker hung or vanished) get a `lost` attempt and move on."""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncpg

from gleaner.shared import events
from gleaner.shared.backoff import retry_delay_s
from gleaner.shared.outbox import OUTBOX_COLUMNS, OutboxRow

if TYPE_CHECKING:
    from gleaner.services.scheduler.duties import Duties

log = logging.getLogger(__name__)

BATCH = 500
MAX_BATCHES = 20
LOST = "lost"
ERROR_CLASS = "lease_expired"

# the lease is judged by the database clock; rows a live worker is finishing right now are skipped, not waited for
EXPIRED = """
SELECT id, attempt, attempt_base, max_attempts, retry_base_s, retry_cap_s, cancel_requested, lease_owner
FROM jobs
WHERE state = 'running' AND lease_expires_at < now()
ORDER BY lease_expires_at
LIMIT $1
FOR UPDATE SKIP LOCKED
"""

# EXPIRED reads expired leases in lease order from jobs_leases (running rows only). Without sorts it can read them from
# no other index: jobs_waiting held the running rows beside the whole backlog until migration 0043, and once the
# statistics said that nothing waits (a long history analyzed) the planner took either.
LEASE_ORDER = "SET LOCAL enable_sort = off"

# fenced like a worker's finish (id, attempt, running, expired lease), plus the attempt row the worker never wrote.
# The rows are locked already (EXPIRED, same transaction). With the fence beside the UPDATE, the planner reached them
# through jobs_waiting (which held running rows until migration 0043), whose `state = 'running'` is no index column: a
# scan of the whole backlog (stale statistics call it small). Judged on rows read by primary key (`fenced`,
# materialized so the fence is not pushed back into that read), the UPDATE meets `jobs` by primary key too.
REAP = f"""
WITH m AS (
    SELECT * FROM unnest($1::bigint[], $2::int[], $3::text[], $4::float8[], $5::text[], $6::text[])
        AS m(id, attempt, state, delay_s, message, worker)
), fenced AS MATERIALIZED (
    SELECT m.*, j.attempt = m.attempt AND j.state = 'running' AND j.lease_expires_at < now() AS expired
    FROM m JOIN jobs AS j ON j.id = m.id
), done AS (
    UPDATE jobs AS j
    SET state = m.state,
        error = jsonb_build_object('class', '{ERROR_CLASS}', 'message', m.message),
        run_at = CASE WHEN m.state = 'retrying' THEN now() + make_interval(secs => m.delay_s) ELSE j.run_at END,
        enqueued_at = CASE WHEN m.state = 'retrying' THEN NULL ELSE j.enqueued_at END,
        finished_at = CASE WHEN m.state = 'retrying' THEN NULL ELSE now() END,
        lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
    FROM fenced AS m
    WHERE j.id = m.id AND m.expired
    RETURNING j.id, j.attempt, j.state, j.queue, j.kind, j.priority, j.request_id, j.generation, j.run_at,
              j.attempt_started_at, m.delay_s, m.message, m.worker, j.site, j.schedule_id, j.created_at
), attempts AS (
    INSERT INTO job_attempts (job_id, attempt, worker, started_at, finished_at, outcome, error_class, error_message,
                              retry_delay_s, site, kind)
    SELECT d.id, d.attempt, d.worker, d.attempt_started_at, now(), '{LOST}', '{ERROR_CLASS}', d.message, d.delay_s,
           d.site, d.kind
    FROM done AS d
    ON CONFLICT (job_id, attempt) DO NOTHING
)
SELECT state, message, site, schedule_id, created_at, {OUTBOX_COLUMNS} FROM done
"""


@dataclass(frozen=True, slots=True)
class Verdict:
    """What happens to one expired attempt: the next state and, for a retry, the backoff."""

    job_id: int
    attempt: int
    state: str
    delay_s: float | None
    message: str
    worker: str | None


def verdict(row: Mapping[str, Any], rng: random.Random | None = None) -> Verdict:
    """cancelled if a cancel was requested, retrying while the budget lasts, otherwise failed (pure)."""
    attempt = row["attempt"]
    message = f"lease expired: worker {row['lease_owner']} stopped heartbeating during attempt {attempt}"
    if row["cancel_requested"]:
        return Verdict(row["id"], attempt, "cancelled", None, message, row["lease_owner"])
    if attempt - row["attempt_base"] < row["max_attempts"]:
        delay_s = retry_delay_s(attempt, row["retry_base_s"], row["retry_cap_s"], rng=rng)
        return Verdict(row["id"], attempt, "retrying", delay_s, message, row["lease_owner"])
    return Verdict(row["id"], attempt, "failed", None, message, row["lease_owner"])


def reap_arguments(verdicts: Sequence[Verdict]) -> tuple[list[Any], ...]:
    return (
        [v.job_id for v in verdicts],
        [v.attempt for v in verdicts],
        [v.state for v in verdicts],
        [v.delay_s for v in verdicts],
        [v.message for v in verdicts],
        [v.worker for v in verdicts],
    )


def finished_event(records: Sequence[events.Row]) -> bytes:
    """The `job.finished` body for reaped rows (retrying or final), each with the lease error."""
    at = events.stamp()
    return events.encode(
        [events.job_event(r, at, error_class=ERROR_CLASS, error_message=r["message"]) for r in records]
    )


async def reap_batch(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    """One transaction: lock expired rows, write their verdicts; the returned rows are committed."""
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute(LEASE_ORDER)
        expired = await connection.fetch(EXPIRED, BATCH)
        if not expired:
            return []
        verdicts = [verdict(dict(r)) for r in expired]
        return list(await connection.fetch(REAP, *reap_arguments(verdicts)))


async def reap_pass(duties: Duties) -> int:
    """Reap until no expired lease is left; after each commit hand the retries to the publisher, send one finished
    event."""
    reaped = 0
    for _ in range(MAX_BATCHES):
        records = await reap_batch(duties.pool)
        if not records:
            break
        reaped += len(records)
        duties.metrics.lease_recoveries.inc(len(records))
        log.warning("recovered %d jobs whose lease expired", len(records))
        duties.publisher.add_rows(OutboxRow.from_record(r) for r in records if r["state"] == "retrying")
        await duties.broker.publish_event(events.FINISHED, finished_event(records))
        if len(records) < BATCH:
            break
    return reaped
