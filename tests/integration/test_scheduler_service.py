"""The scheduler against real RabbitMQ and PostgreSQL: leadership, relay, reaper, pruner and firing."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import timedelta

import aiohttp
import asyncpg
from prometheus_client import generate_latest

from gleaner.services.scheduler import pruner, relay, state_gauges
from gleaner.services.scheduler.duties import Duties
from gleaner.shared.amqp import Broker
from gleaner.shared.config import Config
from gleaner.shared.metrics import Metrics
from gleaner.shared.prune_statements import PRUNE_JOBS
from gleaner.shared.pruning import Pace, Swept, batches, delete_batched, jobs_waiting
from tests.support.contract import checked_session
from tests.support.stack import Service, Stack, eventually

FINAL = ("succeeded", "partial", "failed", "cancelled")


async def is_leader(service: Service) -> bool:
    try:
        async with checked_session() as session, session.get(f"{service.url}/metrics") as response:
            text = await response.text()
    except aiohttp.ClientError:
        return False
    return "gleaner_scheduler_leader 1.0" in text


async def leaders(services: list[Service]) -> list[Service]:
    return [s for s in services if await is_leader(s)]


async def state_of(db: asyncpg.Pool, job_id: int) -> asyncpg.Record:
    row = await db.fetchrow("SELECT * FROM jobs WHERE id = $1", job_id)
    assert row is not None
    return row


async def wait_state(db: asyncpg.Pool, job_id: int, states: tuple[str, ...], timeout_s: float = 15) -> asyncpg.Record:
    async def check() -> asyncpg.Record | None:
        row = await state_of(db, job_id)
        return row if row["state"] in states else None

    return await eventually(check, timeout_s=timeout_s, interval_s=0.1, what=f"job {job_id} in {states}")


async def test_two_schedulers_elect_exactly_one_leader_and_the_other_takes_over_within_5s_after_kill_9(
    stack: Stack, db: asyncpg.Pool
) -> None:
    first = await stack.start("scheduler", name="first")
    second = await stack.start("scheduler", name="second")
    [leader] = await eventually(lambda: leaders([first, second]), what="a leader")
    await asyncio.sleep(1.5)
    assert await leaders([first, second]) == [leader]
    old = await db.fetchval("SELECT leader FROM scheduler_state")
    assert old is not None
    standby = second if leader is first else first

    leader.kill()
    killed_at = time.monotonic()
    await eventually(lambda: is_leader(standby), timeout_s=5, what="the standby to lead")
    takeover_s = time.monotonic() - killed_at

    async def new_leader_row() -> bool:
        return bool(
            await db.fetchval("SELECT leader IS DISTINCT FROM $1 AND leader IS NOT NULL FROM scheduler_state", old)
        )

    await eventually(new_leader_row, timeout_s=max(0.5, 5 - takeover_s), what="scheduler_state.leader to change")
    assert time.monotonic() - killed_at < 5
    print(f"takeover after kill -9: {takeover_s:.2f}s")


async def test_a_gracefully_stopped_leader_hands_over_at_once(stack: Stack, db: asyncpg.Pool) -> None:
    first = await stack.start("scheduler", name="first")
    [leader] = await eventually(lambda: leaders([first]), what="a leader")
    second = await stack.start("scheduler", name="second")
    assert leader.stop() == 0
    stopped_at = time.monotonic()
    await eventually(lambda: is_leader(second), timeout_s=3, what="the standby to lead")
    print(f"takeover after SIGTERM: {time.monotonic() - stopped_at:.2f}s")


async def test_the_relay_publishes_a_committed_row_that_was_never_published(stack: Stack, db: asyncpg.Pool) -> None:
    await stack.start("worker")
    await stack.start("scheduler")
    job_id = await db.fetchval(
        "INSERT INTO jobs (kind, queue, state, payload, updated_at) "
        "VALUES ('noop', 'default', 'queued', '{\"n\": 1}', now() - interval '10 seconds') RETURNING id"
    )
    job = await wait_state(db, job_id, FINAL)
    assert (job["state"], job["attempt"]) == ("succeeded", 1)


async def test_the_relay_leaves_a_row_written_within_the_grace_period_to_its_writer(
    stack: Stack, db: asyncpg.Pool
) -> None:
    await stack.start("scheduler", GLEANER_RELAY_GRACE_S="30")
    job_id = await db.fetchval(
        "INSERT INTO jobs (kind, queue, state) VALUES ('noop', 'default', 'queued') RETURNING id"
    )
    await asyncio.sleep(2)
    assert (await state_of(db, job_id))["enqueued_at"] is None


async def test_the_relay_republishes_a_waiting_row_whose_message_went_missing(stack: Stack, db: asyncpg.Pool) -> None:
    await stack.start("worker")
    await stack.start("scheduler", GLEANER_RELAY_STALE_S="5")
    job_id = await db.fetchval(
        "INSERT INTO jobs (kind, queue, state, run_at, enqueued_at, updated_at) VALUES "
        "('noop', 'default', 'queued', now() - $1::interval, now() - $1::interval, now() - $1::interval) RETURNING id",
        timedelta(hours=1),
    )
    job = await wait_state(db, job_id, FINAL, timeout_s=20)
    assert job["state"] == "succeeded"


async def test_the_relay_looks_for_lost_messages_every_tenth_of_their_age_not_every_pass(
    config: Config, db: asyncpg.Pool
) -> None:
    lost = (
        "INSERT INTO jobs (kind, queue, state, run_at, enqueued_at) "
        "VALUES ('noop', 'default', 'queued', now() - interval '1 hour', now() - interval '1 hour') RETURNING id"
    )
    # no broker connection: the pass only re-arms (nothing is published), so each row's enqueued_at tells
    duties = Duties(
        dataclasses.replace(config, relay_stale_s=600.0), db, Broker(config, name="test"), Metrics("scheduler")
    )
    first = await db.fetchval(lost)
    await relay.relay_pass(duties)
    second = await db.fetchval(lost)
    await relay.relay_pass(duties)  # the next pass, within 60 s of the last look
    armed = "SELECT id, enqueued_at IS NULL AS rearmed FROM jobs ORDER BY id"
    assert [(r["id"], r["rearmed"]) for r in await db.fetch(armed)] == [(first, True), (second, False)]
    duties.stale_checked_at -= 60.0
    await relay.relay_pass(duties)
    assert [(r["id"], r["rearmed"]) for r in await db.fetch(armed)] == [(first, True), (second, True)]


async def test_the_reaper_retries_an_expired_lease_and_fails_or_cancels_when_it_should(
    stack: Stack, db: asyncpg.Pool
) -> None:
    running = (
        "INSERT INTO jobs (kind, queue, state, attempt, max_attempts, retry_base_s, lease_owner, lease_expires_at, "
        "attempt_started_at, cancel_requested) VALUES "
        "('noop', 'default', 'running', $1, 3, 60, 'ghost', now() - interval '1 second', now(), $2) RETURNING id"
    )
    retried = await db.fetchval(running, 1, False)
    spent = await db.fetchval(running, 3, False)
    cancelled = await db.fetchval(running, 2, True)
    alive = await db.fetchval(
        "INSERT INTO jobs (kind, queue, state, attempt, lease_owner, lease_expires_at) VALUES "
        "('noop', 'default', 'running', 1, 'alive', now() + interval '1 hour') RETURNING id"
    )
    await stack.start("scheduler")

    job = await wait_state(db, retried, ("retrying",))
    assert job["lease_owner"] is None and job["finished_at"] is None
    assert job["error"]["class"] == "lease_expired"
    assert await eventually(lambda: published(db, retried), what="the retry to be published")
    job = await wait_state(db, spent, ("failed",))
    assert job["finished_at"] is not None and job["error"]["class"] == "lease_expired"
    assert (await wait_state(db, cancelled, ("cancelled",)))["finished_at"] is not None
    assert (await state_of(db, alive))["state"] == "running"

    rows = await db.fetch(
        "SELECT * FROM job_attempts WHERE job_id = ANY($1) ORDER BY job_id", [retried, spent, cancelled]
    )
    assert [(r["job_id"], r["attempt"], r["outcome"], r["error_class"], r["worker"]) for r in rows] == [
        (retried, 1, "lost", "lease_expired", "ghost"),
        (spent, 3, "lost", "lease_expired", "ghost"),
        (cancelled, 2, "lost", "lease_expired", "ghost"),
    ]
    assert 54 <= rows[0]["retry_delay_s"] <= 66 and rows[1]["retry_delay_s"] is None


async def published(db: asyncpg.Pool, job_id: int) -> bool:
    return bool(await db.fetchval("SELECT enqueued_at IS NOT NULL FROM jobs WHERE id = $1", job_id))


async def test_the_pruner_deletes_only_finished_jobs_dead_letters_and_site_minutes_past_retention(
    db: asyncpg.Pool, config: Config
) -> None:
    finished = (
        "INSERT INTO jobs (kind, queue, state, finished_at) VALUES ('noop', 'default', $1, now() - $2::interval) "
        "RETURNING id"
    )
    old = [await db.fetchval(finished, state, timedelta(days=40)) for state in ("succeeded", "failed", "cancelled")]
    recent = await db.fetchval(finished, "succeeded", timedelta(days=1))
    waiting = await db.fetchval(
        "INSERT INTO jobs (kind, queue, state, created_at) "
        "VALUES ('noop', 'default', 'queued', now() - interval '90 days') RETURNING id"
    )
    await db.execute("INSERT INTO job_attempts (job_id, attempt, outcome) VALUES ($1, 1, 'succeeded')", old[0])
    await db.execute(
        "INSERT INTO dead_letters (queue, reason, body, created_at) VALUES "
        "('q', 'undecodable', '\\x00', now() - interval '40 days'), ('q', 'undecodable', '\\x01', now())"
    )
    await db.execute(
        "INSERT INTO idempotency_keys (key, principal, request_hash, job_ids, status, created_at) VALUES "
        "('old', 'p', 'h', '{}', 202, now() - interval '25 hours'), ('new', 'p', 'h', '{}', 202, now())"
    )
    await db.execute("INSERT INTO sites (name) VALUES ('shop')")
    await db.execute(
        "INSERT INTO site_minutes (site, minute, requests) VALUES "
        "('shop', date_trunc('minute', now()) - interval '40 days', 1), ('shop', date_trunc('minute', now()), 1)"
    )
    hook = await db.fetchval(
        "INSERT INTO webhooks (url, secret) VALUES ('https://example.com/', repeat('s', 16)) RETURNING id"
    )
    await db.execute(
        "INSERT INTO webhook_deliveries (webhook_id, event_key, created_at) VALUES "
        "($1, 'old', now() - interval '25 hours'), ($1, 'new', now())",
        hook,
    )
    duties = Duties(config, db, Broker(config, name="test"), Metrics("scheduler"))
    removed = {table: swept.rows for table, swept in (await pruner.prune_pass(duties)).items()}
    assert removed == {
        "jobs": 3,
        "job_minutes": 3,
        "job_hours": 3,
        "dead_letters": 1,
        "site_minutes": 1,
        "idempotency_keys": 1,
        "workers": 0,
        "webhook_deliveries": 1,
    }
    # the per-minute counts of finished jobs followed the prune: only the recent job is counted
    assert await db.fetchval("SELECT sum(jobs) FROM job_minutes") == 1
    assert await db.fetchval("SELECT sum(jobs) FROM job_hours") == 1
    assert await db.fetchval("SELECT count(*) FROM site_minutes WHERE minute > now() - interval '1 day'") == 1
    remaining = {r["id"] for r in await db.fetch("SELECT id FROM jobs")}
    assert remaining == {recent, waiting}
    assert await db.fetchval("SELECT count(*) FROM job_attempts") == 0
    assert await db.fetchval("SELECT count(*) FROM dead_letters") == 1
    assert await db.fetchval("SELECT array_agg(key) FROM idempotency_keys") == ["new"]
    assert await db.fetchval("SELECT array_agg(event_key) FROM webhook_deliveries") == ["new"]


async def test_the_gauge_pass_exports_ready_jobs_per_queue_the_number_the_worker_autoscalers_scale_on(
    db: asyncpg.Pool, config: Config
) -> None:
    rows = [
        ("queued", "0 seconds", 3),  # ready
        ("retrying", "-5 seconds", 2),  # backoff over: ready
        ("retrying", "1 hour", 4),  # still waiting out its backoff
        ("scheduled", "1 hour", 5),
        ("running", "-1 minute", 6),
        ("succeeded", "-1 minute", 7),
    ]
    for state, offset, count in rows:
        await db.execute(
            "INSERT INTO jobs (kind, queue, state, run_at) "
            "SELECT 'noop', 'default', $1, now() + $2::text::interval FROM generate_series(1, $3)",
            state,
            offset,
            count,
        )
    metrics = Metrics("scheduler")
    await state_gauges.gauge_pass(Duties(config, db, Broker(config, name="test"), metrics))
    exported = generate_latest(metrics.registry).decode()
    assert 'gleaner_jobs_ready{queue="default"} 5.0' in exported
    assert 'gleaner_jobs{queue="default",state="running"} 6.0' in exported


async def test_the_pruner_deletes_in_batches_until_none_is_left(db: asyncpg.Pool) -> None:
    await db.execute(
        "INSERT INTO jobs (kind, queue, state, finished_at) "
        "SELECT 'noop', 'default', 'succeeded', now() - interval '2 days' FROM generate_series(1, 25)"
    )
    swept = await delete_batched(batches(db, PRUNE_JOBS, 86_400), Pace(batch=10, pause_ratio=0), jobs_waiting(db))
    assert swept == Swept(25, more=False)
    assert await db.fetchval("SELECT count(*) FROM jobs") == 0


async def test_the_pruner_counts_as_busy_only_a_queued_job_waiting_past_its_due_time(db: asyncpg.Pool) -> None:
    busy = jobs_waiting(db)
    await db.execute(
        "INSERT INTO jobs (kind, queue, state, run_at, finished_at) VALUES "
        "('noop', 'default', 'succeeded', now() - interval '1 hour', now()), "  # history
        "('noop', 'default', 'running', now() - interval '1 hour', NULL), "  # a worker has it
        "('noop', 'default', 'scheduled', now() + interval '1 day', NULL), "  # not due
        "('noop', 'default', 'queued', now(), NULL)"  # just submitted: a flowing system
    )
    assert not await busy()
    await db.execute(
        "INSERT INTO jobs (kind, queue, state, run_at) VALUES ('noop', 'default', 'queued', now() - interval '5 s')"
    )
    assert await busy()  # the workers have not taken it for five seconds: pruning rests


async def test_an_interval_schedule_fires_a_job_per_slot_that_the_worker_runs(stack: Stack, db: asyncpg.Pool) -> None:
    schedule_id = await db.fetchval(
        "INSERT INTO schedules (name, kind, interval_s, jitter, job, anchor, next_slot_at, next_fire_at) "
        'VALUES (\'every-second\', \'interval\', 1, 0, \'{"kind": "noop", "payload": {"s": 1}}\', now(), now(), now()) '
        "RETURNING id"
    )
    await stack.start("worker")
    await stack.start("scheduler")

    async def three_succeeded() -> bool:
        count = await db.fetchval(
            "SELECT count(*) FROM jobs WHERE schedule_id = $1 AND state = 'succeeded'", schedule_id
        )
        return bool(count >= 3)

    await eventually(three_succeeded, timeout_s=15, interval_s=0.2, what="three fired jobs to succeed")
    slots = await db.fetch("SELECT scheduled_for FROM jobs WHERE schedule_id = $1 ORDER BY scheduled_for", schedule_id)
    assert len({r["scheduled_for"] for r in slots}) == len(slots)
    state = await db.fetchrow("SELECT * FROM scheduler_state")
    assert state["last_fire_lag_s"] is not None and state["due_backlog"] == 0


async def test_a_paused_scheduler_fires_nothing(stack: Stack, db: asyncpg.Pool) -> None:
    await db.execute("UPDATE scheduler_state SET paused = true")
    schedule_id = await db.fetchval(
        "INSERT INTO schedules (name, kind, interval_s, jitter, job, anchor, next_slot_at, next_fire_at) "
        "VALUES ('paused', 'interval', 1, 0, '{\"kind\": \"noop\"}', now(), now(), now()) RETURNING id"
    )
    await stack.start("scheduler")
    await eventually(lambda: db.fetchval("SELECT last_tick_at IS NOT NULL FROM scheduler_state"), what="a tick")
    await asyncio.sleep(2)
    assert await db.fetchval("SELECT count(*) FROM jobs WHERE schedule_id = $1", schedule_id) == 0


async def test_a_leader_whose_lock_connection_dies_steps_down_at_once_and_campaigns_again(
    stack: Stack, db: asyncpg.Pool
) -> None:
    scheduler = await stack.start("scheduler")
    await eventually(lambda: is_leader(scheduler), what="a leader")
    since = await db.fetchval("SELECT leader_since FROM scheduler_state")
    killed = await db.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name = 'gleaner-scheduler-leadership'"
    )
    assert killed == 1

    async def leads_again() -> bool:
        return bool(await db.fetchval("SELECT leader_since > $1 FROM scheduler_state", since))

    await eventually(leads_again, timeout_s=10, what="leadership to be won again")
    assert await is_leader(scheduler)
    assert "scheduler leadership connection lost" in scheduler.log()
