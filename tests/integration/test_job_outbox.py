"""The gateway's outbox rows (migration 0039) and the relay's lost-message rule, on real RabbitMQ and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses

import asyncpg

from gleaner.services.gateway import job_store
from gleaner.services.scheduler import relay
from gleaner.services.scheduler.duties import Duties
from gleaner.shared.amqp import Broker
from gleaner.shared.config import Config
from gleaner.shared.messages import JobMessage
from gleaner.shared.metrics import Metrics
from gleaner.shared.outbox import OutboxRow, publish_rows
from gleaner.shared.submission import JobSpec
from tests.integration.test_outbox_marker import AUDIT
from tests.integration.test_worker_lifecycle import wait_final
from tests.support.stack import Api, Stack, eventually

OUTBOX = "SELECT id, job_ids, failed FROM job_outbox ORDER BY id"


def noop(delay_s: float | None = None) -> job_store.NewJob:
    spec = JobSpec("noop", {}, "default", 0, 3, 30.0, 1.0, 60.0, None, delay_s, None, None)
    return job_store.NewJob(spec, None)


async def submitted(db: asyncpg.Pool, items: list[job_store.NewJob]) -> list[asyncpg.Record]:
    """Rows committed by the gateway's insert statement, never published (as if the gateway died after the commit)."""
    return [r for r in await job_store.insert_jobs(db, items) if r is not None]


async def test_a_submission_committed_but_never_published_is_published_by_the_relay_after_the_grace(
    stack: Stack, db: asyncpg.Pool
) -> None:
    rows = await submitted(db, [noop(), noop(), noop()])
    ids = [r["id"] for r in rows]
    [outbox] = await db.fetch(OUTBOX)
    assert sorted(outbox["job_ids"]) == ids and not outbox["failed"]
    assert {r["outbox_id"] for r in rows} == {outbox["id"]}
    # counted as enqueued already: the relay's scan of unmarked rows does not see them, only the outbox row tells
    assert await db.fetchval(relay.UNPUBLISHED, 3600.0, 0.0, 1000) is None

    await stack.start("worker")
    await stack.start("scheduler", GLEANER_RELAY_GRACE_S="1")
    done = await wait_final(db, ids, timeout_s=20)
    assert [(done[i]["state"], done[i]["attempt"]) for i in ids] == [("succeeded", 1)] * 3
    assert await db.fetch(OUTBOX) == []


async def test_a_delayed_submission_keeps_its_marker_and_stays_out_of_the_outbox(db: asyncpg.Pool) -> None:
    prompt, delayed = await submitted(db, [noop(), noop(delay_s=60)])
    assert prompt["outbox_id"] is not None and delayed["outbox_id"] is None
    assert [list(r["job_ids"]) for r in await db.fetch(OUTBOX)] == [[prompt["id"]]]
    unmarked = "SELECT id FROM jobs WHERE enqueued_at IS NULL"
    assert [r["id"] for r in await db.fetch(unmarked)] == [delayed["id"]]


async def test_an_unconfirmed_submission_is_flagged_for_the_relay_without_waiting_out_the_grace(
    config: Config, db: asyncpg.Pool
) -> None:
    rows = [OutboxRow.from_record(r) for r in await submitted(db, [noop(), noop()])]
    down = Broker(config, name="test")  # never connected: nothing is confirmed
    assert await publish_rows(down, db, rows) == 0
    [outbox] = await db.fetch(OUTBOX)
    assert outbox["failed"]
    assert [r["id"] for r in await db.fetch(relay.DUE_OUTBOXES, 3600.0, 1000, 5000)] == [outbox["id"]]


async def test_confirmed_submissions_leave_no_outbox_row_and_no_write_to_their_jobs(
    stack: Stack, db: asyncpg.Pool, api_factory: type[Api]
) -> None:
    await db.execute(AUDIT)
    # no worker: every job still waits when its confirm comes, which the per-job marker wrote (an UPDATE each)
    gateway = await stack.start("gateway", GLEANER_MARK_DELAY_S="0.1", GLEANER_RELAY_GRACE_S="30")
    api = api_factory(gateway.url)
    # concurrent single submissions share insert statements (the gateway's lanes), so outbox rows hold several
    single = [job["id"] for job in await asyncio.gather(*(api.submit(kind="noop") for _ in range(20)))]
    status, body = await api.request("POST", "/jobs/batch", json={"jobs": [{"kind": "noop"}] * 10})
    assert status == 202, body
    batch = [job["id"] for job in body["jobs"]]

    async def outbox_empty() -> bool:
        return not await db.fetchval("SELECT count(*) FROM job_outbox")

    await eventually(outbox_empty, timeout_s=10, what="the confirmed submissions' outbox rows deleted")
    assert gateway.stop() == 0
    assert await db.fetch("SELECT job_id FROM marker_writes") == []
    waiting = await db.fetch("SELECT state FROM jobs WHERE id = ANY($1)", single + batch)
    assert [r["state"] for r in waiting] == ["queued"] * 30


async def lost_row(db: asyncpg.Pool) -> int:
    """A waiting row past due whose message was confirmed an hour ago."""
    job_id: int = await db.fetchval(
        "INSERT INTO jobs (kind, queue, state, run_at, enqueued_at) "
        "VALUES ('noop', 'default', 'queued', now() - interval '1 hour', now() - interval '1 hour') RETURNING id"
    )
    return job_id


async def test_a_long_backlog_is_not_taken_for_lost_messages_but_a_row_missing_from_a_drained_queue_is(
    config: Config, db: asyncpg.Pool, broker: Broker
) -> None:
    duties = Duties(dataclasses.replace(config, relay_stale_s=600.0), db, broker, Metrics("scheduler"))
    waiting = await lost_row(db)
    # the queue still holds messages (a backlog draining slower than the stale age): this row's may be among them
    behind = JobMessage(job_id=waiting + 1000, attempt=1, queue="default", kind="noop", priority=0)
    assert await broker.publish_many([(behind, 0.0)]) == [True]
    assert await relay.clear_stale(duties) == 0
    assert await db.fetchval("SELECT enqueued_at IS NOT NULL FROM jobs WHERE id = $1", waiting)

    assert broker.connection is not None
    async with broker.connection.channel() as channel:
        queue = await channel.declare_queue(broker.topology.work_queue("default"), passive=True)
        await queue.purge()
    assert await relay.clear_stale(duties) == 1
    assert await db.fetchval("SELECT enqueued_at IS NULL FROM jobs WHERE id = $1", waiting)


async def test_a_queue_the_broker_cannot_count_is_not_presumed_to_have_lost_anything(
    config: Config, db: asyncpg.Pool
) -> None:
    down = Broker(config, name="test")
    duties = Duties(dataclasses.replace(config, relay_stale_s=600.0), db, down, Metrics("scheduler"))
    waiting = await lost_row(db)
    assert await relay.clear_stale(duties) == 0
    assert await db.fetchval("SELECT enqueued_at IS NOT NULL FROM jobs WHERE id = $1", waiting)
