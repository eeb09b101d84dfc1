"""Seed 003's `worker_max_tasks_per_child`: a worker past GLEANER_WORKER_MAX_JOBS drains and exits 0, and `make
run`'s stack script starts a fresh one; no job is lost or run twice on the way."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from tests.e2e.test_lifecycle import wait_state
from tests.support import recording
from tests.support.run_stack import RunStack
from tests.support.stack import Api, Service


@pytest.fixture
async def stack_script(env: dict[str, str], database_url: str) -> AsyncIterator[RunStack]:
    connection = await asyncpg.connect(database_url)
    try:
        await recording.install(connection)
    finally:
        await connection.close()
    script = RunStack(env, **recording.SERVICE_ENV, GLEANER_WORKER_MAX_JOBS="5")
    await script.start()
    yield script
    await script.stop()


async def test_a_worker_past_its_job_limit_exits_cleanly_and_the_stack_script_restarts_it(
    stack_script: RunStack, api_factory: type[Api], database_url: str
) -> None:
    await stack_script.wait_for("Gleaner is running")
    api = api_factory(stack_script.gateway_url)

    jobs = [await api.submit(kind="record.noop", payload={"n": n}) for n in range(12)]
    finished = [await wait_state(api, job["id"], timeout_s=60) for job in jobs]

    assert [job["state"] for job in finished] == ["succeeded"] * 12
    connection = await asyncpg.connect(database_url)
    try:
        runs = await recording.executions(connection)
        lives = await connection.fetchval("SELECT count(DISTINCT worker) FROM recorded_executions")
        per_life = await connection.fetch("SELECT worker, count(*) AS n FROM recorded_executions GROUP BY worker")
    finally:
        await connection.close()
    assert (runs.runs, runs.jobs) == (12, 12)  # each exactly once
    assert lives >= 3 and all(row["n"] <= 5 for row in per_life)
    await stack_script.wait_for("the worker exited (recycled)")
    output = stack_script.output
    assert output.count("recycling this worker: took 5 jobs (GLEANER_WORKER_MAX_JOBS=5)") >= 2
    assert output.count("make run: the worker exited (recycled); starting a new one") >= 2
    assert await stack_script.stop() in (0, 143)


async def test_a_worker_past_its_memory_limit_drains_and_exits_0_saying_why(
    env: dict[str, str], tmp_path: Path
) -> None:
    worker = Service("worker", {**env, "GLEANER_WORKER_MAX_RSS_MB": "1"}, tmp_path)
    worker.start()
    try:
        assert worker.process is not None
        code = await asyncio.to_thread(worker.process.wait, 30)
    finally:
        worker.stop()
    assert code == 0, worker.log()[-2000:]
    assert "recycling this worker: resident memory" in worker.log()
    assert "is past GLEANER_WORKER_MAX_RSS_MB=1" in worker.log()
