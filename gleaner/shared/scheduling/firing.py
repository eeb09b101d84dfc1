"""Fire due schedules: claim them, insert their jobs once per slot, advance them, then publish."""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from gleaner.shared import events, workflows
from gleaner.shared.config import Config
from gleaner.shared.db import Connection
from gleaner.shared.outbox import OUTBOX_COLUMNS, OutboxRow
from gleaner.shared.scheduling.schedule_rows import Decision, decide

log = logging.getLogger(__name__)

CLAIM_DUE = """
SELECT s.id, s.kind, s.interval_s, s.jitter, s.cron, s.timezone, s.at, s.anchor, s.job, s.misfire, s.overlap,
       s.misfire_grace_s, s.next_slot_at, s.next_fire_at, j.state AS last_job_state, now() AS now
FROM schedules AS s LEFT JOIN jobs AS j ON j.id = s.last_job_id
WHERE s.enabled AND NOT s.paused AND s.next_fire_at <= now()
ORDER BY s.next_fire_at
LIMIT $1
FOR UPDATE OF s SKIP LOCKED
"""

# One row per fired slot (per fan-out value); a slot that already has its jobs (another leader got there)
# inserts nothing.
INSERT_JOBS = f"""
INSERT INTO jobs (kind, queue, priority, payload, state, max_attempts, timeout_s, retry_base_s, retry_cap_s,
                  site, soft_timeout_s, fan_index, schedule_id, scheduled_for, trigger, run_at)
SELECT t.kind, t.queue, t.priority, t.payload::jsonb, 'queued', t.max_attempts, t.timeout_s, t.retry_base_s,
       t.retry_cap_s, t.site, t.soft_timeout_s, t.fan_index, t.schedule_id, t.slot, $14, now()
FROM unnest($1::text[], $2::text[], $3::smallint[], $4::text[], $5::int[], $6::float8[], $7::float8[],
            $8::float8[], $9::text[], $10::float8[], $11::int[], $12::bigint[], $13::timestamptz[])
     AS t(kind, queue, priority, payload, max_attempts, timeout_s, retry_base_s, retry_cap_s, site, soft_timeout_s,
          fan_index, schedule_id, slot)
ON CONFLICT (schedule_id, scheduled_for, fan_index) WHERE schedule_id IS NOT NULL DO NOTHING
RETURNING schedule_id, scheduled_for, fan_index, created_at,
          EXTRACT(EPOCH FROM (created_at - scheduled_for))::float8 AS lag_s, {OUTBOX_COLUMNS}
"""

ADVANCE = """
UPDATE schedules AS s SET
    next_slot_at = a.next_slot, next_fire_at = a.next_fire, enabled = s.enabled AND a.enabled,
    last_slot_at = COALESCE(a.fired_slot, s.last_slot_at),
    last_fire_at = CASE WHEN a.fired_slot IS NOT NULL THEN now() ELSE s.last_fire_at END,
    last_job_id = COALESCE(a.job_id, s.last_job_id),
    fired_count = s.fired_count + (a.job_id IS NOT NULL)::int,
    skipped_overlap_count = s.skipped_overlap_count + (a.outcome = 'skipped_overlap')::int,
    misfire_skipped_count = s.misfire_skipped_count + a.missed,
    updated_at = now()
FROM unnest($1::bigint[], $2::timestamptz[], $3::timestamptz[], $4::bool[], $5::timestamptz[], $6::bigint[],
            $7::text[], $8::int[]) AS a(id, next_slot, next_fire, enabled, fired_slot, job_id, outcome, missed)
WHERE s.id = a.id
"""

# the fan-out index of a template's `then` job (the fan-out's own jobs count from 0)
THEN_INDEX = -1

LOCK_ONE = "SELECT id, job FROM schedules WHERE id = $1 FOR UPDATE"
# a manual trigger fills no slot and leaves `fired_count` alone; it becomes the schedule's last job (overlap sees it)
RECORD_MANUAL = "UPDATE schedules SET last_job_id = $2, last_fire_at = now(), updated_at = now() WHERE id = $1"


@dataclass(slots=True)
class FireReport:
    """What one pass did: jobs to publish, outcomes for metrics, lags of inserted jobs."""

    rows: list[OutboxRow] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)
    lags_s: list[float] = field(default_factory=list)
    claimed: int = 0
    fired: list[events.Event] = field(default_factory=list)
    skipped: list[events.Event] = field(default_factory=list)


def fan_out_payloads(template: dict[str, Any]) -> list[Any]:
    """The payloads one fire of a template creates: the template's, or one per `fan_out` value (pure)."""
    payload = template.get("payload", {})
    fan_out = template.get("fan_out")
    if not fan_out:
        return [payload]
    return [{**payload, fan_out["key"]: value} for value in fan_out["values"]]


def _templates(job: Any, config: Config) -> list[tuple[Any, ...]]:
    """The column values of the jobs one fire creates, each ending with its fan-out index; a template's `then`
    comes last, as fan-out index THEN_INDEX (so it too is inserted once per slot)."""
    spec = job if isinstance(job, dict) else orjson.loads(job)
    rows = [_columns(spec, payload, index, config) for index, payload in enumerate(fan_out_payloads(spec))]
    then = spec.get("then")
    return rows + ([_columns(then, then.get("payload", {}), THEN_INDEX, config)] if then else [])


def _columns(spec: dict[str, Any], payload: Any, index: int, config: Config) -> tuple[Any, ...]:
    return (
        spec["kind"],
        spec.get("queue") or config.default_queue,
        spec.get("priority", 0),
        orjson.dumps(payload).decode(),
        spec.get("max_attempts", config.default_max_attempts),
        spec.get("timeout_s", config.default_timeout_s),
        spec.get("retry_base_s", config.default_retry_base_s),
        spec.get("retry_cap_s", config.default_retry_cap_s),
        spec.get("site"),
        spec.get("soft_timeout_s"),
        index,
    )


async def _link_callbacks(connection: Connection, inserted: Sequence[asyncpg.Record]) -> list[asyncpg.Record]:
    """Make each fire's `then` job wait for the fire's other jobs; the rows to publish (all but the callbacks,
    which wait in `blocked` until the release publishes them)."""
    fires: dict[tuple[int, Any], list[asyncpg.Record]] = {}
    for row in inserted:
        fires.setdefault((row["schedule_id"], row["scheduled_for"]), []).append(row)
    links = [
        workflows.Link(callback["id"], tuple(r["id"] for r in rows if r is not callback), "run", True, collects=True)
        for rows in fires.values()
        for callback in rows
        if callback["fan_index"] == THEN_INDEX
    ]
    if links:
        await workflows.link(connection, links)
    return [row for row in inserted if row["fan_index"] != THEN_INDEX]


async def fire_due(
    pool: asyncpg.Pool, config: Config, *, batch: int = 500, trigger: str = "schedule", rng: random.Random | None = None
) -> FireReport:
    """One pass over due schedules in one transaction; the caller publishes `report.rows` after it commits."""
    report = FireReport()
    async with pool.acquire() as connection, connection.transaction():
        claimed = await connection.fetch(CLAIM_DUE, batch)
        if not claimed:
            return report
        report.claimed = len(claimed)
        now: datetime = claimed[0]["now"]
        decisions = [decide(dict(row), now, rng) for row in claimed]
        inserted = await _insert_jobs(connection, config, claimed, decisions, trigger)
        await _advance(connection, decisions, {r["schedule_id"]: r["id"] for r in inserted})
        waiting = await _link_callbacks(connection, inserted)
    report.rows = [OutboxRow.from_record(r) for r in waiting]
    report.lags_s = [max(0.0, r["lag_s"]) for r in inserted]
    report.outcomes = [d.outcome for d in decisions]
    at = events.stamp()
    report.fired = [events.fired_event(r, at) for r in inserted]
    report.skipped = [events.skipped_event(d.schedule_id, d.outcome, at) for d in decisions if d.fire_slot is None]
    return report


async def _insert_jobs(
    connection: Connection,
    config: Config,
    claimed: Sequence[asyncpg.Record],
    decisions: Sequence[Decision],
    trigger: str,
) -> list[asyncpg.Record]:
    firing = [(row, d) for row, d in zip(claimed, decisions, strict=True) if d.fire_slot is not None]
    if not firing:
        return []
    rows = [
        (*template, row["id"], decision.fire_slot)
        for row, decision in firing
        for template in _templates(row["job"], config)
    ]
    return list(await connection.fetch(INSERT_JOBS, *_column_arrays(rows, 13), trigger))


def _column_arrays(rows: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    return [[row[i] for row in rows] for i in range(width)]


async def _advance(connection: Connection, decisions: Sequence[Decision], job_ids: dict[int, int]) -> None:
    await connection.execute(
        ADVANCE,
        [d.schedule_id for d in decisions],
        [d.next_slot for d in decisions],
        [d.next_fire for d in decisions],
        [d.enabled for d in decisions],
        [d.fire_slot for d in decisions],
        [job_ids.get(d.schedule_id) for d in decisions],
        [d.outcome for d in decisions],
        [d.missed for d in decisions],
    )


async def fire_manual(pool: asyncpg.Pool, config: Config, schedule_id: int) -> list[asyncpg.Record] | None:
    """Insert the schedule's job (one per fan-out value, and its `then`) now (trigger `manual`, no slot); None if
    the schedule does not exist.

    The returned records (without the `then` job, which waits) carry the outbox columns: publish them after this
    returns (the transaction committed).
    """
    async with pool.acquire() as connection, connection.transaction():
        row = await connection.fetchrow(LOCK_ONE, schedule_id)
        if row is None:
            return None
        rows = [(*template, schedule_id, None) for template in _templates(row["job"], config)]
        jobs = await connection.fetch(INSERT_JOBS, *_column_arrays(rows, 13), "manual")
        assert len(jobs) == len(rows), "jobs without a slot never conflict"
        await connection.execute(RECORD_MANUAL, schedule_id, jobs[-1]["id"])
        return await _link_callbacks(connection, jobs)
