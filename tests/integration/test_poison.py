"""Poison messages against a real worker: each becomes one dead letter, none is redelivered forever, good jobs run."""

from __future__ import annotations

import aio_pika
import asyncpg
import orjson

from gleaner.shared.amqp import Broker
from gleaner.shared.messages import JobMessage
from tests.integration.broker_admin import queue_messages
from tests.integration.test_worker_lifecycle import insert_jobs, publish, submit, wait_final
from tests.support.stack import Stack, eventually

ENVELOPE = {"v": 1, "id": 1, "attempt": 1, "queue": "default", "kind": "noop"}


async def publish_raw(broker: Broker, body: bytes, headers: dict[str, str] | None = None) -> None:
    assert broker.channel is not None
    exchange = await broker.channel.get_exchange(broker.topology.jobs_exchange, ensure=False)
    await exchange.publish(aio_pika.Message(body, headers=headers or {}), "default")


async def letters(db: asyncpg.Pool) -> list[asyncpg.Record]:
    return list(await db.fetch("SELECT * FROM dead_letters ORDER BY id"))


async def test_every_kind_of_poison_becomes_one_dead_letter_and_the_worker_runs_good_jobs_on(
    stack: Stack, db: asyncpg.Pool, broker: Broker
) -> None:
    await stack.start("worker")
    poison = {
        "not json": (b"\x00not json", None),
        "wrong schema": (orjson.dumps({**ENVELOPE, "id": "one"}), None),
        "no such job": (JobMessage(job_id=10**12, attempt=1, queue="default", kind="noop").encode(), None),
        "id past bigint": (orjson.dumps({**ENVELOPE, "id": 2**63}), None),
        "attempt past int": (orjson.dumps({**ENVELOPE, "attempt": 2**31}), None),
        "NUL in a header": (b"garbage", {"x-note": "a\x00b"}),
    }
    for body, headers in poison.values():
        await publish_raw(broker, body, headers)
    good = await submit(db, broker, 10, "noop")

    jobs = await wait_final(db, good)
    assert {r["state"] for r in jobs.values()} == {"succeeded"}

    async def all_recorded() -> list[asyncpg.Record]:
        found = await letters(db)
        return found if len(found) >= len(poison) else []

    recorded = await eventually(all_recorded, what="a dead letter for each poison message")
    assert sorted(r["reason"] for r in recorded) == sorted(["undecodable"] * 5 + ["no_such_job"])
    noted = next(r for r in recorded if r["body"] == b"garbage")
    assert noted["headers"] == {"x-note": "a\\x00b"}
    # each was rejected once into the dead-letter exchange; nothing is left to redeliver
    dead_queue, work_queue = broker.topology.dead_queue, broker.topology.work_queue("default")

    async def settled() -> bool:
        return await queue_messages(dead_queue) == len(poison) and await queue_messages(work_queue) == 0

    await eventually(settled, timeout_s=15, interval_s=0.5, what="poison in the dead queue, none in the work queue")
    assert len(await letters(db)) == len(poison)


async def test_a_message_whose_handling_keeps_failing_becomes_a_dead_letter_and_its_neighbours_run(
    stack: Stack, db: asyncpg.Pool, broker: Broker
) -> None:
    [refused] = await insert_jobs(db, 1, "noop")
    # PostgreSQL refuses this one row's claim, every time (a stand-in for any value it refuses)
    await db.execute(
        f"""
        CREATE FUNCTION refuse_claim() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.id = {refused} AND NEW.state = 'running' THEN
                RAISE EXCEPTION 'refused for the test' USING ERRCODE = '22023';
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER refuse_claim BEFORE UPDATE ON jobs FOR EACH ROW EXECUTE FUNCTION refuse_claim();
        """
    )
    await stack.start("worker")
    good = await insert_jobs(db, 20, "noop")
    await publish(db, broker, [refused, *good])

    jobs = await wait_final(db, good)
    assert {r["state"] for r in jobs.values()} == {"succeeded"}

    async def given_up() -> list[asyncpg.Record]:
        return await letters(db)

    [letter] = await eventually(given_up, timeout_s=20, interval_s=0.2, what="the refused message given up")
    assert letter["reason"] == "handling_failed"
    assert orjson.loads(letter["body"])["id"] == refused
    assert "refused for the test" in letter["detail"]
    assert letter["headers"]["x-gleaner-failures"] == 4
    assert await db.fetchval("SELECT state FROM jobs WHERE id = $1", refused) == "queued"
