"""Grouped statements against the real PostgreSQL: rows locked in one order, one bad row failing only itself."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from gleaner.services.gateway.insert_lanes import InsertLanes
from gleaner.services.gateway.job_store import NewJob, insert_jobs
from gleaner.services.worker.app import POINT_LOOKUPS
from gleaner.services.worker.claims import JobStore
from gleaner.shared.amqp import Broker
from gleaner.shared.db import init_connection
from gleaner.shared.outbox import MARK_ENQUEUED, OutboxRow, mark
from gleaner.shared.submission import JobSpec
from tests.integration.test_worker_lifecycle import insert_jobs as insert_rows
from tests.integration.test_worker_lifecycle import publish, wait_final
from tests.support.stack import Stack, eventually

REPO_ROOT = str(Path(__file__).resolve().parents[2])


@pytest.fixture
async def worker_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool planned like the worker's (point lookups: nested loops only)."""
    pool = await asyncpg.create_pool(
        database_url, min_size=1, max_size=4, init=init_connection, server_settings=POINT_LOOKUPS
    )
    assert pool is not None
    yield pool
    await pool.close()


async def queued_jobs(db: asyncpg.Pool, count: int) -> list[int]:
    # filler rows first, so the planner reads `jobs` by primary key as it does on a real table
    await db.execute(
        "INSERT INTO jobs (kind, queue, state) SELECT 'noop', 'default', 'succeeded' FROM generate_series(1, 2000)"
    )
    rows = await db.fetch(
        "INSERT INTO jobs (kind, queue, state) SELECT 'noop', 'default', 'queued' FROM generate_series(1, $1) "
        "RETURNING id",
        count,
    )
    await db.execute("ANALYZE jobs")
    return sorted(r["id"] for r in rows)


async def lock_waiters(db: asyncpg.Pool) -> int:
    return int(
        await db.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
    )


async def deadlocks(db: asyncpg.Pool) -> int:
    return int(await db.fetchval("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"))


async def with_row_held(db: asyncpg.Pool, sql: str, *args: Any) -> tuple[asyncpg.Connection, Any]:
    """A transaction that holds what `sql` locks until the caller rolls it back."""
    connection = await db.acquire()
    transaction = connection.transaction()
    await transaction.start()
    await connection.execute(sql, *args)
    return connection, transaction


async def started_and_waiting(coroutine: Awaitable[Any], db: asyncpg.Pool, waiters: int) -> asyncio.Task[Any]:
    """Start `coroutine`; return once it waits for a lock (`waiters` sessions wait in all) or has finished."""
    task: asyncio.Task[Any] = asyncio.ensure_future(coroutine)

    async def waiting() -> bool:
        return task.done() or await lock_waiters(db) >= waiters

    await eventually(waiting, what="a statement waiting for a row lock")
    return task


async def test_a_claim_and_an_enqueue_marker_taking_the_same_rows_in_opposite_orders_do_not_deadlock(
    db: asyncpg.Pool, worker_pool: asyncpg.Pool
) -> None:
    a, b, c = await queued_jobs(db, 3)
    before = await deadlocks(db)
    # hold c, so the claim stops between its rows; then the marker comes from the other side
    holder, hold = await with_row_held(db, "SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE", c)
    store = JobStore(worker_pool, "w1", lease_s=30)
    claim = await started_and_waiting(store.claim([(a, 1, 0), (c, 1, 0), (b, 1, 0)]), db, 1)
    rows = [
        OutboxRow(id=job_id, attempt=0, queue="default", kind="noop", priority=0, delay_s=0, due_ms=0)
        for job_id in (b, a)
    ]
    marker = await started_and_waiting(mark(db, MARK_ENQUEUED, rows), db, 2)
    await hold.rollback()
    await db.release(holder)
    claimed, _ = await asyncio.gather(claim, marker)
    assert [c.job.id if c else None for c in claimed] == [a, c, b]
    assert await deadlocks(db) == before


def spec(dedupe_key: str | None) -> JobSpec:
    return JobSpec(
        kind="noop",
        payload={},
        queue="default",
        priority=0,
        max_attempts=3,
        timeout_s=30.0,
        retry_base_s=1.0,
        retry_cap_s=60.0,
        run_at=None,
        delay_s=None,
        site=None,
        dedupe_key=dedupe_key,
    )


async def test_concurrent_inserts_of_the_same_dedupe_keys_in_opposite_orders_do_not_deadlock(db: asyncpg.Pool) -> None:
    before = await deadlocks(db)
    # an uncommitted insert of key c makes the first group stop between its keys
    holder, hold = await with_row_held(
        db, "INSERT INTO jobs (kind, queue, state, dedupe_key) VALUES ('noop', 'default', 'queued', 'c')"
    )
    first = await started_and_waiting(insert_jobs(db, [NewJob(spec(k), None) for k in "acb"]), db, 1)
    second = await started_and_waiting(insert_jobs(db, [NewJob(spec(k), None) for k in "ba"]), db, 2)
    await hold.rollback()
    await db.release(holder)
    inserted, duplicates = await asyncio.gather(first, second)
    assert [r["dedupe_key"] if r else None for r in inserted] == ["a", "c", "b"]
    assert duplicates == [None, None]
    assert await deadlocks(db) == before


async def test_a_submission_postgres_refuses_fails_alone_and_its_group_is_inserted(db: asyncpg.Pool) -> None:
    lanes = InsertLanes(lambda items: insert_jobs(db, items), lanes=1, window_s=0.05, max_items=100)
    lanes.start()
    jobs = [NewJob(spec(None), None) for _ in range(20)]
    jobs[13] = NewJob(dataclasses.replace(spec(None), payload={"text": "a\x00b"}), None)
    outcomes = await asyncio.gather(*(lanes.submit(job) for job in jobs), return_exceptions=True)
    await lanes.close()
    assert isinstance(outcomes[13], asyncpg.exceptions.UntranslatableCharacterError)
    inserted = [o for i, o in enumerate(outcomes) if i != 13]
    assert all(isinstance(o, asyncpg.Record) for o in inserted)
    assert await db.fetchval("SELECT count(*) FROM jobs") == 19


async def test_a_result_postgres_refuses_fails_its_own_job_and_the_jobs_finishing_with_it_succeed(
    stack: Stack, db: asyncpg.Pool, broker: Broker
) -> None:
    await stack.start("worker", GLEANER_HANDLER_MODULES="tests.integration.refused_handlers", PYTHONPATH=REPO_ROOT)
    good = await insert_rows(db, 30, "sleep", {"seconds": 0.3})
    [bad] = await insert_rows(db, 1, "test.nul_result", {"seconds": 0.3})
    await publish(db, broker, [*good, bad])
    jobs = await wait_final(db, [*good, bad])
    assert {jobs[i]["state"] for i in good} == {"succeeded"}
    assert (jobs[bad]["state"], jobs[bad]["error"]["class"]) == ("failed", "result_refused")
    attempts = await db.fetch("SELECT job_id, attempt, outcome FROM job_attempts WHERE job_id = ANY($1)", [*good, bad])
    assert sorted((r["job_id"], r["attempt"]) for r in attempts) == [(i, 1) for i in sorted([*good, bad])]
