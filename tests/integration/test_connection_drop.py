"""A worker whose broker connection drops finishes the jobs it runs, once each (the test's own connection only)."""

from __future__ import annotations

import asyncpg

from gleaner.shared.amqp import Broker
from tests.integration.broker_admin import close_connections, connections_of
from tests.integration.test_worker_lifecycle import submit, wait_final, wait_running
from tests.support.fault_rig import metric
from tests.support.stack import Service, Stack, eventually


async def test_jobs_in_flight_when_the_worker_loses_its_broker_connection_finish_exactly_once(
    stack: Stack, db: asyncpg.Pool, broker: Broker, namespace: str
) -> None:
    await stack.start("scheduler")  # its reaper would re-run any job left without an outcome
    worker = await stack.start("worker", GLEANER_WORKER_CONCURRENCY="40")
    # the management API lists a new connection after a few seconds: look it up before the jobs start
    names = await eventually(lambda: connections_of("worker", namespace), what="the worker's connection listed")
    ids = await submit(db, broker, 40, "sleep", {"seconds": 4}, max_attempts=3, retry_base_s=0.1)
    await wait_running(db, ids)
    await close_connections(names)
    running = await db.fetchval("SELECT count(*) FROM jobs WHERE id = ANY($1) AND state = 'running'", ids)
    assert running == len(ids), "the connection must drop while every job runs"

    jobs = await wait_final(db, ids, timeout_s=30)
    assert {r["state"] for r in jobs.values()} == {"succeeded"}
    attempts = await db.fetch(
        "SELECT job_id, count(*) AS n, min(outcome) AS outcome FROM job_attempts WHERE job_id = ANY($1) "
        "GROUP BY job_id",
        ids,
    )
    assert {(r["n"], r["outcome"]) for r in attempts} == {(1, "succeeded")} and len(attempts) == len(ids)
    # the broker redelivered the unacked messages on the new connection; the fenced claim dropped every copy
    assert await eventually(lambda: _at_least(worker, len(ids)), timeout_s=10, what="the redeliveries dropped")


async def _at_least(worker: Service, count: int) -> bool:
    return await metric(worker, "gleaner_claims_stale_total") >= count
