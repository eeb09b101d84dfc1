"""A worker killed (SIGKILL) in the middle of releasing 500 dependents: each dependent still runs exactly once.

The test holds a row lock on one dependent, so the worker's finish of their dependency stops inside the release
(the trigger has locked the dependents before it), then kills the worker there. Either the database rolls the
release back with the outcome (the dependency runs again once its lease expires, and releases then) or it commits
it after the client is gone (the relay publishes the released rows); both are checked.
"""

from __future__ import annotations

import asyncpg
import pytest

from tests.support.stack import Api, Stack, eventually

DEPENDENTS = 500


@pytest.fixture
def extra_env() -> dict[str, str]:
    return {"GLEANER_QUEUES": "default,gate", "GLEANER_LEASE_S": "3"}


async def blocked_finish(db: asyncpg.Connection) -> int | None:
    """The pid of a backend waiting for a lock in this database (the worker's finish), if any."""
    pid: int | None = await db.fetchval(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' LIMIT 1"
    )
    return pid


@pytest.mark.parametrize("ending", ["rolled_back", "committed"])
async def test_a_worker_killed_mid_release_of_500_dependents_runs_each_once(
    stack: Stack, gateway_api: Api, db: asyncpg.Connection, database_url: str, ending: str
) -> None:
    status, gate = await gateway_api.request(
        "POST", "/jobs", json={"kind": "sleep", "payload": {"seconds": 0.5}, "queue": "gate", "retry_base_s": 0.1}
    )
    assert status == 202
    jobs = [{"kind": "noop", "depends_on": [gate["id"]]}] * DEPENDENTS
    status, batch = await gateway_api.request("POST", "/jobs/batch", json={"jobs": jobs})
    assert status == 202
    ids = [j["id"] for j in batch["jobs"]]
    holder = await asyncpg.connect(database_url)
    try:
        hold = holder.transaction()
        await hold.start()
        await holder.execute("SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE", ids[DEPENDENTS // 2])
        await stack.start("worker", GLEANER_WORKER_QUEUES="default", GLEANER_WORKER_CONCURRENCY="32")
        await stack.start("scheduler")
        victim = await stack.start("worker", GLEANER_WORKER_QUEUES="gate")
        pid = await eventually(lambda: blocked_finish(db), timeout_s=30, interval_s=0.05, what="a finish mid-release")
        victim.kill()
        if ending == "rolled_back":
            await db.execute("SELECT pg_terminate_backend($1)", pid)
        await hold.rollback()
    finally:
        await holder.close()
    if ending == "rolled_back":
        await stack.start("worker", GLEANER_WORKER_QUEUES="gate")

    async def all_done() -> bool:
        count = await db.fetchval("SELECT count(*) FROM jobs WHERE id = ANY($1::bigint[]) AND state = 'succeeded'", ids)
        return bool(count == DEPENDENTS)

    await eventually(all_done, timeout_s=120, interval_s=0.5, what="every dependent succeeded")
    runs = await db.fetch(
        "SELECT job_id, count(*) AS n FROM job_attempts WHERE job_id = ANY($1::bigint[]) GROUP BY job_id", ids
    )
    assert len(runs) == DEPENDENTS and {r["n"] for r in runs} == {1}
    gate_attempts = await db.fetchval("SELECT count(*) FROM job_attempts WHERE job_id = $1", gate["id"])
    assert gate_attempts == (2 if ending == "rolled_back" else 1)
