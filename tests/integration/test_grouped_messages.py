"""Several jobs per message against real services: fewer messages, each job once, faults and cancels per job."""

from __future__ import annotations

import asyncpg
import orjson
import pytest

from gleaner.shared.amqp import Broker
from gleaner.shared.messages import JobGroup, JobMessage
from tests.integration.broker_admin import queue_messages
from tests.integration.test_poison import letters, publish_raw
from tests.integration.test_sites_support import LOCAL_WORKER_ENV, PageServer, add_site, overlapping, pages
from tests.integration.test_worker_lifecycle import insert_jobs, publish, wait_final
from tests.support import recording
from tests.support.fault_rig import metric
from tests.support.stack import Api, Service, Stack, eventually

GROUP = 16
RUNS = "SELECT job_id, array_agg(attempt ORDER BY attempt) AS attempts FROM recorded_executions GROUP BY job_id"
COMPLETED_TWICE = """
SELECT count(*) FROM (
    SELECT job_id FROM job_attempts WHERE outcome = 'succeeded' GROUP BY job_id HAVING count(*) > 1
) AS twice
"""


@pytest.fixture
def extra_env() -> dict[str, str]:
    return {**recording.SERVICE_ENV, "GLEANER_GROUP_MAX_JOBS": str(GROUP)}


@pytest.fixture
async def recorded(db: asyncpg.Pool) -> asyncpg.Pool:
    await recording.install(db)
    return db


async def paused_worker(stack: Stack, db: asyncpg.Pool, api_factory: type[Api]) -> tuple[Service, Api]:
    """A worker that registered its kinds but consumes nothing yet (queue `default` paused), and a gateway."""
    await db.execute("INSERT INTO queue_pauses (queue, reason) VALUES ('default', 'the test counts messages first')")
    await stack.start("worker")
    gateway = await stack.start("gateway")
    return gateway, api_factory(gateway.url)


async def resume(api: Api) -> None:
    status, body = await api.request("POST", "/queues/default/resume")
    assert status == 200, body


async def submit_published(gateway: Service, api: Api, count: int) -> tuple[list[int], float]:
    """Submit `count` recording jobs in one batch; their ids and the messages the gateway's publish took."""
    jobs = [{"kind": "record.noop", "payload": {"n": n}} for n in range(count)]
    status, body = await api.request("POST", "/jobs/batch", json={"jobs": jobs})
    assert status == 202, body

    async def all_enqueued() -> bool:
        return await metric(gateway, "gleaner_jobs_enqueued_total") == count

    await eventually(all_enqueued, timeout_s=20, what="every job's message confirmed")
    return [job["id"] for job in body["jobs"]], await metric(gateway, "gleaner_job_messages_published_total")


async def runs_of(db: asyncpg.Pool) -> dict[int, list[int]]:
    """Job id → the attempts that executed it, in order."""
    return {r["job_id"]: list(r["attempts"]) for r in await db.fetch(RUNS)}


async def test_a_batch_of_a_thousand_travels_in_far_fewer_messages_and_every_job_runs_exactly_once(
    stack: Stack, recorded: asyncpg.Pool, broker: Broker, api_factory: type[Api]
) -> None:
    gateway, api = await paused_worker(stack, recorded, api_factory)
    ids, messages = await submit_published(gateway, api, 1000)
    assert messages == -(-1000 // GROUP)  # 63 messages for 1,000 jobs
    work_queue = broker.topology.work_queue("default")

    async def sampled() -> bool:
        return await queue_messages(work_queue) == messages

    await eventually(sampled, timeout_s=15, interval_s=0.5, what="the broker's count of the published messages")

    await resume(api)
    finished = await wait_final(recorded, ids, timeout_s=60)
    assert {row["state"] for row in finished.values()} == {"succeeded"}
    assert await runs_of(recorded) == {job_id: [1] for job_id in ids}
    assert await recorded.fetchval("SELECT count(*) FROM job_attempts") == 1000


async def test_a_worker_killed_mid_group_loses_nothing_and_runs_no_recorded_job_again(
    stack: Stack, recorded: asyncpg.Pool, broker: Broker
) -> None:
    # two slots: six quick jobs finish, then two slow ones take both slots while eight wait unclaimed in the group
    quick_before = await insert_jobs(recorded, 6, "record.noop")
    slow = await insert_jobs(recorded, 2, "record.sleep", {"seconds": 6}, retry_base_s=0.1)
    quick_after = await insert_jobs(recorded, 8, "record.noop")
    ids = [*quick_before, *slow, *quick_after]
    await stack.start("scheduler")  # its reaper recovers the slow jobs' leases
    victim = await stack.start("worker", "victim", GLEANER_WORKER_CONCURRENCY="2")
    await publish(recorded, broker, ids)  # one message: the 16 share the queue and priority

    async def slow_running() -> bool:
        runs = await runs_of(recorded)
        return all(job_id in runs for job_id in [*quick_before, *slow])

    await eventually(slow_running, timeout_s=20, what="the quick jobs done and the slow ones running")
    assert not set(await runs_of(recorded)) & set(quick_after)
    victim.kill()
    await stack.start("worker", "survivor", GLEANER_WORKER_CONCURRENCY="2")

    finished = await wait_final(recorded, ids, timeout_s=60)
    assert {row["state"] for row in finished.values()} == {"succeeded"}
    runs = await runs_of(recorded)
    # recorded before the kill: never again; unclaimed at the kill: once, from the redelivered group
    assert {job_id: runs[job_id] for job_id in [*quick_before, *quick_after]} == {
        job_id: [1] for job_id in [*quick_before, *quick_after]
    }
    # running at the kill: their lease ran out, the reaper gave them a second attempt
    assert {job_id: runs[job_id] for job_id in slow} == {job_id: [1, 2] for job_id in slow}
    assert await recorded.fetchval(COMPLETED_TWICE) == 0


async def test_a_job_cancelled_before_its_group_is_claimed_stays_cancelled_and_the_others_run(
    stack: Stack, recorded: asyncpg.Pool, broker: Broker, api_factory: type[Api]
) -> None:
    gateway, api = await paused_worker(stack, recorded, api_factory)
    ids, messages = await submit_published(gateway, api, 5)
    assert messages == 1
    status, _ = await api.request("POST", f"/jobs/{ids[2]}/cancel")
    assert status == 200

    await resume(api)
    finished = await wait_final(recorded, ids, timeout_s=30)
    assert {job_id: row["state"] for job_id, row in finished.items()} == {
        job_id: "cancelled" if job_id == ids[2] else "succeeded" for job_id in ids
    }
    assert sorted(await runs_of(recorded)) == sorted(job_id for job_id in ids if job_id != ids[2])
    work_queue = broker.topology.work_queue("default")

    async def acked() -> bool:
        return await queue_messages(work_queue) == 0

    await eventually(acked, timeout_s=15, interval_s=0.5, what="the group's message acked")


async def test_one_job_messages_of_an_old_publisher_still_run_beside_groups(
    stack: Stack, recorded: asyncpg.Pool, broker: Broker
) -> None:
    # a gateway from before groups (a rolling upgrade) publishes version 1 messages, one per job
    old = await insert_jobs(recorded, 5, "record.noop")
    new = await insert_jobs(recorded, 5, "record.noop")
    singles = [JobMessage(job_id=job_id, attempt=1, queue="default", kind="record.noop") for job_id in old]
    assert await broker.publish_many([(message, 0.0) for message in singles]) == [True] * 5
    await publish(recorded, broker, new)
    await stack.start("worker")
    finished = await wait_final(recorded, [*old, *new])
    assert {row["state"] for row in finished.values()} == {"succeeded"}
    assert await runs_of(recorded) == {job_id: [1] for job_id in [*old, *new]}


async def test_jobs_their_site_cannot_run_now_wait_on_their_own_and_the_rest_of_their_group_runs(
    stack: Stack, recorded: asyncpg.Pool, broker: Broker
) -> None:
    await add_site(recorded, "onebyone", requests_per_hour=1e6, burst=100, max_concurrency=1)
    async with PageServer(pages) as server:
        await stack.start("worker", **LOCAL_WORKER_ENV)
        polite = await insert_jobs(recorded, 3, "http.fetch", {"url": f"{server.url}/slow/1?s=1"}, site="onebyone")
        free = await insert_jobs(recorded, 5, "record.noop")
        await publish(recorded, broker, [*polite, *free])  # one group: one queue, one priority
        jobs = await wait_final(recorded, [*polite, *free], timeout_s=40)
    assert {job["state"] for job in jobs.values()} == {"succeeded"}
    assert overlapping(server.hits) == [] and len(server.hits) == 3
    # the site's slot let one run at a time: the others were deferred, each through its own delayed message
    assert sum(jobs[job_id]["deferrals"] for job_id in polite) >= 2
    assert await runs_of(recorded) == {job_id: [1] for job_id in free}
    assert max(jobs[job_id]["finished_at"] for job_id in free) < max(jobs[job_id]["finished_at"] for job_id in polite)


async def test_poison_in_a_group_is_one_dead_letter_per_culprit_and_a_malformed_group_one_for_the_message(
    stack: Stack, recorded: asyncpg.Pool, broker: Broker
) -> None:
    good = await insert_jobs(recorded, 3, "record.noop")
    missing = JobMessage(job_id=10**12, attempt=1, queue="default", kind="record.noop")
    members = [JobMessage(job_id=job_id, attempt=1, queue="default", kind="record.noop") for job_id in good]
    malformed = orjson.dumps({"v": 2, "queue": "default", "jobs": [{"id": 1, "attempt": 0, "kind": "record.noop"}]})
    await stack.start("worker")
    assert await broker.publish_many([(JobGroup((members[0], missing, *members[1:])), 0.0)]) == [True]
    await publish_raw(broker, malformed)

    finished = await wait_final(recorded, good)
    assert {row["state"] for row in finished.values()} == {"succeeded"}

    async def both_recorded() -> list[asyncpg.Record]:
        found = await letters(recorded)
        return found if len(found) >= 2 else []

    recorded_letters = await eventually(both_recorded, what="a dead letter for the missing job and the bad group")
    by_reason = {letter["reason"]: letter for letter in recorded_letters}
    assert set(by_reason) == {"no_such_job", "undecodable"}
    assert bytes(by_reason["no_such_job"]["body"]) == missing.encode()  # the culprit's own message, not the group
    assert bytes(by_reason["undecodable"]["body"]) == malformed
    assert await runs_of(recorded) == {job_id: [1] for job_id in good}


async def dead_queue_bodies(broker: Broker) -> list[dict[str, object]]:
    """Every message in the dead queue (taken off it), decoded."""
    assert broker.connection is not None
    channel = await broker.connection.channel()
    try:
        queue = await channel.get_queue(broker.topology.dead_queue, ensure=False)
        bodies = []
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            bodies.append(orjson.loads(message.body))
        return bodies
    finally:
        await channel.close()


async def ready_messages(broker: Broker, queue: str) -> int:
    """Messages waiting in a queue (not those a consumer holds unacked)."""
    assert broker.connection is not None
    channel = await broker.connection.channel()
    try:
        declared = await channel.declare_queue(queue, passive=True)
        return int(declared.declaration_result.message_count or 0)
    finally:
        await channel.close()


async def test_a_group_with_one_failed_job_copies_only_that_job_into_the_dead_queue(
    stack: Stack, recorded: asyncpg.Pool, broker: Broker
) -> None:
    before = await insert_jobs(recorded, 3, "record.noop")
    [failing] = await insert_jobs(recorded, 1, "fail", {"mode": "permanent"})
    after = await insert_jobs(recorded, 3, "record.noop")
    ids = [*before, failing, *after]
    worker = await stack.start("worker")
    await publish(recorded, broker, ids)  # one group of seven
    finished = await wait_final(recorded, ids)
    assert {job_id: row["state"] for job_id, row in finished.items()} == {
        job_id: "failed" if job_id == failing else "succeeded" for job_id in ids
    }
    # the failed job's own one-job message, not the group of seven
    [copy] = await eventually(lambda: dead_queue_bodies(broker), what="a copy in the dead queue")
    assert (copy.get("id"), copy.get("attempt")) == (failing, 1)
    assert worker.stop() == 0  # a drained worker: an unacked group would be back in the work queue
    assert await ready_messages(broker, broker.topology.work_queue("default")) == 0
    assert await dead_queue_bodies(broker) == []


async def test_a_worker_started_later_runs_jobs_of_a_group_the_first_has_no_room_for(
    stack: Stack, recorded: asyncpg.Pool, broker: Broker
) -> None:
    ids = await insert_jobs(recorded, 12, "record.sleep", {"seconds": 2})
    first = await stack.start("worker", "first", GLEANER_WORKER_CONCURRENCY="2", GLEANER_WORKER_ID="first")
    await publish(recorded, broker, ids)  # one group of twelve long jobs

    async def first_busy() -> bool:
        return len(await runs_of(recorded)) == 2

    await eventually(first_busy, timeout_s=15, what="the first worker running two jobs")
    await stack.start("worker", "second", GLEANER_WORKER_CONCURRENCY="2", GLEANER_WORKER_ID="second")
    finished = await wait_final(recorded, ids, timeout_s=60)
    assert {row["state"] for row in finished.values()} == {"succeeded"}
    assert await runs_of(recorded) == {job_id: [1] for job_id in ids}
    ran = await recorded.fetch("SELECT worker, count(*) AS jobs FROM recorded_executions GROUP BY worker")
    # the first held four (two running, two waiting) and handed the rest on: the second ran its share
    by_worker = {row["worker"].split("-")[0]: row["jobs"] for row in ran}
    assert set(by_worker) == {"first", "second"}, by_worker
    assert by_worker["second"] >= 4, by_worker
    assert first.log().count("Traceback") == 0
