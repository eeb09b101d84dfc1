"""The configured retention governs the scheduler's pruner and the default maintenance schedules' jobs alike.

Issue 11: the system maintenance.prune schedule hard-coded 30 days, so with GLEANER_RETENTION_DAYS=90 — or 0,
"keep forever" — a 40-day-old job was deleted; maintenance.prune_results removed results after a fixed 7 days.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from tests.support.stack import Api, Stack, eventually

# (GLEANER_RETENTION_DAYS, GLEANER_RESULT_RETENTION_DAYS)
SETTINGS = [("90", "30"), ("0", "0")]
FINISHED = """
INSERT INTO jobs (kind, queue, state, result, finished_at)
VALUES ('noop', 'default', 'succeeded', '{"kept": true}', now() - make_interval(days => $1)) RETURNING id
"""


@pytest.fixture(params=SETTINGS, ids=lambda s: f"retention-{s[0]}-results-{s[1]}")
def extra_env(request: pytest.FixtureRequest) -> dict[str, str]:
    jobs, results = request.param
    return {
        "GLEANER_RETENTION_DAYS": jobs,
        "GLEANER_RESULT_RETENTION_DAYS": results,
        "GLEANER_PRUNE_INTERVAL_S": "0.5",
    }


async def run_system_schedule(api: Api, name: str) -> dict[str, Any]:
    """Fire the default maintenance schedule `name` now and wait for the worker to finish its job."""
    status, listing = await api.request("GET", "/schedules")
    assert status == 200
    [schedule] = [s for s in listing["schedules"] if s["name"] == name and s["source"] == "system"]
    status, job = await api.request("POST", f"/schedules/{schedule['id']}/trigger")
    assert status == 202, job
    finished = await api.job(job["id"], wait=30)
    assert finished["state"] == "succeeded", finished
    return finished


async def test_a_forty_day_old_job_survives_the_pruner_and_the_maintenance_jobs_under_the_configured_retention(
    stack: Stack, db: asyncpg.Connection, api_factory: type[Api], extra_env: dict[str, str]
) -> None:
    keep_days = float(extra_env["GLEANER_RETENTION_DAYS"])
    forty, hundred = await db.fetchval(FINISHED, 40), await db.fetchval(FINISHED, 100)
    # a two-day-old idempotency key: the pruner removes it on every pass, which shows a pass ran
    await db.execute(
        "INSERT INTO idempotency_keys (key, principal, request_hash, job_ids, status, created_at) "
        "VALUES ('k', 'p', 'h', '{}', 202, now() - interval '2 days')"
    )
    await stack.start("scheduler")

    async def pruner_passed() -> bool:
        return await db.fetchval("SELECT count(*) FROM idempotency_keys") == 0

    await eventually(pruner_passed, timeout_s=20, what="a pruner pass")
    api = api_factory((await stack.start("gateway")).url)
    await stack.start("worker")
    pruned = await run_system_schedule(api, "maintenance.prune")
    results = await run_system_schedule(api, "maintenance.prune_results")

    rows = {
        r["id"]: r["result"] for r in await db.fetch("SELECT id, result FROM jobs WHERE id = ANY($1)", [forty, hundred])
    }
    assert forty in rows, "a 40-day-old job outlives a retention of 90 days, and of 0 (forever)"
    assert (hundred in rows) == (keep_days == 0), "100 days: pruned at 90, kept forever at 0"
    assert pruned["payload"] == {} and pruned["result"]["retention_days"] == keep_days
    results_days = float(extra_env["GLEANER_RESULT_RETENTION_DAYS"])
    assert results["result"]["retention_days"] == results_days
    assert (rows[forty] is None) == (0 < results_days < 40), "results follow their own setting"
