"""The maintenance kinds against a real database, and the default maintenance schedules."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from gleaner.services.worker.context import JobContext, JobInfo
from gleaner.services.worker.handlers import load_registry, maintenance
from gleaner.shared.config import Config
from gleaner.shared.db import create_pool
from gleaner.shared.errors import PermanentError


@pytest.fixture
async def pool(config: Config) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(config, min_size=1, max_size=2)
    yield pool
    await pool.close()


def context(pool: asyncpg.Pool, kind: str, payload: dict[str, Any]) -> JobContext:
    job = JobInfo(id=0, kind=kind, queue="default", attempt=1, max_attempts=1, payload=payload, site=None, timeout_s=60)
    return JobContext(job=job, log=logging.LoggerAdapter(logging.getLogger("test"), {}), db=pool)


async def add_job(pool: asyncpg.Pool, state: str, finished_days_ago: float | None) -> int:
    job_id: int = await pool.fetchval(
        "INSERT INTO jobs (kind, queue, state, result, finished_at) VALUES ('noop', 'default', $1, '{\"a\": 1}', "
        "CASE WHEN $2::float8 IS NULL THEN NULL ELSE now() - make_interval(days => $2::int) END) RETURNING id",
        state,
        finished_days_ago,
    )
    return job_id


async def test_prune_deletes_only_finished_jobs_past_retention_in_batches(pool: asyncpg.Pool) -> None:
    old = [await add_job(pool, "succeeded", 40) for _ in range(7)]
    old_failed = await add_job(pool, "failed", 31)
    await pool.execute("INSERT INTO job_attempts (job_id, attempt, outcome) VALUES ($1, 1, 'failed')", old_failed)
    recent = await add_job(pool, "succeeded", 2)
    waiting = await add_job(pool, "queued", None)
    result = await maintenance.prune(context(pool, "maintenance.prune", {"retention_days": 30, "batch": 3}))
    assert result["jobs"] == 8
    left = {r["id"] for r in await pool.fetch("SELECT id FROM jobs")}
    assert left == {recent, waiting}
    assert not set(old) & left
    assert await pool.fetchval("SELECT count(*) FROM job_attempts") == 0


async def test_prune_drops_per_minute_site_counters_past_retention_and_keeps_the_totals(pool: asyncpg.Pool) -> None:
    await pool.execute("INSERT INTO sites (name, requests_total) VALUES ('shop', 12)")
    for days_ago in (40, 31, 29, 0):
        await pool.execute(
            "INSERT INTO site_minutes (site, minute, requests) "
            "VALUES ('shop', date_trunc('minute', now()) - make_interval(days => $1), 3)",
            days_ago,
        )

    result = await maintenance.prune(context(pool, "maintenance.prune", {"retention_days": 30}))

    assert result["site_minutes"] == 2
    assert await pool.fetchval("SELECT sum(requests) FROM site_minutes") == 6
    assert await pool.fetchval("SELECT requests_total FROM sites WHERE name = 'shop'") == 12


async def test_prune_results_keeps_the_rows_and_drops_old_results(pool: asyncpg.Pool) -> None:
    old, recent = await add_job(pool, "succeeded", 10), await add_job(pool, "succeeded", 1)
    assert (await maintenance.prune_results(context(pool, "maintenance.prune_results", {})))["jobs"] == 1
    rows = {r["id"]: r["result"] for r in await pool.fetch("SELECT id, result FROM jobs")}
    assert rows == {old: None, recent: {"a": 1}}


async def test_analyze_runs_and_bad_payloads_fail_permanently(pool: asyncpg.Pool) -> None:
    assert (await maintenance.analyze(context(pool, "maintenance.analyze", {})))["analyzed"]
    with pytest.raises(PermanentError):
        await load_registry(Config()).get("maintenance.prune")(
            context(pool, "maintenance.prune", {"retention_days": -1})
        )


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        ("maintenance.prune", {"retention_days": 1e-9}),
        ("maintenance.prune", {"retention_days": 0}),
        ("maintenance.prune", {"retention_days": 0.5}),
        ("maintenance.prune", {"retention_days": 1e308}),
        ("maintenance.prune", {"retention_days": "30"}),
        ("maintenance.prune", {"retention_day": 30}),
        ("maintenance.prune", {"idempotency_hours": 0}),
        ("maintenance.prune", {"batch": 0}),
        ("maintenance.prune", [30]),
        ("maintenance.prune_results", {"retention_days": 1e-9}),
        ("maintenance.analyze", {"tables": ["api_keys"]}),
        ("maintenance.requeue_failed", {"rounds": 1e9}),
        ("maintenance.requeue_failed", {"min_age_s": -1}),
        ("maintenance.requeue_failed", {"limit": 10**6}),
        ("maintenance.requeue_failed", {"kind": "Not A Kind"}),
    ],
)
async def test_a_bad_maintenance_payload_fails_permanently_and_changes_nothing(
    pool: asyncpg.Pool, kind: str, payload: Any
) -> None:
    """Defence in depth: the gateway refuses these at submit, and the handler refuses them again."""
    old = await add_job(pool, "succeeded", 40)
    failed = await add_failed(pool, attempt=3)
    handler = load_registry(Config()).get(kind)
    with pytest.raises(PermanentError) as caught:
        await handler(context(pool, kind, payload))
    assert caught.value.error_class == "bad_payload"
    rows = {r["id"]: (r["state"], r["result"]) for r in await pool.fetch("SELECT id, state, result FROM jobs")}
    assert rows[old] == ("succeeded", {"a": 1}) and rows[failed][0] == "failed"


async def test_the_default_maintenance_schedules_exist_and_are_due_in_the_future(pool: asyncpg.Pool) -> None:
    rows = await pool.fetch("SELECT name, source, enabled, next_fire_at > now() AS future FROM schedules ORDER BY name")
    assert [(r["name"], r["source"], r["enabled"], r["future"]) for r in rows] == [
        ("maintenance.analyze", "system", True, True),
        ("maintenance.prune", "system", True, True),
        ("maintenance.prune_results", "system", True, True),
        ("maintenance.report", "system", False, True),
        ("maintenance.requeue_failed", "system", False, True),
    ]


async def add_failed(
    pool: asyncpg.Pool, *, attempt: int, attempt_base: int = 0, hours_ago: float = 2, kind: str = "noop"
) -> int:
    job_id: int = await pool.fetchval(
        "INSERT INTO jobs (kind, queue, state, attempt, attempt_base, max_attempts, error, finished_at) "
        "VALUES ($1, 'default', 'failed', $2, $3, 3, '{\"class\": \"boom\"}', now() - make_interval(secs => $4)) "
        "RETURNING id",
        kind,
        attempt,
        attempt_base,
        hours_ago * 3600,
    )
    return job_id


async def test_requeue_failed_gives_exhausted_old_failures_another_round_and_no_more(pool: asyncpg.Pool) -> None:
    exhausted = await add_failed(pool, attempt=3)
    second_round = await add_failed(pool, attempt=6, attempt_base=3)
    await add_failed(pool, attempt=1)  # a permanent error ended it early: not retryable
    await add_failed(pool, attempt=3, hours_ago=0.5)  # too recent: the cause may not be fixed yet
    await add_failed(pool, attempt=9, attempt_base=6)  # had its 3 rounds
    await add_failed(pool, attempt=3, kind="http.fetch")  # filtered out by kind
    resolved = await add_failed(pool, attempt=3)
    await pool.execute("UPDATE jobs SET resolved_at = now() WHERE id = $1", resolved)  # someone dealt with it

    result = await maintenance.requeue_failed(context(pool, "maintenance.requeue_failed", {"kind": "noop"}))

    assert result["requeued"] == 2 and sorted(result["job_ids"]) == [exhausted, second_round]
    rows = await pool.fetch(
        "SELECT id, state, attempt, attempt_base, enqueued_at, error, finished_at FROM jobs WHERE id = ANY($1)",
        [exhausted, second_round],
    )
    for row in rows:
        assert (row["state"], row["enqueued_at"], row["error"], row["finished_at"]) == ("queued", None, None, None)
        assert row["attempt_base"] == row["attempt"], "a fresh budget of max_attempts"
    assert await pool.fetchval("SELECT count(*) FROM jobs WHERE state = 'failed'") == 5


@pytest.mark.parametrize(
    "payload", [{"rounds": 0}, {"min_age_s": "soon"}, {"kind": 5}, {"limit": -1}, {"queue": ["default"]}]
)
async def test_requeue_failed_refuses_a_bad_payload(pool: asyncpg.Pool, payload: dict[str, Any]) -> None:
    with pytest.raises(PermanentError):
        requeue_failed = load_registry(Config()).get("maintenance.requeue_failed")
        await requeue_failed(context(pool, "maintenance.requeue_failed", payload))
