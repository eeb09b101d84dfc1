"""Leases against the real PostgreSQL: the heartbeat renews only what the process runs, never an expired lease."""

from __future__ import annotations

import asyncpg

from gleaner.services.worker.claims import JobStore
from gleaner.shared.amqp import Broker
from tests.integration.test_worker_lifecycle import submit, wait_final, wait_running
from tests.support.fault_rig import metric
from tests.support.stack import Stack, eventually


async def test_the_heartbeat_renews_only_the_attempts_it_is_given_and_never_a_lease_that_ran_out(
    db: asyncpg.Pool,
) -> None:
    rows = await db.fetch(
        "INSERT INTO jobs (kind, queue, state) SELECT 'noop', 'default', 'queued' FROM generate_series(1, 3) "
        "RETURNING id"
    )
    running, abandoned, expired = sorted(r["id"] for r in rows)
    store = JobStore(db, "w1", lease_s=30)
    await store.claim([(running, 1, 0), (abandoned, 1, 0), (expired, 1, 0)])
    # `abandoned`'s flow is gone (this process no longer runs it); `expired` outlived its lease
    await db.execute("UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE id = $1", expired)
    await db.execute("UPDATE jobs SET lease_expires_at = now() + interval '5 seconds' WHERE id = $1", abandoned)
    before = {r["id"]: r["lease_expires_at"] for r in await db.fetch("SELECT id, lease_expires_at FROM jobs")}

    renewed = await store.heartbeat([(running, 1), (expired, 1)])

    assert renewed == {(running, 1): False}
    after = {r["id"]: r["lease_expires_at"] for r in await db.fetch("SELECT id, lease_expires_at FROM jobs")}
    assert after[running] > before[running]
    assert after[abandoned] == before[abandoned]
    assert after[expired] == before[expired]


async def test_a_job_whose_lease_ran_out_is_left_to_the_reaper_and_never_ends_cancelled(
    stack: Stack, db: asyncpg.Pool, broker: Broker
) -> None:
    worker = await stack.start("worker")
    [job_id] = await submit(db, broker, 1, "sleep", {"seconds": 3}, max_attempts=3, retry_base_s=0.1)
    await wait_running(db, [job_id])

    async def handler_running() -> bool:
        return await metric(worker, "gleaner_jobs_in_progress") == 1

    await eventually(handler_running, what="the handler running")
    # the lease runs out (a database outage longer than the lease would do it): no heartbeat brings it back
    await db.execute("UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE id = $1", job_id)

    async def handler_ended() -> bool:
        return await metric(worker, "gleaner_jobs_in_progress") == 0

    await eventually(handler_ended, timeout_s=6, what="the worker's handler to end")
    row = await db.fetchrow("SELECT state, lease_expires_at < now() AS expired FROM jobs WHERE id = $1", job_id)
    assert (row["state"], row["expired"]) == ("running", True)
    assert await db.fetchval("SELECT count(*) FROM job_attempts WHERE job_id = $1", job_id) == 0

    await stack.start("scheduler")  # its reaper records the lost attempt and retries the job
    job = (await wait_final(db, [job_id], timeout_s=20))[job_id]
    assert job["state"] == "succeeded"
    outcomes = await db.fetch("SELECT attempt, outcome FROM job_attempts WHERE job_id = $1 ORDER BY attempt", job_id)
    assert [(r["attempt"], r["outcome"]) for r in outcomes] == [(1, "lost"), (2, "succeeded")]
