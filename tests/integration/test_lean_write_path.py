"""The write path of `jobs` (migration 0038): plans that stay primary-key lookups on a long history, rollups that
follow every kind of update, attempts that go with their jobs, and a migration that applies on top of 0037."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from bench.plans import statement_plans
from bench.scale import load_history
from gleaner.shared.migrate import INSERT_APPLIED, load_migrations, migrate
from tests.support.services import PG_ADMIN, drop_database, dsn_for, require_services, unique

# the jobs' finished rows as job_minutes counts them: a row counts exactly while it is finished
FINISHED_BY_KEY = """
SELECT date_trunc('minute', finished_at) AS minute, COALESCE(site, '') AS site, kind, state,
       job_minutes_bucket(attempt_started_at, finished_at, state) AS bucket, count(*) AS jobs
FROM jobs WHERE finished_at IS NOT NULL AND state IN ('succeeded', 'partial', 'failed', 'cancelled')
GROUP BY 1, 2, 3, 4, 5
"""
ROLLUP = "SELECT minute, site, kind, state, bucket, jobs FROM job_minutes WHERE jobs <> 0"
SUBMIT = """
INSERT INTO jobs (kind, queue, state, site, attempt, attempt_started_at)
SELECT 'noop', 'default', 'queued', CASE WHEN i % 3 = 0 THEN 'example.org' END, 1, now() - interval '2 seconds'
FROM generate_series(1, $1) AS i RETURNING id
"""
FINISH = "UPDATE jobs SET state = $2, finished_at = now() WHERE id = ANY($1::bigint[])"


def _counts(rows: list[asyncpg.Record]) -> set[tuple[object, ...]]:
    return {tuple(r) for r in rows}


async def test_the_rollups_count_exactly_the_finished_rows_through_finishes_requeues_edits_and_deletes(
    db: asyncpg.Pool,
) -> None:
    ids = [r["id"] for r in await db.fetch(SUBMIT, 30)]
    await db.execute(FINISH, ids[:20], "succeeded")
    await db.execute(FINISH, ids[20:25], "failed")
    # edits of finished rows that keep their key, claims of waiting ones: nothing to count
    await db.execute("UPDATE jobs SET resolved_at = now() WHERE id = ANY($1::bigint[])", ids[20:25])
    await db.execute("UPDATE jobs SET state = 'running' WHERE id = ANY($1::bigint[])", ids[25:])
    assert await db.fetchval("SELECT sum(jobs) FROM job_minutes") == 25
    # a requeue takes rows out, a re-finish in another state moves them, a delete takes them away
    await db.execute("UPDATE jobs SET state = 'queued', finished_at = NULL WHERE id = ANY($1::bigint[])", ids[:4])
    await db.execute("UPDATE jobs SET state = 'cancelled' WHERE id = ANY($1::bigint[])", ids[4:8])
    await db.execute("DELETE FROM jobs WHERE id = ANY($1::bigint[])", ids[8:12])
    assert await db.fetchval("SELECT sum(jobs) FROM job_minutes") == 17
    assert _counts(await db.fetch(ROLLUP)) == _counts(await db.fetch(FINISHED_BY_KEY))


async def test_a_deleted_job_takes_its_attempts_and_only_its_own(db: asyncpg.Pool) -> None:
    ids = [r["id"] for r in await db.fetch(SUBMIT, 3)]
    await db.execute(FINISH, ids, "failed")
    await db.execute(
        "INSERT INTO job_attempts (job_id, attempt, outcome) SELECT id, a, 'failed' FROM unnest($1::bigint[]) AS id, "
        "generate_series(1, 2) AS a",
        ids,
    )
    await db.execute("DELETE FROM jobs WHERE id = ANY($1::bigint[])", ids[:2])
    assert await db.fetch("SELECT job_id, attempt FROM job_attempts ORDER BY 1, 2") == [(ids[2], 1), (ids[2], 2)]


async def test_a_schedule_slot_holds_one_job_per_fan_out_value_and_unscheduled_jobs_never_conflict(
    db: asyncpg.Pool,
) -> None:
    slot = (
        "INSERT INTO jobs (kind, queue, state, schedule_id, scheduled_for, fan_index) "
        "VALUES ('noop', 'default', 'queued', $1, '2026-01-01', $2)"
    )
    schedule = await db.fetchval("SELECT min(id) FROM schedules")
    await db.execute(slot, schedule, 0)
    await db.execute(slot, schedule, 1)
    with pytest.raises(asyncpg.UniqueViolationError):
        await db.execute(slot, schedule, 1)
    unscheduled = (
        "INSERT INTO jobs (kind, queue, state) VALUES ('noop', 'default', 'queued'), ('noop', 'default', 'queued')"
    )
    await db.execute(unscheduled)
    assert await db.fetchval("SELECT count(*) FROM jobs") == 4


@pytest.fixture
async def database_at_0037() -> AsyncIterator[str]:
    """A database migrated up to 0037 only, as a deployment of the previous release left it."""
    require_services()
    name = await create_database_at(37)
    try:
        yield dsn_for(name)
    finally:
        await drop_database(name)


async def create_database_at(version: int) -> str:
    name = unique("gleaner_t_")
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    connection = await asyncpg.connect(dsn_for(name))
    try:
        await connection.execute(
            "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, "
            "applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for migration in load_migrations():
            if migration.version <= version:
                async with connection.transaction():
                    await connection.execute(migration.sql)
                    await connection.execute(INSERT_APPLIED, migration.version, migration.name, migration.checksum)
    finally:
        await connection.close()
    return name


async def test_migration_0038_applies_on_a_0037_history_and_keeps_its_counts_slots_and_attempts(
    database_at_0037: str,
) -> None:
    connection = await asyncpg.connect(database_at_0037)
    try:
        ids = [r["id"] for r in await connection.fetch(SUBMIT, 10)]
        await connection.execute(FINISH, ids, "succeeded")
        schedule = await connection.fetchval("SELECT min(id) FROM schedules")
        slot = "UPDATE jobs SET schedule_id = $2, scheduled_for = '2026-01-01' WHERE id = $1"
        await connection.execute(slot, ids[0], schedule)
        await connection.execute(
            "INSERT INTO job_attempts (job_id, attempt, outcome) SELECT id, 1, 'succeeded' FROM jobs"
        )
        assert (await migrate(database_at_0037))[0] == "0038_lean_write_path.sql"
        with pytest.raises(asyncpg.UniqueViolationError):
            await connection.execute(
                "INSERT INTO jobs (kind, queue, state, schedule_id, scheduled_for) "
                "VALUES ('noop', 'default', 'queued', $1, '2026-01-01')",
                schedule,
            )
        await connection.execute(
            "UPDATE jobs SET state = 'queued', finished_at = NULL WHERE id = ANY($1::bigint[])", ids[:3]
        )
        await connection.execute("DELETE FROM jobs WHERE id = ANY($1::bigint[])", ids[3:5])
        assert await connection.fetchval("SELECT sum(jobs) FROM job_minutes") == 5
        assert await connection.fetchval("SELECT count(*) FROM job_attempts") == 8
    finally:
        await connection.close()


async def test_on_a_long_analyzed_history_the_hot_statements_reach_jobs_by_primary_key_or_a_partial_index(
    db: asyncpg.Pool, database_url: str
) -> None:
    # vacuumed and analyzed with nothing waiting: the statistics say the waiting and running indexes are empty
    await load_history(db, 100_000, 7.0)
    plans = {plan.name: plan.scans for plan in await statement_plans(database_url)}
    for name in ("mark", "claim", "finish"):
        assert plans[name] == ("Index Scan using jobs_pkey on jobs",), (name, plans[name])
    assert plans["relay"] == ("Index Scan using jobs_unenqueued on jobs",)
    assert "Index Scan using jobs_pkey on jobs" in plans["relay outbox"], plans["relay outbox"]
    assert not [scan for scan in plans["relay outbox"] if scan.endswith(" on jobs") and "jobs_pkey" not in scan]
    assert plans["reaper"] == ("Index Scan using jobs_leases on jobs",)
    # the reap never reads the waiting rows (jobs_waiting), nor the table
    assert set(plans["reap"]) <= {"Index Scan using jobs_leases on jobs", "Index Scan using jobs_pkey on jobs"}
    # job_outbox holds the submissions in flight only (a few rows, hundreds under load): read whole, it costs nothing
    seq_scans = [scan for scans in plans.values() for scan in scans if scan.startswith("Seq Scan")]
    assert [scan for scan in seq_scans if scan != "Seq Scan on job_outbox"] == [], plans


async def test_on_a_fresh_table_the_claim_and_the_finish_reach_jobs_by_primary_key(database_url: str) -> None:
    # their UPDATE takes the rows in the order the primary-key lookups meet them (the ids sorted): a scan of the
    # table, which a planner may like for a small one, would take them in the table's order instead
    plans = {plan.name: plan.scans for plan in await statement_plans(database_url)}
    for name in ("claim", "finish"):
        assert plans[name] == ("Index Scan using jobs_pkey on jobs",), (name, plans[name])
