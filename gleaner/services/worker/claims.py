"""The worker's fenced writes: batched claim, finish, heartbeat and hand-back statements and their flushes."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg

from gleaner.services.worker.context import JobInfo
from gleaner.services.worker.retry import DEFERRED, RETRYING, Budget, Outcome
from gleaner.shared import events
from gleaner.shared.db import ORDERED_LOCKS, Connection
from gleaner.shared.events import Event
from gleaner.shared.outbox import OUTBOX_COLUMNS, OutboxRow
from gleaner.shared.slot_setters import slot_setters

log = logging.getLogger(__name__)

Key = tuple[int, int]
# what a message claims: (job id, attempt, generation)
ClaimKey = tuple[int, int, int]
K = TypeVar("K", Key, ClaimKey)
R = TypeVar("R")

# The claim and the finish, the hot statements, reach their rows in id order without locking them first: the UPDATE
# is driven by the message's ids, sorted in a MATERIALIZED CTE (`m`), and meets `jobs` by primary key, locking each
# row as it writes it (see gleaner.shared.db, lock order). The fence is decided on the row version the UPDATE writes
# (read committed rechecks it on the newest version of a row that changed meanwhile) and sits inside a CASE, which
# no index matches and from which no partial index's predicate can be proven: whatever the statistics say (after a
# long history, that nothing waits) the planner has no index of waiting or running rows to drive the UPDATE from,
# and chose primary-key lookups on an empty table, on 20 and 300 rows, and on 220,000 (stale statistics) alike.
# Measured at 1,000,000 rows with 20,000 waiting and stale statistics, with the fence as plain conditions of the
# UPDATE: the claim of 13 rows took 70 ms (an index scan of every waiting row into a hash join).
# Before, a `locked` CTE took every row FOR NO KEY UPDATE first (as the other statements here still do, ORDERED_LOCKS):
# a second write of each row (the lock's xmax, a WAL record) before the UPDATE wrote it again. Without it, 30,000
# jobs claimed in groups of 124 and finished in groups of 200 (`python -m bench.statements`): WAL
# 892 -> 814 bytes a claimed job and 981 -> 923 a finished one.

# Duplicates are removed before the statement; the fence (attempt - 1, waiting, not cancelled, the row's generation)
# drops stale messages: one of a job changed since it was published (PATCH /jobs/{id}) carries an older generation.
CLAIM = """
WITH m AS MATERIALIZED (
    SELECT * FROM unnest($1::bigint[], $2::int[], $5::int[]) AS m(id, attempt, generation) ORDER BY id
)
UPDATE jobs AS j
SET state = 'running', attempt = m.attempt, lease_owner = $3,
    lease_expires_at = now() + make_interval(secs => $4), attempt_started_at = now(),
    started_at = COALESCE(j.started_at, now()), updated_at = now()
FROM m
WHERE j.id = m.id
  AND CASE WHEN j.state IN ('scheduled', 'queued', 'retrying')
           THEN j.attempt = m.attempt - 1 AND NOT j.cancel_requested AND j.generation = m.generation END
RETURNING j.id, j.attempt, j.kind, j.queue, j.payload, j.site, j.timeout_s, j.soft_timeout_s, j.max_attempts,
    j.attempt_base, j.retry_base_s, j.retry_cap_s, j.request_id, j.generation,
    EXTRACT(EPOCH FROM (now() - j.run_at))::float8 AS wait_s, j.schedule_id, j.created_at
"""

# One statement: the fenced row update plus the attempt row; retrying rows come back with the outbox columns. The
# attempt row is made from what the update returns (the message's columns included): a join of `done` with `m`
# would be a nested loop over two CTEs under the worker's point-lookup settings, n² comparisons a group (6 ms for
# 100 rows).
# The attempt row is inserted plainly, not ON CONFLICT DO NOTHING, which inserts every row speculatively (a lock
# taken and released, a WAL record confirming the row): 922-965 -> 874-877 bytes of WAL a job, 61.8 -> 54.0 µs of
# backend CPU (30,000 jobs in groups of 200, 3 alternated runs). No row of (job, attempt) can exist yet: the two
# statements that write one, this and the reaper's, write it beside the update that fences on the row running that
# attempt and moves it out of `running`, and an attempt number comes back only through a deferral or a hand-back,
# which end an attempt without writing its row. Were one ever there, the unique key refuses that job's finish (the
# group's other rows are written, see write_isolated) instead of dropping its attempt row unseen.
FINISH = f"""
WITH m AS MATERIALIZED (
    SELECT * FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::float8[],
                         $8::text[])
        AS m(id, attempt, state, result, error_class, error_message, delay_s, error_traceback)
    ORDER BY id
), done AS (
    UPDATE jobs AS j
    SET state = m.state,
        result = CASE WHEN m.state IN ('succeeded', 'partial') THEN m.result::jsonb ELSE j.result END,
        error = CASE WHEN m.error_class IS NULL THEN NULL
                     ELSE jsonb_build_object('class', m.error_class, 'message', m.error_message) END,
        run_at = CASE WHEN m.state = 'retrying' THEN now() + make_interval(secs => m.delay_s) ELSE j.run_at END,
        enqueued_at = CASE WHEN m.state = 'retrying' THEN NULL ELSE j.enqueued_at END,
        finished_at = CASE WHEN m.state = 'retrying' THEN NULL ELSE now() END,
        lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
    FROM m
    WHERE j.id = m.id AND CASE WHEN j.state = 'running' THEN j.attempt = m.attempt AND j.lease_owner = $9 END
    RETURNING j.id, j.attempt, j.state, j.queue, j.kind, j.priority, j.request_id, j.generation, j.run_at,
        j.attempt_started_at, j.site, j.schedule_id, j.created_at, m.error_class, m.error_message, m.delay_s,
        m.error_traceback
), attempts AS (
    INSERT INTO job_attempts (job_id, attempt, worker, started_at, finished_at, outcome, error_class, error_message,
                              retry_delay_s, error_traceback, site, kind)
    SELECT d.id, d.attempt, $9, d.attempt_started_at, now(), d.state, d.error_class, d.error_message, d.delay_s,
           d.error_traceback, d.site, d.kind
    FROM done AS d
)
SELECT state, site, schedule_id, created_at, error_class, error_message, {OUTBOX_COLUMNS} FROM done
"""

# Renews only the attempts this process runs now ($1/$2), and never a lease that ran out: once expired, the reaper
# may already have given the job to another worker. The site concurrency slots of those jobs live exactly as long
# as their leases (locked in key order too).
HEARTBEAT = f"""
WITH locked AS (
    SELECT j.id,
           j.attempt = m.attempt AND j.lease_owner = $3 AND j.state = 'running' AND j.lease_expires_at > now()
               AS fenced
    FROM unnest($1::bigint[], $2::int[]) AS m(id, attempt) JOIN jobs AS j ON j.id = m.id
    ORDER BY j.id FOR NO KEY UPDATE OF j
), renewed AS (
    UPDATE jobs AS j SET lease_expires_at = now() + make_interval(secs => $4), updated_at = now()
    FROM locked AS l
    WHERE j.id = l.id AND l.fenced AND {ORDERED_LOCKS}
    RETURNING j.id, j.attempt, j.cancel_requested
), slots AS (
    SELECT site, job_id FROM site_slots
    WHERE holder = $3 AND job_id = ANY($1::bigint[]) AND expires_at > now()
    ORDER BY site, job_id
    FOR NO KEY UPDATE
), renewed_slots AS (
    UPDATE site_slots AS s SET expires_at = now() + make_interval(secs => $4)
    FROM slots
    WHERE s.site = slots.site AND s.job_id = slots.job_id AND s.job_id IN (SELECT id FROM renewed)
)
SELECT id, attempt, cancel_requested FROM renewed
"""

# A deferred attempt is undone like a hand-back, but the row waits `delay_s` and is republished through the
# delay levels; no job_attempts row, the budget is untouched. A cancel requested meanwhile ends the job.
DEFER = f"""
WITH locked AS (
    SELECT m.*, j.attempt = m.fenced_attempt AND j.lease_owner = $4 AND j.state = 'running' AS fenced
    FROM unnest($1::bigint[], $2::int[], $3::float8[]) AS m(job_id, fenced_attempt, delay_s)
    JOIN jobs AS j ON j.id = m.job_id ORDER BY j.id FOR NO KEY UPDATE OF j
)
UPDATE jobs AS j
SET state = CASE WHEN j.cancel_requested THEN 'cancelled' ELSE 'scheduled' END,
    attempt = CASE WHEN j.cancel_requested THEN j.attempt ELSE j.attempt - 1 END,
    run_at = CASE WHEN j.cancel_requested THEN j.run_at ELSE now() + make_interval(secs => m.delay_s) END,
    finished_at = CASE WHEN j.cancel_requested THEN now() END,
    enqueued_at = NULL, lease_owner = NULL, lease_expires_at = NULL,
    deferrals = j.deferrals + 1, updated_at = now()
FROM locked AS m
WHERE j.id = m.job_id AND m.fenced AND {ORDERED_LOCKS}
RETURNING m.fenced_attempt, j.state, j.site, j.schedule_id, j.created_at, {OUTBOX_COLUMNS}
"""

# Undo the attempt so the requeued message (attempt n) claims the row again.
HAND_BACK = f"""
WITH locked AS (
    SELECT j.id, j.attempt = m.attempt AND j.lease_owner = $3 AND j.state = 'running' AS fenced
    FROM unnest($1::bigint[], $2::int[]) AS m(id, attempt) JOIN jobs AS j ON j.id = m.id
    ORDER BY j.id FOR NO KEY UPDATE OF j
)
UPDATE jobs AS j
SET state = 'queued', attempt = j.attempt - 1, lease_owner = NULL, lease_expires_at = NULL,
    enqueued_at = NULL, updated_at = now()
FROM locked AS l
WHERE j.id = l.id AND l.fenced AND {ORDERED_LOCKS}
RETURNING j.id, j.attempt + 1 AS attempt
"""

PROGRESS = """
UPDATE jobs SET progress = $3::jsonb, updated_at = now()
WHERE id = $1 AND attempt = $2 AND lease_owner = $4 AND state = 'running'
"""


@dataclass(slots=True)
class Claim:
    """A row this worker now runs: the handler's view of it, its retry budget and how long it waited.

    Claim, Budget, Finish and Finished are made once per job and never changed; they are not frozen because a
    frozen dataclass's __init__ sets each field through object.__setattr__: 0.72 us for six fields against 0.17 us
    (timeit, this box), about 2 us a job for the four.
    """

    job: JobInfo
    budget: Budget
    wait_s: float
    started: Event | None = None
    # how long the handler ran, once it ended (the flow observes the durations of a finish batch together)
    ran_s: float | None = None

    @property
    def key(self) -> Key:
        return (self.job.id, self.job.attempt)

    @classmethod
    def from_record(cls, record: events.Row, delay_unit_s: float = 0.0, started: Event | None = None) -> Claim:
        """`started`: the claim's `job.started` event (see `JobStore.claim`), if it is announced."""
        job = job_info(record)
        # positional: keyword arguments cost a dataclass __init__ more than its six assignments
        budget = Budget(
            record["attempt"],
            record["attempt_base"],
            record["max_attempts"],
            record["retry_base_s"],
            record["retry_cap_s"],
            delay_unit_s,
        )
        return cls(job, budget, max(0.0, record["wait_s"]), started)


# JobInfo is public and frozen: the claim sets its fields through the slots' descriptors (see slot_setters).
JOB_INFO_FIELDS = (
    "id", "kind", "queue", "attempt", "max_attempts", "payload", "site", "timeout_s", "request_id", "soft_timeout_s"
)  # fmt: skip
_SET_ID, _SET_KIND, _SET_QUEUE, _SET_ATTEMPT, _SET_MAX, _SET_PAYLOAD, _SET_SITE, _SET_TIMEOUT, _SET_REQ, _SET_SOFT = (
    slot_setters(JobInfo, JOB_INFO_FIELDS)
)


def job_info(record: events.Row) -> JobInfo:
    """The JobInfo of a claimed row: `JobInfo(**{f: record[f] for f in JOB_INFO_FIELDS})`, made faster."""
    job: JobInfo = object.__new__(JobInfo)
    _SET_ID(job, record["id"])
    _SET_KIND(job, record["kind"])
    _SET_QUEUE(job, record["queue"])
    _SET_ATTEMPT(job, record["attempt"])
    _SET_MAX(job, record["max_attempts"])
    _SET_PAYLOAD(job, record["payload"])
    _SET_SITE(job, record["site"])
    _SET_TIMEOUT(job, record["timeout_s"])
    _SET_REQ(job, record["request_id"])
    _SET_SOFT(job, record["soft_timeout_s"])
    return job


@dataclass(slots=True)
class Finish:
    """An attempt's outcome to write, fenced on (job_id, attempt) and the lease owner."""

    job_id: int
    attempt: int
    outcome: Outcome

    @property
    def key(self) -> Key:
        return (self.job_id, self.attempt)


@dataclass(slots=True)
class Finished:
    """A committed finish: the state written, and for a retry the row to publish through the delay levels."""

    state: str
    retry: OutboxRow | None = None
    event: Event | None = None


def unique_keys(keys: Iterable[K]) -> list[K]:
    """The keys once each, in first-seen order."""
    return list(dict.fromkeys(keys))


def distribute(keys: Sequence[K], rows: Mapping[K, R], unique: bool = False) -> list[R | None]:
    """One answer per caller: the row goes to the first caller with its key, later duplicates get None.
    `unique`: the keys are known to be distinct (no bookkeeping of the keys seen)."""
    if unique:
        return [rows.get(key) for key in keys]
    seen: set[K] = set()
    out: list[R | None] = []
    for key in keys:
        out.append(None if key in seen else rows.get(key))
        seen.add(key)
    return out


def finish_arguments(items: Sequence[Finish]) -> tuple[list[Any] | None, ...]:
    """The column arrays of the FINISH statement, one element per item; the error columns, NULL for every item of
    a batch that only succeeded, go as NULL arrays (see `_nullable`)."""
    outcomes = [f.outcome for f in items]
    return (
        [f.job_id for f in items],
        [f.attempt for f in items],
        [o.state for o in outcomes],
        [o.result_json for o in outcomes],
        _nullable([o.error_class for o in outcomes]),
        _nullable([o.error_message for o in outcomes]),
        _nullable([o.retry_delay_s for o in outcomes]),
        _nullable([o.error_traceback for o in outcomes]),
    )


def _nullable(column: list[Any]) -> list[Any] | None:
    """A column of NULLs as a NULL array, which `unnest` pads with NULLs like any shorter array. asyncpg checks
    each element of an array it encodes against collections.abc.Iterable, a Python-level call (ABCMeta's
    __instancecheck__): four such columns cost a job four of them (~0.8 us)."""
    return None if column.count(None) == len(column) else column


class JobStore:
    """The worker's statements against `jobs`, each fenced on this worker's id."""

    def __init__(self, pool: asyncpg.Pool, worker_id: str, lease_s: float, delay_unit_s: float = 0.0) -> None:
        self.pool = pool
        self.worker_id = worker_id
        self.lease_s = lease_s
        self.delay_unit_s = delay_unit_s

    async def claim(self, keys: Sequence[ClaimKey]) -> list[Claim | None]:
        """Batcher flush: claim many (id, attempt, generation) at once; None for stale or duplicate messages."""
        wanted = unique_keys(keys)
        ids, attempts, generations = ([k[n] for k in wanted] for n in range(3))
        records = await self.pool.fetch(CLAIM, ids, attempts, self.worker_id, self.lease_s, generations)
        # the row's state is 'running' once claimed: not returned, one column less to decode a job
        started = events.job_events(records, events.stamp(), events.STARTED, state="running")
        unit_s = self.delay_unit_s
        rows = {
            (r["id"], r["attempt"], r["generation"]): Claim.from_record(r, unit_s, event)
            for r, event in zip(records, started, strict=True)
        }
        return distribute(keys, rows, unique=len(wanted) == len(keys))

    async def finish(self, items: Sequence[Finish]) -> list[Finished | None]:
        """Batcher flush: write many outcomes; None where the fence failed (the row was reaped or moved on).

        All or nothing (the batcher may split a failed group and write its halves again): outcomes and
        deferrals together (rare) share one transaction.
        """
        ended = [f for f in items if f.outcome.state != DEFERRED]
        waiting = [f for f in items if f.outcome.state == DEFERRED]
        if ended and waiting:
            async with self.pool.acquire() as connection, connection.transaction():
                rows = await self._end(connection, ended) | await self._defer(connection, waiting)
        elif ended:
            rows = await self._end(self.pool, ended)
        else:
            rows = await self._defer(self.pool, waiting)
        keys = [(item.job_id, item.attempt) for item in items]
        return distribute(keys, rows, unique=len(set(keys)) == len(keys))

    async def _end(self, connection: Connection | asyncpg.Pool, items: Sequence[Finish]) -> dict[Key, Finished]:
        records = await connection.fetch(FINISH, *finish_arguments(items), self.worker_id)
        ended = events.job_events(records, events.stamp(), errors=True)
        return {(r["id"], r["attempt"]): _finished(r, event) for r, event in zip(records, ended, strict=True)}

    async def _defer(self, connection: Connection | asyncpg.Pool, items: Sequence[Finish]) -> dict[Key, Finished]:
        records = await connection.fetch(
            DEFER,
            [f.job_id for f in items],
            [f.attempt for f in items],
            [f.outcome.retry_delay_s or 0.0 for f in items],
            self.worker_id,
        )
        at = events.stamp()
        return {(r["id"], r["fenced_attempt"]): _deferred(r, at) for r in records}

    async def hand_back(self, keys: Sequence[Key]) -> list[bool]:
        """Batcher flush: undo running attempts (graceful shutdown); True where the row was handed back."""
        wanted = unique_keys(keys)
        records = await self.pool.fetch(HAND_BACK, [k[0] for k in wanted], [k[1] for k in wanted], self.worker_id)
        back = {(r["id"], r["attempt"]): True for r in records}
        return [bool(found) for found in distribute(keys, back)]

    async def heartbeat(self, keys: Sequence[Key]) -> dict[Key, bool]:
        """Extend the leases of these attempts (the ones this process runs) unless they ran out already:
        (id, attempt) → cancel_requested for each lease renewed."""
        records = await self.pool.fetch(
            HEARTBEAT, [k[0] for k in keys], [k[1] for k in keys], self.worker_id, self.lease_s
        )
        return {(r["id"], r["attempt"]): r["cancel_requested"] for r in records}

    async def progress(self, key: Key, data: Any) -> None:
        await self.pool.execute(PROGRESS, key[0], key[1], data, self.worker_id)


def _deferred(record: asyncpg.Record, at: str) -> Finished:
    if record["state"] != "scheduled":  # cancelled while it waited
        return Finished(record["state"], event=events.job_event(record, at))
    return Finished(DEFERRED, OutboxRow.from_record(record))


def _finished(record: asyncpg.Record, event: Event) -> Finished:
    state = record["state"]
    if state != RETRYING:
        return Finished(state, None, event)
    return Finished(RETRYING, OutboxRow.from_record(record), event)
