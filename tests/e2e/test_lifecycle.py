"""The job lifecycle end to end: real gateway, worker and scheduler processes, real RabbitMQ and PostgreSQL."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import aio_pika
import asyncpg

from gleaner.shared.amqp import Topology
from gleaner.shared.config import Config
from tests.support.stack import Api, Stack, eventually

FINAL = ("succeeded", "partial", "failed", "cancelled")


async def wait_state(api: Api, job_id: int, states: tuple[str, ...] = FINAL, timeout_s: float = 20) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        job = await api.job(job_id)
        return job if job["state"] in states else None

    return await eventually(check, timeout_s=timeout_s, interval_s=0.1, what=f"job {job_id} in {states}")


async def test_a_noop_job_succeeds_with_one_attempt_and_wait_returns_it_finished(
    stack: Stack, gateway_api: Api
) -> None:
    await stack.start("worker")
    job = await gateway_api.submit(kind="noop", payload={"hello": "world"})
    assert job["state"] in ("queued", "running", "succeeded")
    finished = await gateway_api.job(job["id"], wait=10)
    assert finished["state"] == "succeeded"
    assert finished["result"] == {"hello": "world"}
    assert finished["attempt"] == 1
    status, attempts = await gateway_api.request("GET", f"/jobs/{job['id']}/attempts")
    assert status == 200
    assert [a["outcome"] for a in attempts["attempts"]] == ["succeeded"]


async def test_a_retryable_failure_makes_exactly_max_attempts_with_backoff_then_is_dead_lettered(
    stack: Stack, gateway_api: Api, config: Config, db: asyncpg.Connection
) -> None:
    await stack.start("worker")
    job = await gateway_api.submit(
        kind="fail", payload={"mode": "retryable"}, max_attempts=3, retry_base_s=0.2, retry_cap_s=5
    )
    failed = await wait_state(gateway_api, job["id"])
    assert failed["state"] == "failed"
    assert failed["attempt"] == 3
    rows = await db.fetch(
        "SELECT attempt, started_at, finished_at, outcome, retry_delay_s FROM job_attempts WHERE job_id = $1 "
        "ORDER BY attempt",
        job["id"],
    )
    assert [r["outcome"] for r in rows] == ["retrying", "retrying", "failed"]
    for before, after in itertools.pairwise(rows):
        nominal = 0.2 * 2 ** (before["attempt"] - 1)
        # the jittered backoff, rounded up to the 0.1 s delay unit it travels in
        assert 0.9 * nominal <= before["retry_delay_s"] <= 1.1 * nominal + 0.1
        assert round(before["retry_delay_s"] / 0.1, 6).is_integer()
        assert after["started_at"] - before["finished_at"] >= timedelta(seconds=before["retry_delay_s"])

    status, dead = await gateway_api.request("GET", "/dead-letters")
    assert status == 200
    assert f"job-{job['id']}" in [d["id"] for d in dead["dead_letters"]]
    assert await _dead_queue_holds(config, job["id"])

    status, _ = await gateway_api.request("POST", f"/dead-letters/job-{job['id']}/requeue")
    assert status in (200, 202)
    again = await wait_state(gateway_api, job["id"], timeout_s=30)
    assert again["state"] == "failed"
    assert again["attempt"] == 6


async def _dead_queue_holds(config: Config, job_id: int) -> bool:
    connection = await aio_pika.connect(config.amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(Topology.from_config(config).dead_queue, ensure=False)
        while (message := await queue.get(fail=False, no_ack=True)) is not None:
            if message.headers.get("job_id") == job_id:
                return True
        return False
    finally:
        await connection.close()


async def test_a_permanent_failure_fails_after_one_attempt(stack: Stack, gateway_api: Api) -> None:
    await stack.start("worker")
    job = await gateway_api.submit(kind="fail", payload={"mode": "permanent"}, max_attempts=5)
    failed = await wait_state(gateway_api, job["id"])
    assert (failed["state"], failed["attempt"]) == ("failed", 1)
    assert failed["error"]["class"] == "fail_permanent"
    _, history = await gateway_api.request("GET", f"/jobs/{job['id']}/attempts")
    [attempt] = history["attempts"]
    # the traceback leads to the line of the handler that raised
    assert "handlers/builtin.py" in attempt["error_traceback"] and "in fail" in attempt["error_traceback"]
    assert attempt["error_traceback"].rstrip().endswith("fail: attempt 1 fails as asked (permanent)")


async def test_a_garbage_message_is_dead_lettered_and_the_worker_keeps_working(
    stack: Stack, gateway_api: Api, config: Config
) -> None:
    worker = await stack.start("worker")
    connection = await aio_pika.connect(config.amqp_url)
    channel = await connection.channel()
    await channel.default_exchange.publish(
        aio_pika.Message(b"\x00 definitely not a job"), Topology.from_config(config).work_queue("default")
    )
    await connection.close()

    async def recorded() -> list[dict[str, Any]]:
        _, body = await gateway_api.request("GET", "/dead-letters", params={"type": "message"})
        return [d for d in body["dead_letters"] if d["reason"] == "undecodable"]

    letters = await eventually(recorded, what="the garbage message in /dead-letters")
    assert "definitely not a job" in letters[0]["body"]
    job = await gateway_api.submit(kind="noop")
    assert (await gateway_api.job(job["id"], wait=10))["state"] == "succeeded"
    assert worker.process is not None and worker.process.poll() is None


async def test_a_short_delay_is_not_held_behind_a_long_one_and_a_very_long_one_waits_in_postgres(
    stack: Stack, gateway_api: Api, db: asyncpg.Connection, config: Config
) -> None:
    await stack.start("worker")
    await stack.start("scheduler")
    unit = config.delay_unit_s
    long = await gateway_api.submit(kind="noop", delay_s=60 * unit)
    short = await gateway_api.submit(kind="noop", delay_s=1 * unit)
    beyond = await gateway_api.submit(kind="noop", delay_s=config.max_delay_s + 3)
    done = await wait_state(gateway_api, short["id"], timeout_s=10)
    assert done["state"] == "succeeded"
    lag = await db.fetchval("SELECT started_at - run_at FROM jobs WHERE id = $1", short["id"])
    # held behind the long delay it would start 59 units late; the margin is for a loaded machine, not a timing
    assert lag < timedelta(seconds=30 * unit), lag
    assert (await gateway_api.job(long["id"]))["state"] == "scheduled"
    row = await db.fetchrow("SELECT state, enqueued_at FROM jobs WHERE id = $1", beyond["id"])
    assert row["state"] == "scheduled" and row["enqueued_at"] is None


async def test_priority_nine_jobs_overtake_a_backlog_of_priority_one_jobs(stack: Stack, gateway_api: Api) -> None:
    await stack.start("worker", GLEANER_WORKER_CONCURRENCY="1")
    low = [{"kind": "sleep", "payload": {"seconds": 0.05}, "priority": 1} for _ in range(200)]
    high = [{"kind": "sleep", "payload": {"seconds": 0.05}, "priority": 9} for _ in range(20)]
    status, low_body = await gateway_api.request("POST", "/jobs/batch", json={"jobs": low})
    assert status == 202
    status, high_body = await gateway_api.request("POST", "/jobs/batch", json={"jobs": high})
    assert status == 202
    low_ids = [j["id"] for j in low_body["jobs"]]
    high_ids = [j["id"] for j in high_body["jobs"]]
    fiftieth = low_ids[49]
    await wait_state(gateway_api, fiftieth, timeout_s=60)
    finished = {i: (await gateway_api.job(i))["finished_at"] for i in [*high_ids, fiftieth]}
    assert all(finished[i] is not None and finished[i] < finished[fiftieth] for i in high_ids)


async def test_cancel_stops_a_queued_job_before_it_runs_and_a_running_one_while_it_runs(
    stack: Stack, api_factory: type[Api], env: dict[str, str]
) -> None:
    env["GLEANER_QUEUES"] = "default,idle"
    await stack.start("worker", GLEANER_WORKER_QUEUES="default")
    api = api_factory((await stack.start("gateway")).url)
    waiting = await api.submit(kind="noop", queue="idle")
    status, body = await api.request("POST", f"/jobs/{waiting['id']}/cancel")
    assert status == 200 and body["state"] == "cancelled"

    running = await api.submit(kind="sleep", payload={"seconds": 30})
    await wait_state(api, running["id"], ("running",))
    status, body = await api.request("POST", f"/jobs/{running['id']}/cancel")
    assert status in (200, 202)
    cancelled = await wait_state(api, running["id"], timeout_s=10)
    assert cancelled["state"] == "cancelled"
    assert (await api.job(waiting["id"]))["attempt"] == 0


async def test_killing_a_worker_mid_flight_loses_no_job_and_completes_none_twice(
    stack: Stack, gateway_api: Api, db: asyncpg.Connection
) -> None:
    victim = await stack.start("worker", GLEANER_WORKER_CONCURRENCY="100")
    await stack.start("worker", GLEANER_WORKER_CONCURRENCY="100")
    await stack.start("scheduler")
    jobs = [{"kind": "sleep", "payload": {"seconds": 1.0}} for _ in range(200)]
    status, body = await gateway_api.request("POST", "/jobs/batch", json={"jobs": jobs})
    assert status == 202
    ids = [j["id"] for j in body["jobs"]]

    async def busy() -> bool:
        return bool(await db.fetchval("SELECT count(*) >= 150 FROM jobs WHERE state = 'running'"))

    await eventually(busy, what="jobs in flight")
    victim.kill()

    async def all_done() -> bool:
        return bool(await db.fetchval("SELECT count(*) = 0 FROM jobs WHERE state NOT IN ('succeeded')"))

    await eventually(all_done, timeout_s=60, interval_s=0.2, what="every job succeeded")
    counts = await db.fetch(
        "SELECT job_id, count(*) FILTER (WHERE outcome = 'succeeded') AS wins FROM job_attempts "
        "WHERE job_id = ANY($1) GROUP BY job_id",
        ids,
    )
    assert len(counts) == 200
    assert all(row["wins"] == 1 for row in counts)
