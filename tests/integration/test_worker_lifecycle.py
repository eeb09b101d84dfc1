"""The worker against real RabbitMQ and PostgreSQL: rows inserted directly, messages published, outcomes polled."""

from __future__ import annotations

import asyncio
import itertools
import signal
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import asyncpg
import orjson
import pytest

from gleaner.shared.amqp import Broker
from gleaner.shared.config import Config
from gleaner.shared.outbox import OUTBOX_COLUMNS, OutboxRow, publish_rows
from tests.support.contract import checked_session
from tests.support.stack import Service, Stack, eventually

FINAL = ("succeeded", "partial", "failed", "cancelled")
SCHEDULER_APP = Path(__file__).resolve().parents[2] / "gleaner" / "services" / "scheduler" / "app.py"


async def insert_jobs(db: asyncpg.Pool, count: int, kind: str, payload: Any = None, **columns: Any) -> list[int]:
    names = ["kind", "queue", "state", "payload", *columns]
    values = [kind, "default", "queued", payload if payload is not None else {}, *columns.values()]
    placeholders = ", ".join(f"${n}" for n in range(1, len(values) + 1))
    sql = f"INSERT INTO jobs ({', '.join(names)}) SELECT {placeholders} FROM generate_series(1, {count}) RETURNING id"
    return [r["id"] for r in await db.fetch(sql, *values)]


async def publish(db: asyncpg.Pool, broker: Broker, ids: Sequence[int]) -> None:
    records = await db.fetch(f"SELECT {OUTBOX_COLUMNS} FROM jobs WHERE id = ANY($1) ORDER BY id", list(ids))
    assert await publish_rows(broker, db, [OutboxRow.from_record(r) for r in records]) == len(ids)


async def submit(
    db: asyncpg.Pool, broker: Broker, count: int, kind: str, payload: Any = None, **cols: Any
) -> list[int]:
    ids = await insert_jobs(db, count, kind, payload, **cols)
    await publish(db, broker, ids)
    return ids


async def wait_final(db: asyncpg.Pool, ids: Sequence[int], timeout_s: float = 15) -> dict[int, asyncpg.Record]:
    async def check() -> dict[int, asyncpg.Record]:
        rows = await db.fetch("SELECT * FROM jobs WHERE id = ANY($1)", list(ids))
        done = {r["id"]: r for r in rows if r["state"] in FINAL}
        return done if len(done) == len(ids) else {}

    return await eventually(check, timeout_s=timeout_s, interval_s=0.1, what=f"{len(ids)} jobs final")


async def wait_running(db: asyncpg.Pool, ids: Sequence[int], timeout_s: float = 10) -> None:
    async def check() -> bool:
        count = await db.fetchval("SELECT count(*) FROM jobs WHERE id = ANY($1) AND state = 'running'", list(ids))
        return bool(count == len(ids))

    await eventually(check, timeout_s=timeout_s, what=f"{len(ids)} jobs running")


async def attempts(db: asyncpg.Pool, job_id: int) -> list[asyncpg.Record]:
    return list(await db.fetch("SELECT * FROM job_attempts WHERE job_id = $1 ORDER BY attempt", job_id))


async def readyz(service: Service) -> int:
    async with checked_session() as session, session.get(f"{service.url}/readyz") as response:
        return response.status


async def test_a_noop_job_succeeds_with_one_attempt_row(stack: Stack, db: asyncpg.Pool, broker: Broker) -> None:
    await stack.start("worker")
    [job_id] = await submit(db, broker, 1, "noop", {"hello": "world"})
    job = (await wait_final(db, [job_id]))[job_id]
    assert (job["state"], job["attempt"], job["result"]) == ("succeeded", 1, {"hello": "world"})
    assert job["lease_owner"] is None and job["finished_at"] is not None
    [attempt] = await attempts(db, job_id)
    assert (attempt["attempt"], attempt["outcome"], attempt["error_class"]) == (1, "succeeded", None)
    assert attempt["started_at"] <= attempt["finished_at"]


async def test_a_retryable_failure_makes_exactly_max_attempts_with_backoff_and_lands_in_the_dead_queue(
    stack: Stack, db: asyncpg.Pool, broker: Broker, config: Config
) -> None:
    await stack.start("worker")
    [job_id] = await submit(
        db, broker, 1, "fail", {"mode": "retryable"}, max_attempts=3, retry_base_s=0.2, retry_cap_s=5.0
    )
    job = (await wait_final(db, [job_id]))[job_id]
    assert (job["state"], job["attempt"]) == ("failed", 3)
    assert job["error"]["class"] == "fail_retryable"
    rows = await attempts(db, job_id)
    assert [r["outcome"] for r in rows] == ["retrying", "retrying", "failed"]
    for before, after in itertools.pairwise(rows):
        nominal = 0.2 * 2 ** (before["attempt"] - 1)
        # the jittered backoff, rounded up to the 0.1 s delay unit it travels in
        assert 0.9 * nominal <= before["retry_delay_s"] <= 1.1 * nominal + 0.1
        assert round(before["retry_delay_s"] / 0.1, 6).is_integer()
        assert after["started_at"] - before["finished_at"] >= timedelta(seconds=before["retry_delay_s"])
    assert await eventually(lambda: dead_queue_holds(broker, job_id), what="a copy in the dead queue")


async def dead_queue_holds(broker: Broker, job_id: int) -> bool:
    assert broker.connection is not None
    channel = await broker.connection.channel()
    try:
        queue = await channel.get_queue(broker.topology.dead_queue, ensure=False)
        while (message := await queue.get(no_ack=False, fail=False)) is not None:
            if orjson.loads(message.body).get("id") == job_id:
                return True
        return False
    finally:
        await channel.close()


async def test_a_permanent_failure_fails_after_one_attempt(stack: Stack, db: asyncpg.Pool, broker: Broker) -> None:
    await stack.start("worker")
    [job_id] = await submit(db, broker, 1, "fail", {"mode": "permanent"}, max_attempts=5)
    job = (await wait_final(db, [job_id]))[job_id]
    assert (job["state"], job["attempt"], job["error"]["class"]) == ("failed", 1, "fail_permanent")
    assert [r["outcome"] for r in await attempts(db, job_id)] == ["failed"]


async def test_a_handler_past_its_timeout_is_retried_as_a_timeout(
    stack: Stack, db: asyncpg.Pool, broker: Broker
) -> None:
    await stack.start("worker")
    [job_id] = await submit(db, broker, 1, "sleep", {"seconds": 5}, max_attempts=2, timeout_s=0.2, retry_base_s=0.1)
    job = (await wait_final(db, [job_id]))[job_id]
    assert job["state"] == "failed"
    assert [(r["outcome"], r["error_class"]) for r in await attempts(db, job_id)] == [
        ("retrying", "timeout"),
        ("failed", "timeout"),
    ]


async def test_a_garbage_message_becomes_a_dead_letter_and_other_jobs_still_succeed(
    stack: Stack, db: asyncpg.Pool, broker: Broker, config: Config
) -> None:
    await stack.start("worker")
    assert broker.channel is not None
    exchange = await broker.channel.get_exchange(broker.topology.jobs_exchange, ensure=False)
    await exchange.publish(aio_pika.Message(b"\x00not json", headers={"x-test": "garbage"}), "default")
    ids = await submit(db, broker, 5, "noop")
    assert {r["state"] for r in (await wait_final(db, ids)).values()} == {"succeeded"}

    async def letters() -> list[asyncpg.Record]:
        return list(await db.fetch("SELECT * FROM dead_letters"))

    [letter] = await eventually(letters, what="a dead letter")
    assert (letter["reason"], bytes(letter["body"]), letter["queue"]) == ("undecodable", b"\x00not json", "default")
    assert letter["headers"] == {"x-test": "garbage"}
    assert letter["detail"]


async def test_a_job_of_an_unknown_kind_is_dead_lettered_and_failed(
    stack: Stack, db: asyncpg.Pool, broker: Broker
) -> None:
    await stack.start("worker")
    [job_id] = await submit(db, broker, 1, "no.such.kind")
    job = (await wait_final(db, [job_id]))[job_id]
    assert (job["state"], job["error"]["class"]) == ("failed", "unknown_kind")
    letter = await db.fetchrow("SELECT * FROM dead_letters WHERE job_id = $1", job_id)
    assert letter is not None and letter["reason"] == "unknown_kind"
    assert await attempts(db, job_id) == []


async def test_high_priority_jobs_overtake_a_backlog_of_low_priority_ones(
    stack: Stack, db: asyncpg.Pool, broker: Broker
) -> None:
    await stack.start("worker", GLEANER_WORKER_CONCURRENCY="1")
    low = await submit(db, broker, 200, "sleep", {"seconds": 0.05}, priority=1)
    high = await submit(db, broker, 20, "sleep", {"seconds": 0.05}, priority=9)
    finished = await wait_final(db, high, timeout_s=20)
    last_high = max(r["finished_at"] for r in finished.values())
    low_before = await db.fetchval(
        "SELECT count(*) FROM jobs WHERE id = ANY($1) AND finished_at IS NOT NULL AND finished_at <= $2", low, last_high
    )
    assert low_before < 50


async def test_a_cancel_event_cancels_a_running_job(stack: Stack, db: asyncpg.Pool, broker: Broker) -> None:
    await stack.start("worker")
    [job_id] = await submit(db, broker, 1, "sleep", {"seconds": 30})
    await wait_running(db, [job_id])
    # the event alone (no cancel_requested column), so the heartbeat cannot be what cancels it
    await broker.publish_event("job.cancel", orjson.dumps({"id": job_id}))
    job = (await wait_final(db, [job_id], timeout_s=5))[job_id]
    assert job["state"] == "cancelled"
    assert [r["outcome"] for r in await attempts(db, job_id)] == ["cancelled"]


async def test_a_cancel_request_seen_by_the_heartbeat_cancels_a_running_job(
    stack: Stack, db: asyncpg.Pool, broker: Broker
) -> None:
    await stack.start("worker")
    [job_id] = await submit(db, broker, 1, "sleep", {"seconds": 30})
    await wait_running(db, [job_id])
    await db.execute("UPDATE jobs SET cancel_requested = true WHERE id = $1", job_id)
    job = (await wait_final(db, [job_id], timeout_s=5))[job_id]
    assert job["state"] == "cancelled"


async def test_the_heartbeat_extends_the_lease_of_a_long_job(stack: Stack, db: asyncpg.Pool, broker: Broker) -> None:
    await stack.start("worker")
    [job_id] = await submit(db, broker, 1, "sleep", {"seconds": 4.5}, timeout_s=10)
    await wait_running(db, [job_id])
    first = await db.fetchval("SELECT lease_expires_at FROM jobs WHERE id = $1", job_id)

    async def extended() -> bool:
        lease = await db.fetchval("SELECT lease_expires_at FROM jobs WHERE id = $1", job_id)
        return lease is not None and lease > first

    await eventually(extended, timeout_s=3, what="a longer lease")
    job = (await wait_final(db, [job_id]))[job_id]
    assert job["state"] == "succeeded"


async def test_sigterm_hands_running_jobs_back_and_another_worker_finishes_them(
    stack: Stack, db: asyncpg.Pool, broker: Broker
) -> None:
    first = await stack.start("worker", name="first", GLEANER_SHUTDOWN_GRACE_S="1")
    quick = await submit(db, broker, 2, "sleep", {"seconds": 0.3})
    slow = await submit(db, broker, 10, "sleep", {"seconds": 3})
    await wait_running(db, slow)
    first.signal(signal.SIGTERM)
    assert await eventually(lambda: _unready(first), timeout_s=2, what="/readyz 503 while draining")
    assert first.process is not None
    assert await asyncio.to_thread(first.process.wait, 15) == 0
    handed_back = await db.fetch("SELECT state, attempt, lease_owner FROM jobs WHERE id = ANY($1)", slow)
    assert {(r["state"], r["attempt"], r["lease_owner"]) for r in handed_back} == {("queued", 0, None)}

    await stack.start("worker", name="second")
    jobs = await wait_final(db, quick + slow, timeout_s=20)
    assert {r["state"] for r in jobs.values()} == {"succeeded"}
    for job_id in quick + slow:
        assert [(r["attempt"], r["outcome"]) for r in await attempts(db, job_id)] == [(1, "succeeded")]


async def _unready(service: Service) -> bool:
    try:
        return await readyz(service) == 503
    except aiohttp.ClientError:
        return False


@pytest.mark.skipif(
    not SCHEDULER_APP.exists(), reason="needs the scheduler's reaper (gleaner/services/scheduler/app.py)"
)
async def test_every_job_of_a_killed_worker_succeeds_exactly_once(
    stack: Stack, db: asyncpg.Pool, broker: Broker
) -> None:
    await stack.start("scheduler")
    victim = await stack.start("worker", name="victim", GLEANER_WORKER_CONCURRENCY="100", GLEANER_WORKER_ID="victim")
    await stack.start("worker", name="survivor", GLEANER_WORKER_CONCURRENCY="100")
    ids = await submit(db, broker, 200, "sleep", {"seconds": 1}, max_attempts=5, retry_base_s=0.1)

    async def victim_busy() -> bool:
        count = await db.fetchval("SELECT count(*) FROM jobs WHERE state = 'running' AND lease_owner LIKE 'victim-%'")
        return bool(count >= 50)

    await eventually(victim_busy, what="jobs in flight")
    victim.kill()
    jobs = await wait_final(db, ids, timeout_s=60)
    assert {r["state"] for r in jobs.values()} == {"succeeded"}
    counts = await db.fetch(
        "SELECT job_id, count(*) FILTER (WHERE outcome = 'succeeded') AS ok FROM job_attempts "
        "WHERE job_id = ANY($1) GROUP BY job_id",
        ids,
    )
    assert len(counts) == len(ids)
    assert {r["ok"] for r in counts} == {1}
