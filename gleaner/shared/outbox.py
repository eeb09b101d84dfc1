"""The outbox: publish committed job rows, then record which ones the broker confirmed.

Two records stand for an unconfirmed message. Most writers leave the row's `enqueued_at` NULL (the relay's
jobs_unenqueued index) and mark it once the broker confirms. The gateway's submissions instead go in already marked,
with a job_outbox row per insert statement (migration 0039), deleted once every message of its rows is confirmed:
one small delete for a whole statement instead of an UPDATE of every job that touches all of its indexes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, TypeVar

import asyncpg

from gleaner.shared.amqp import Broker
from gleaner.shared.batcher import write_isolated
from gleaner.shared.messages import Envelope, JobMessage, PackedGroup, member_fields
from gleaner.shared.metrics import Metrics

log = logging.getLogger(__name__)

T = TypeVar("T")

# The columns every caller selects (or returns) to publish a row; `delay_s` is judged by the database clock.
OUTBOX_COLUMNS = """id, attempt, queue, kind, priority, request_id, generation,
    GREATEST(0, EXTRACT(EPOCH FROM (run_at - now())))::float8 AS delay_s,
    (EXTRACT(EPOCH FROM run_at) * 1000)::bigint AS due_ms"""

# Fenced on the attempt and generation the message was for: a row that moved on since keeps its own marker. The
# fence is read first without a lock (`waiting`): a row claimed meanwhile (the usual case once the marker waits a
# little, see Marks) costs a primary-key read, no tuple lock and no WAL. Rows that pass are then locked, skipping
# those another transaction holds rather than waiting for them (so the marker never joins a lock cycle and needs no
# lock order): such a row is being claimed (it leaves the waiting states, the marker does not matter any more) or
# moved on by a finish, a cancel or the relay; if it is still waiting and unmarked afterwards, the relay publishes it
# once more after its grace, a duplicate message that the fenced claim drops. The fence is checked again on the
# locked row version.
# Each row is read and locked by primary key alone (`LIMIT 1` keeps the fence out of that scan: with it, a fresh
# table's planner read the whole jobs_unenqueued index once per row); the UPDATE writes only rows locked here
# (`id = ANY(ARRAY(...))`, evaluated before the UPDATE reads a row).
_FENCE = """r.attempt = m.attempt AND r.generation = m.generation AND r.enqueued_at IS NULL
        AND r.state IN ('scheduled', 'queued', 'retrying')"""
_ROW = "SELECT j.id, j.attempt, j.generation, j.enqueued_at, j.state FROM jobs AS j WHERE j.id = m.id LIMIT 1"
_MARK = f"""
WITH waiting AS MATERIALIZED (
    SELECT m.id, m.attempt, m.generation FROM unnest($1::bigint[], $2::int[], $3::int[]) AS m(id, attempt, generation)
    CROSS JOIN LATERAL ({_ROW}) AS r
    WHERE {_FENCE}
), locked AS (
    SELECT r.id FROM waiting AS m
    CROSS JOIN LATERAL ({_ROW} FOR NO KEY UPDATE SKIP LOCKED) AS r
    WHERE {_FENCE}
)
UPDATE jobs SET {{assignments}} WHERE id = ANY(ARRAY(SELECT id FROM locked))
"""
MARK_ENQUEUED = _MARK.format(assignments="enqueued_at = now(), publish_failed = false")
# the broker did not confirm: the relay publishes the row as soon as the broker is back (no grace)
MARK_UNPUBLISHED = _MARK.format(assignments="publish_failed = true")
# confirmed rows whose marker waits beyond this many (a database that takes its time) are left to the relay; a
# flush writes at most MARKS_PER_STATEMENT rows a statement, so a claim never waits long for the marker's locks
MAX_MARKS = 100_000
MARKS_PER_STATEMENT = 1000

# the outbox rows of statements whose messages were all confirmed (Marks gathers many for one DELETE)
DELETE_OUTBOX = "DELETE FROM job_outbox WHERE id = ANY($1::bigint[])"
# the broker did not confirm every message of the statement's rows: the relay publishes them at once (no grace)
OUTBOX_FAILED = "UPDATE job_outbox SET failed = true WHERE id = ANY($1::bigint[])"
OUTBOXES_PER_STATEMENT = 10_000


@dataclass(slots=True)
class OutboxRow:
    """A waiting job row as the outbox needs it; `attempt` is the row's (attempts started so far).

    `outbox_id`: the job_outbox row that stands for the row's message (its `enqueued_at` is set already); None when
    `enqueued_at IS NULL` does and the row is marked once confirmed.

    Not frozen, though nothing changes it once made: a frozen dataclass sets each of its ten fields through
    `object.__setattr__`, and the gateway makes one per submitted job (from_record 1.66 -> 0.65 µs a row of a
    1,000-row insert).
    """

    id: int
    attempt: int
    queue: str
    kind: str
    priority: int
    delay_s: float
    due_ms: int
    request_id: str | None = None
    generation: int = 0
    outbox_id: int | None = None

    # Both build their dataclass with positional arguments, in field order: with keywords a frozen dataclass took
    # half as long again (from_record 1.9 -> 1.3 µs, message 1.2 -> 0.9 µs, timeit), and every published job pays
    # for both.
    @classmethod
    def from_record(cls, record: asyncpg.Record) -> OutboxRow:
        return cls(
            record["id"],
            record["attempt"],
            record["queue"],
            record["kind"],
            record["priority"],
            record["delay_s"],
            record["due_ms"],
            record["request_id"],
            record["generation"],
            record.get("outbox_id"),
        )

    def message(self) -> JobMessage:
        return JobMessage(
            self.id,
            self.attempt + 1,
            self.queue,
            self.kind,
            self.priority,
            self.due_ms if self.delay_s > 0 else 0,
            self.request_id,
            self.generation,
        )

    def member(self) -> dict[str, Any]:
        """The row's job inside a group message (due now)."""
        return member_fields(self.id, self.attempt + 1, self.kind, self.request_id, self.generation)


async def publish_rows(
    broker: Broker,
    pool: asyncpg.Pool,
    rows: Sequence[OutboxRow],
    metrics: Metrics | None = None,
    marks: Marks | None = None,
) -> int:
    """Publish rows (confirms pipelined), record the confirmed ones; returns how many were confirmed.

    The confirmed rows are marked (or their outbox rows deleted) now, or by `marks` a little later (most of them
    claimed by then: no write). Every row of an outbox row must be in the same call: it is deleted once they are all
    confirmed.

    Rows due now travel in groups of one queue and priority (GLEANER_GROUP_MAX_JOBS a message); delayed rows each
    get their own message through the delay levels. Never waits for a broker that is down. Unconfirmed rows keep
    their record and get `publish_failed` (or their outbox row `failed`), so the scheduler's relay publishes them as
    soon as the broker is back. A crash between confirm and mark only costs a duplicate message, which the fenced
    claim drops.
    """
    if not rows:
        return 0
    started = time.monotonic()
    planned = envelopes(rows, broker.config.group_max_jobs)
    confirmed = await broker.publish_many(
        [(envelope, _remaining(rows[members[0]], started)) for envelope, members in planned]
    )
    done = [rows[i] for (_, members), ok in zip(planned, confirmed, strict=True) if ok for i in members]
    failed = [rows[i] for (_, members), ok in zip(planned, confirmed, strict=True) if not ok for i in members]
    to_mark, confirmed_outboxes = _by_record(done)
    unpublished, failed_outboxes = _by_record(failed)
    confirmed_outboxes -= failed_outboxes
    if marks is not None:
        marks.add(to_mark, confirmed_outboxes)
    else:
        await mark(pool, MARK_ENQUEUED, to_mark)
        if confirmed_outboxes:
            await pool.execute(DELETE_OUTBOX, sorted(confirmed_outboxes))
    if unpublished:
        await mark(pool, MARK_UNPUBLISHED, unpublished)
    if failed_outboxes:
        await pool.execute(OUTBOX_FAILED, sorted(failed_outboxes))
    if metrics is not None:
        _count(metrics, planned, confirmed, done, len(failed))
    return len(done)


def _by_record(rows: Sequence[OutboxRow]) -> tuple[list[OutboxRow], set[int]]:
    """The rows marked on `jobs` and the outbox rows standing for the others (pure)."""
    return [r for r in rows if r.outbox_id is None], {r.outbox_id for r in rows if r.outbox_id is not None}


def envelopes(rows: Sequence[OutboxRow], max_jobs: int) -> list[tuple[Envelope, list[int]]]:
    """The messages for `rows` (pure): each with the indexes of the rows it carries, in first-row order.

    Rows due now are grouped by queue and priority, at most `max_jobs` a group; a group of one is a plain version 1
    message, which any worker reads. Delayed rows stay one a message (each waits in its own delay levels).
    """
    planned: list[list[int]] = []
    open_groups: dict[tuple[str, int], list[int]] = {}
    for index, row in enumerate(rows):
        if row.delay_s > 0 or max_jobs == 1:
            planned.append([index])
            continue
        members = open_groups.get((row.queue, row.priority))
        if members is None or len(members) == max_jobs:
            members = open_groups[(row.queue, row.priority)] = [index]
            planned.append(members)  # its envelope is made below, once the group is complete
        else:
            members.append(index)
    return [(_envelope(rows, members), members) for members in planned]


def _envelope(rows: Sequence[OutboxRow], members: list[int]) -> Envelope:
    first = rows[members[0]]
    if len(members) == 1:
        return first.message()
    return PackedGroup.of(first.queue, first.priority, [rows[i].member() for i in members])


_QUEUE = attrgetter("queue")


def _count(
    metrics: Metrics,
    planned: Sequence[tuple[Envelope, list[int]]],
    confirmed: Sequence[bool],
    done: Sequence[OutboxRow],
    failed: int,
) -> None:
    # one labelled increment per queue, not per row: labels() takes a lock and a lookup each time (1.24 -> 0.05 µs
    # a row of a 1,000-row publish, timeit)
    for queue, count in Counter(map(_QUEUE, done)).items():
        metrics.enqueued.labels(queue).inc(count)
    for (envelope, _), ok in zip(planned, confirmed, strict=True):
        if ok:
            metrics.job_messages.labels(envelope.queue).inc()
    if failed:
        metrics.publish_failures.inc(failed)


async def mark(pool: asyncpg.Pool, statement: str, rows: Sequence[OutboxRow]) -> None:
    """Record a publish outcome (MARK_ENQUEUED or MARK_UNPUBLISHED) on rows; a lost lock race is written again."""

    async def write(part: Sequence[OutboxRow]) -> list[None]:
        await pool.execute(statement, [r.id for r in part], [r.attempt for r in part], [r.generation for r in part])
        return [None] * len(part)

    if rows:
        await write_isolated(write, rows)


class Marks:
    """What confirms leave to record, gathered across publishes for `delay_s`: one statement a flush (or a few).

    Confirmed rows: in a flowing system a worker claims a row within milliseconds of its confirm; by the time of the
    flush the row has left the waiting states and MARK_ENQUEUED only reads it (no lock, no write). A row still
    waiting is marked, well within the relay's grace, so the relay does not publish it again. Confirmed outbox rows
    (whole submissions): deleted by one DELETE a flush, however many statements they stand for. Lost marks (a crash,
    a failed flush, more than MAX_MARKS waiting) cost a duplicate message after the grace, which the fenced claim
    drops.
    """

    def __init__(self, pool: asyncpg.Pool, delay_s: float) -> None:
        self._pool = pool
        self._delay_s = delay_s
        self._pending: list[OutboxRow] = []
        self._outboxes: list[int] = []
        self._wake = asyncio.Event()
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def add(self, rows: Sequence[OutboxRow], outbox_ids: Iterable[int] = ()) -> None:
        """Confirmed rows to mark, and confirmed outbox rows to delete."""
        self._pending.extend(_room(self._pending, rows, "rows"))
        self._outboxes.extend(_room(self._outboxes, sorted(outbox_ids), "outbox rows"))
        if self._pending or self._outboxes:
            self._wake.set()

    def start(self) -> None:
        self._closing.clear()
        self._task = asyncio.create_task(self._run(), name="marks")

    async def _run(self) -> None:
        while not self._closing.is_set():
            await self._wake.wait()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self._delay_s)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Delete every pending outbox row and mark every pending row now (one statement per
        OUTBOXES_PER_STATEMENT ids or MARKS_PER_STATEMENT rows)."""
        while self._outboxes:
            ids, self._outboxes = self._outboxes[:OUTBOXES_PER_STATEMENT], self._outboxes[OUTBOXES_PER_STATEMENT:]
            try:
                await self._pool.execute(DELETE_OUTBOX, sorted(ids))
            except Exception as exc:  # noqa: BLE001 - the relay publishes their rows again after its grace
                log.warning("deleting %d confirmed outbox rows failed, the relay will publish again: %r", len(ids), exc)
        while self._pending:
            rows, self._pending = self._pending[:MARKS_PER_STATEMENT], self._pending[MARKS_PER_STATEMENT:]
            try:
                await mark(self._pool, MARK_ENQUEUED, rows)
            except Exception as exc:  # noqa: BLE001 - the rows stay unmarked; the relay publishes them after its grace
                log.warning("marking %d confirmed rows failed, the relay will publish them again: %r", len(rows), exc)

    async def close(self) -> None:
        """Record what is pending, then stop."""
        self._closing.set()
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.flush()


def _room(pending: Sequence[T], new: Sequence[T], what: str) -> Sequence[T]:
    """What of `new` fits beside `pending` within MAX_MARKS; the rest is left to the relay."""
    room = max(0, MAX_MARKS - len(pending))
    if len(new) > room:
        log.warning("%d confirmed %s wait for their marker; leaving %d to the relay", MAX_MARKS, what, len(new) - room)
    return new[:room]


def _remaining(row: OutboxRow, started: float) -> float:
    """The delay left, minus time spent since the row was read (so a slow batch does not add lag)."""
    return max(0.0, row.delay_s - (time.monotonic() - started))
