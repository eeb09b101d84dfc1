"""PATCH /jobs/{id}: a waiting job's priority and run_at change, the message already in RabbitMQ is dropped, and a
change racing a worker never runs a job twice nor loses it (seed 004's priority adjustment)."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime

import aiohttp
import asyncpg

from tests.support.contract import checked_session
from tests.support.stack import Api, Service, Stack, eventually


async def stale_claims(worker: Service) -> float:
    async with checked_session() as session, session.get(f"{worker.url}/metrics") as response:
        text = await response.text()
    return sum(float(v) for v in re.findall(r"^gleaner_claims_stale_total\{[^}]*\} (\S+)$", text, re.M))


async def test_a_delayed_job_is_not_run_by_its_old_message_and_runs_once_when_brought_forward(
    stack: Stack, api_factory: type[Api], db: asyncpg.Connection
) -> None:
    api = api_factory((await stack.start("gateway")).url)
    worker = await stack.start("worker")
    job = await api.submit(kind="noop", delay_s=1)  # its message is due in a second
    status, changed = await api.request("PATCH", f"/jobs/{job['id']}", json={"delay_s": 3600, "priority": "high"})
    assert status == 200 and changed["state"] == "scheduled" and changed["priority"] == 9

    await eventually(lambda: stale_claims(worker), timeout_s=10, what="the old message to be dropped")
    assert (await api.job(job["id"]))["state"] == "scheduled"

    now = datetime.now(UTC).isoformat()
    status, changed = await api.request("PATCH", f"/jobs/{job['id']}", json={"run_at": now})
    assert status == 200 and changed["state"] == "queued"
    done = await api.job(job["id"], wait="10")
    assert done["state"] == "succeeded" and done["attempt"] == 1
    assert await db.fetchval("SELECT count(*) FROM job_attempts WHERE job_id = $1", job["id"]) == 1
    status, problem = await api.request("PATCH", f"/jobs/{job['id']}", json={"priority": 1})
    assert status == 409 and "succeeded" in problem["detail"]


async def test_a_job_raised_to_high_priority_runs_before_the_jobs_queued_ahead_of_it(
    stack: Stack, api_factory: type[Api], db: asyncpg.Connection
) -> None:
    api = api_factory((await stack.start("gateway")).url)
    ids = [(await api.submit(kind="noop", priority="low"))["id"] for _ in range(6)]
    status, _ = await api.request("PATCH", f"/jobs/{ids[-1]}", json={"priority": "high"})
    assert status == 200
    await stack.start("worker", GLEANER_WORKER_CONCURRENCY="1")

    async def all_done() -> bool:
        return bool(await db.fetchval("SELECT count(*) = 6 FROM jobs WHERE state = 'succeeded'"))

    await eventually(all_done, timeout_s=15, what="the six jobs to succeed")
    order = [r["id"] for r in await db.fetch("SELECT id FROM jobs ORDER BY started_at")]
    assert order[0] == ids[-1], order
    assert await db.fetchval("SELECT count(*) FROM job_attempts") == 6


async def test_changes_racing_a_worker_never_run_a_job_twice_nor_lose_one(
    stack: Stack, api_factory: type[Api], db: asyncpg.Connection
) -> None:
    api = api_factory((await stack.start("gateway")).url)
    await stack.start("worker", GLEANER_WORKER_CONCURRENCY="8")
    ids = [job["id"] for job in await submit_many(api, 300)]  # 300 jobs of 20 ms over 8 slots: the worker is busy

    async def change(job_id: int, n: int) -> int:
        body = {"priority": n % 10} if n % 2 else {"delay_s": 0.2, "priority": "normal"}
        try:
            status, _ = await api.request("PATCH", f"/jobs/{job_id}", json=body)
        except aiohttp.ClientError:
            return 0
        return status

    statuses = await asyncio.gather(*(change(job_id, n) for n, job_id in enumerate(ids)))
    # changes met jobs still waiting (200) and jobs a worker had claimed (409)
    assert set(statuses) == {200, 409}, statuses

    async def all_succeeded() -> bool:
        return bool(await db.fetchval("SELECT count(*) = 300 FROM jobs WHERE state = 'succeeded'"))

    await eventually(all_succeeded, timeout_s=30, interval_s=0.2, what="every job to succeed")
    counts = await db.fetch("SELECT job_id, count(*) AS n FROM job_attempts GROUP BY job_id HAVING count(*) <> 1")
    assert counts == [] and await db.fetchval("SELECT max(attempt) FROM jobs") == 1


async def submit_many(api: Api, count: int) -> list[dict[str, object]]:
    jobs = [{"kind": "sleep", "payload": {"seconds": 0.02}}] * count
    status, body = await api.request("POST", "/jobs/batch", json={"jobs": jobs})
    assert status == 202, body
    return list(body["jobs"])
