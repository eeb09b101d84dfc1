"""The outbox marker against real RabbitMQ and PostgreSQL: a claimed row is left alone, a waiting one is marked."""

from __future__ import annotations

import asyncpg

from gleaner.services.scheduler.relay import UNPUBLISHED
from gleaner.services.worker.claims import JobStore
from gleaner.shared.amqp import Broker
from gleaner.shared.outbox import OUTBOX_COLUMNS, Marks, OutboxRow, publish_rows
from tests.integration.test_worker_lifecycle import insert_jobs, wait_final
from tests.support.stack import Api, Stack, eventually

# every write that marks a row enqueued (nothing else sets enqueued_at), whoever makes it
AUDIT = """
CREATE TABLE marker_writes (job_id bigint NOT NULL);
CREATE FUNCTION note_marker_write() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    INSERT INTO marker_writes VALUES (NEW.id);
    RETURN NEW;
END $$;
CREATE TRIGGER note_marker_write AFTER UPDATE OF enqueued_at ON jobs
FOR EACH ROW WHEN (OLD.enqueued_at IS NULL AND NEW.enqueued_at IS NOT NULL) EXECUTE FUNCTION note_marker_write();
"""


async def outbox_rows(db: asyncpg.Pool, ids: list[int]) -> list[OutboxRow]:
    records = await db.fetch(f"SELECT {OUTBOX_COLUMNS} FROM jobs WHERE id = ANY($1) ORDER BY id", ids)
    return [OutboxRow.from_record(r) for r in records]


async def versions(db: asyncpg.Pool, ids: list[int]) -> list[tuple[str, str, bool]]:
    """Per row: the transaction that wrote its version, the one that last locked it, whether it is marked."""
    records = await db.fetch(
        "SELECT xmin::text, xmax::text, enqueued_at IS NOT NULL AS marked FROM jobs WHERE id = ANY($1) ORDER BY id",
        ids,
    )
    return [(r["xmin"], r["xmax"], r["marked"]) for r in records]


async def relayed_now(db: asyncpg.Pool, ids: list[int]) -> set[int]:
    """The rows the relay would publish on a pass now, grace or not."""
    return {r["id"] for r in await db.fetch(UNPUBLISHED, 3600.0, 0.0, 1000)} & set(ids)


async def test_a_row_claimed_before_its_marker_flushes_is_neither_locked_nor_written_and_a_waiting_one_is_marked(
    db: asyncpg.Pool, broker: Broker
) -> None:
    claimed = await insert_jobs(db, 3, "noop")
    waiting = await insert_jobs(db, 2, "noop")
    marks = Marks(db, delay_s=3600)
    marks.start()
    assert await publish_rows(broker, db, await outbox_rows(db, claimed + waiting), marks=marks) == 5
    assert [marked for _, _, marked in await versions(db, claimed + waiting)] == [False] * 5

    store = JobStore(db, "w1", lease_s=30)
    assert all(await store.claim([(job_id, 1, 0) for job_id in claimed]))
    after_claim = await versions(db, claimed)
    await marks.close()  # a shutdown flushes what waits

    assert await versions(db, claimed) == after_claim  # same version, no locker: not read for update, not written
    assert [marked for _, _, marked in await versions(db, waiting)] == [True, True]
    assert await relayed_now(db, waiting) == set()


async def test_a_row_still_waiting_after_the_delay_is_marked_before_the_relay_would_take_it(
    db: asyncpg.Pool, broker: Broker
) -> None:
    ids = await insert_jobs(db, 2, "noop")
    marks = Marks(db, delay_s=0.5)
    marks.start()
    try:
        assert await publish_rows(broker, db, await outbox_rows(db, ids), marks=marks) == 2
        assert not await db.fetchval("SELECT bool_or(enqueued_at IS NOT NULL) FROM jobs WHERE id = ANY($1)", ids)

        async def marked() -> bool:
            return bool(await db.fetchval("SELECT bool_and(enqueued_at IS NOT NULL) FROM jobs WHERE id = ANY($1)", ids))

        await eventually(marked, timeout_s=5, what="the waiting rows marked enqueued")
        assert await relayed_now(db, ids) == set()
    finally:
        await marks.close()


async def test_jobs_a_worker_runs_at_once_are_never_written_by_the_gateways_marker_but_a_delayed_one_is(
    stack: Stack, db: asyncpg.Pool, api_factory: type[Api]
) -> None:
    await db.execute(AUDIT)
    gateway = await stack.start("gateway", GLEANER_MARK_DELAY_S="2", GLEANER_RELAY_GRACE_S="30")
    await stack.start("worker")
    api = api_factory(gateway.url)
    # the gateway publishes in order: once the prompt jobs ran, the delayed one's message was confirmed
    delayed = (await api.submit(kind="noop", delay_s=60))["id"]
    prompt = [(await api.submit(kind="noop"))["id"] for _ in range(20)]
    await wait_final(db, prompt)
    assert gateway.stop() == 0  # its shutdown flushes the marks still waiting

    written = {r["job_id"] for r in await db.fetch("SELECT job_id FROM marker_writes")}
    assert written == {delayed}
