"""Leases against the real PostgreSQL: the heartbeat renews only what the process runs, never an expired lease."""

from __future__ import annotations

import asyncpg

from services.worker.claims import JobStore


async def test_the_heartbeat_renews_only_the_attempts_it_is_given_and_never_a_lease_that_ran_out(
    db: asyncpg.Pool,
) -> None:
    rows = await db.fetch(
        "INSERT INTO jobs (kind, queue, state) SELECT 'noop', 'default', 'queued' FROM generate_series(1, 3) "
        "RETURNING id"
    )
    running, abandoned, expired = sorted(r["id"] for r in rows)
    store = JobStore(db, "w1", lease_s=30)
    await store.claim([(running, 1), (abandoned, 1), (expired, 1)])
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
