"""Site limits across real worker processes: the shared rate, max_concurrency slots and their leases."""

from __future__ import annotations

import itertools
import time

import asyncpg

from gleaner.services.worker.retry import MAX_DEFER_S
from gleaner.shared.amqp import Broker
from gleaner.shared.config import Config
from gleaner.shared.site_rules import MIN_REQUESTS_PER_HOUR
from tests.integration.test_sites_support import LOCAL_WORKER_ENV, PageServer, add_site, overlapping, pages
from tests.integration.test_worker_lifecycle import submit, wait_final
from tests.support.stack import Api, Stack, eventually


async def test_two_workers_together_keep_a_site_to_one_request_per_second(
    stack: Stack, db: asyncpg.Pool, broker: Broker
) -> None:
    await add_site(db, "slowsite", requests_per_hour=3600.0, burst=1)
    async with PageServer(pages) as server:
        first = await stack.start("worker", **LOCAL_WORKER_ENV)
        second = await stack.start("worker", **LOCAL_WORKER_ENV)
        ids = []
        for n in range(20):
            ids += await submit(db, broker, 1, "http.fetch", {"url": f"{server.url}/ok/{n}"}, site="slowsite")
        jobs = await wait_final(db, ids, timeout_s=40)
        assert {j["state"] for j in jobs.values()} == {"succeeded"}, [j["error"] for j in jobs.values()]
        arrivals = sorted(h.started for h in server.hits)
        assert len(arrivals) == 20
        gaps = [b - a for a, b in itertools.pairwise(arrivals)]
        assert min(gaps) >= 0.9, gaps
        # both workers took part, and waiting never spent an attempt
        workers = await db.fetch("SELECT DISTINCT worker FROM job_attempts WHERE job_id = ANY($1)", ids)
        assert len(workers) == 2, (first.name, second.name)
        assert {j["attempt"] for j in jobs.values()} == {1}
        assert sum(j["deferrals"] for j in jobs.values()) > 0
        site = await db.fetchrow("SELECT * FROM site_status WHERE name = 'slowsite'")
        assert site is not None and site["requests_total"] == 20 and site["deferrals"] > 0
        # the per-minute counters behind windowed stats add up to the same totals
        minutes = await db.fetchrow(
            "SELECT sum(requests) AS requests, sum(rate_limit_waits) AS waits, sum(deferrals) AS deferrals "
            "FROM site_minutes WHERE site = 'slowsite'"
        )
        assert minutes is not None
        assert (minutes["requests"], minutes["waits"], minutes["deferrals"]) == (
            site["requests_total"],
            site["rate_limit_waits"],
            site["deferrals"],
        )


async def test_a_site_with_max_concurrency_one_never_sees_two_of_its_jobs_at_once(
    stack: Stack, db: asyncpg.Pool, broker: Broker
) -> None:
    await add_site(db, "onebyone", requests_per_hour=1e6, burst=100, max_concurrency=1)
    async with PageServer(pages) as server:
        await stack.start("worker", **LOCAL_WORKER_ENV)
        await stack.start("worker", **LOCAL_WORKER_ENV)
        ids = await submit(db, broker, 10, "http.fetch", {"url": f"{server.url}/slow/1?s=0.2"}, site="onebyone")
        jobs = await wait_final(db, ids, timeout_s=40)
        assert {j["state"] for j in jobs.values()} == {"succeeded"}
        assert len(server.hits) == 10
        assert overlapping(server.hits) == []
        assert {j["attempt"] for j in jobs.values()} == {1}
        assert await db.fetchval("SELECT count(*) FROM site_slots") == 0


async def test_the_slot_of_a_killed_worker_frees_itself_within_the_lease(
    stack: Stack, db: asyncpg.Pool, broker: Broker, config: Config
) -> None:
    await add_site(db, "single", requests_per_hour=1e6, burst=100, max_concurrency=1)
    async with PageServer(pages) as server:
        doomed = await stack.start("worker", **LOCAL_WORKER_ENV)
        [stuck] = await submit(db, broker, 1, "http.fetch", {"url": f"{server.url}/slow/1?s=10"}, site="single")

        async def slot_taken() -> bool:
            return bool(await db.fetchval("SELECT count(*) FROM site_slots WHERE job_id = $1", stuck))

        await eventually(slot_taken, what="the slot taken")
        doomed.kill()
        killed_at = time.monotonic()
        await stack.start("worker", **LOCAL_WORKER_ENV)
        [after] = await submit(db, broker, 1, "http.fetch", {"url": f"{server.url}/ok/after"}, site="single")
        job = (await wait_final(db, [after], timeout_s=20))[after]
        assert job["state"] == "succeeded"
        [hit] = [h for h in server.hits if h.path == "/ok/after"]
        # held until the lease ran out (the last heartbeat was at most a third of it before the kill), then
        # free within the lease (GLEANER_LEASE_S) plus one slot retry (at most 2 s) plus claim and fetch time
        assert config.lease_s / 3 <= hit.started - killed_at <= config.lease_s + 3.0
        assert job["deferrals"] >= 1


async def test_the_slowest_site_defers_a_job_an_hour_at_most_and_any_stored_run_at_still_lists(
    stack: Stack, db: asyncpg.Pool, broker: Broker, api_factory: type[Api]
) -> None:
    """Issue 11: 1e-9 requests an hour deferred a job to the year 116106, after which GET /jobs answered 500 for
    everyone. Rates are floored (0.01), deferrals capped at an hour, and views clamp what is stored anyway."""
    all_day = {"timezone": "UTC", "start": "00:00", "end": "00:00", "factor": 1000}
    await add_site(db, "glacial", requests_per_hour=MIN_REQUESTS_PER_HOUR, burst=1, respectful_hours=all_day)
    api = api_factory((await stack.start("gateway")).url)
    async with PageServer(pages) as server:
        await stack.start("worker", **LOCAL_WORKER_ENV)
        first, second = await submit(db, broker, 2, "http.fetch", {"url": f"{server.url}/ok/1"}, site="glacial")

        async def deferred() -> asyncpg.Record | None:
            row = await db.fetchrow(
                "SELECT *, EXTRACT(EPOCH FROM run_at - now()) AS wait_s FROM jobs "
                "WHERE id = ANY($1) AND deferrals > 0 AND state IN ('scheduled', 'queued')",
                [first, second],
            )
            return row

        waiting = await eventually(deferred, timeout_s=20, what="one job deferred by the site")
        assert 3000 < waiting["wait_s"] <= MAX_DEFER_S, waiting["wait_s"]
    await db.execute("UPDATE jobs SET run_at = '20000-01-01T00:00:00Z' WHERE id = $1", waiting["id"])
    status, listing = await api.request("GET", "/jobs")
    assert status == 200 and {j["id"] for j in listing["jobs"]} == {first, second}
    status, job = await api.request("GET", f"/jobs/{waiting['id']}")
    assert status == 200 and job["run_at"] == "9999-12-31T23:59:59.999999Z"
