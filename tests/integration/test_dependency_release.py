"""The release trigger against real PostgreSQL: dependencies ending at the same moment release a job once, a partial
dependency counts per `allow_partial`, and a job that depends on nothing pays no trigger."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from gleaner.shared import workflows
from gleaner.shared.config import Config
from gleaner.shared.submission import JobSpec, parse_one
from tests.support.stack import eventually

# a test-only audit of every move of a job into `queued`: a double release would show as two rows
AUDIT = """
CREATE TABLE released (job_id bigint NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE FUNCTION audit_release() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO released (job_id) VALUES (NEW.id);
    RETURN NULL;
END $$;
CREATE TRIGGER audit_release AFTER UPDATE OF state ON jobs FOR EACH ROW
    WHEN (NEW.state = 'queued' AND OLD.state = 'blocked') EXECUTE FUNCTION audit_release();
"""
INSERT = "INSERT INTO jobs (kind, queue, state) SELECT 'noop', 'default', $1 FROM generate_series(1, $2) RETURNING id"
FINISH = "UPDATE jobs SET state = $2, finished_at = now() WHERE id = $1"


async def lock_waits(db: asyncpg.Pool) -> bool:
    query = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    return bool(await db.fetchval(query))


async def dependent_of(db: asyncpg.Pool, dependencies: list[int], **options: object) -> int:
    """A new job waiting for `dependencies`, linked as the gateway links a submission."""
    async with db.acquire() as connection, connection.transaction():
        job_id: int = await connection.fetchval(INSERT, "queued", 1)
        link = workflows.Link(job_id, tuple(dependencies), **options)
        await workflows.link(connection, [link])
    return job_id


async def test_two_dependencies_ending_at_the_same_moment_release_the_job_once(db: asyncpg.Pool) -> None:
    await db.execute(AUDIT)
    first, second = [r["id"] for r in await db.fetch(INSERT, "running", 2)]
    job = await dependent_of(db, [first, second])
    one, other = await db.acquire(), await db.acquire()
    try:
        ending_one, ending_other = one.transaction(), other.transaction()
        await ending_one.start()
        await ending_other.start()
        await one.execute(FINISH, first, "succeeded")  # its trigger holds the job's row lock until commit
        waiting = asyncio.ensure_future(other.execute(FINISH, second, "succeeded"))
        await eventually(lambda: lock_waits(db), interval_s=0.02, what="the second release waiting for the lock")
        assert not waiting.done()
        await ending_one.commit()
        await waiting
        await ending_other.commit()
    finally:
        await db.release(one)
        await db.release(other)
    row = await db.fetchrow("SELECT state, blocked_on, publish_failed, enqueued_at FROM jobs WHERE id = $1", job)
    assert dict(row) == {"state": "queued", "blocked_on": 0, "publish_failed": True, "enqueued_at": None}
    assert await db.fetchval("SELECT count(*) FROM released WHERE job_id = $1", job) == 1


async def test_fifty_dependencies_ending_concurrently_release_the_job_once(db: asyncpg.Pool) -> None:
    await db.execute(AUDIT)
    dependencies = [r["id"] for r in await db.fetch(INSERT, "running", 50)]
    job = await dependent_of(db, dependencies)
    assert await db.fetchval("SELECT blocked_on FROM jobs WHERE id = $1", job) == 50
    await asyncio.gather(*(db.execute(FINISH, d, "succeeded") for d in dependencies))
    assert await db.fetchval("SELECT state FROM jobs WHERE id = $1", job) == "queued"
    assert await db.fetchval("SELECT count(*) FROM released WHERE job_id = $1", job) == 1


async def test_a_partial_dependency_cancels_unless_partial_is_allowed(db: asyncpg.Pool) -> None:
    first, second = [r["id"] for r in await db.fetch(INSERT, "running", 2)]
    strict = await dependent_of(db, [first])
    lenient = await dependent_of(db, [second], allow_partial=True)
    await db.execute(FINISH, first, "partial")
    await db.execute(FINISH, second, "partial")
    states = await db.fetch("SELECT id, state FROM jobs WHERE id = ANY($1::bigint[])", [strict, lenient])
    assert {r["id"]: r["state"] for r in states} == {strict: "cancelled", lenient: "queued"}


async def test_only_jobs_something_depends_on_carry_the_trigger_flag(db: asyncpg.Pool) -> None:
    plain, depended = [r["id"] for r in await db.fetch(INSERT, "running", 2)]
    await dependent_of(db, [depended])
    flags = await db.fetch("SELECT id, has_dependents FROM jobs WHERE id = ANY($1::bigint[])", [plain, depended])
    assert {r["id"]: r["has_dependents"] for r in flags} == {plain: False, depended: True}


def child(kind: str = "noop") -> JobSpec:
    return parse_one({"kind": kind}, Config.from_env({}))


async def test_children_are_fenced_on_the_parent_attempt_and_keyed_once(db: asyncpg.Pool) -> None:
    parent = await db.fetchval(
        "INSERT INTO jobs (kind, queue, state, attempt, lease_owner) VALUES ('noop', 'default', 'running', 1, 'w1') "
        "RETURNING id"
    )
    waiting = await dependent_of(db, [parent])
    running = workflows.Parent(parent, 1, "w1")
    first = await workflows.insert_children(db, running, [child(), child()], ["#0", "#1"])
    again = await workflows.insert_children(db, running, [child(), child(), child()], ["#0", "#1", "#2"])
    assert again[:2] == first and again[2] not in first
    for stale in (workflows.Parent(parent, 2, "w1"), workflows.Parent(parent, 1, "w2")):
        with pytest.raises(workflows.StaleParent):
            await workflows.insert_children(db, stale, [child()], ["#3"])
    rows = await db.fetch("SELECT id, parent_id, trigger, has_dependents FROM jobs WHERE parent_id = $1", parent)
    assert sorted(r["id"] for r in rows) == sorted(again)
    assert {(r["trigger"], r["has_dependents"]) for r in rows} == {("job", True)}
    # the job waiting for the parent waits for its three children too, and is released after all four
    assert await db.fetchval("SELECT blocked_on FROM jobs WHERE id = $1", waiting) == 4
    for job_id in [parent, *again]:
        await db.execute(FINISH, job_id, "succeeded")
    assert await db.fetchval("SELECT state FROM jobs WHERE id = $1", waiting) == "queued"
