"""gleaner.Client and gleaner.AsyncClient against the real services (issue 12, acceptance: client round trips)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from gleaner import AsyncClient, Client, Job, Submission, Unauthorized, ValidationError
from tests.support.contract import CheckedAsyncTransport, CheckedTransport
from tests.support.proxy import DroppingProxy
from tests.support.services import ADMIN_TOKEN
from tests.support.stack import Service, Stack, eventually
from tests.typing.sample_client_user import use_async_client, use_client


@pytest.fixture
async def gateway(stack: Stack) -> Service:
    return await stack.start("gateway")


def api_url(service: Service) -> str:
    return f"{service.url}/api/v1"


def submissions(count: int, tag: str) -> list[Submission]:
    return [{"kind": "noop", "payload": {"tag": tag, "i": i}} for i in range(count)]


async def test_a_job_is_submitted_waited_for_and_its_result_read_by_both_clients(
    stack: Stack, gateway: Service
) -> None:
    await stack.start("worker")
    await stack.start("scheduler")

    def sync_round_trip() -> Job:
        with Client(api_url(gateway), ADMIN_TOKEN, transport=CheckedTransport()) as client:
            job = client.jobs.submit("noop", {"hello": "sync"})
            return client.jobs.wait(job.id, timeout_s=30)

    done = await asyncio.to_thread(sync_round_trip)
    async with AsyncClient(api_url(gateway), ADMIN_TOKEN, transport=CheckedAsyncTransport()) as client:
        submitted = await client.jobs.submit("noop", {"hello": "async"}, priority=9)
        async_done = await client.jobs.wait(submitted.id, timeout_s=30)
        attempts = await client.jobs.attempts(submitted.id)

    assert (done.state, done.result, done.attempt) == ("succeeded", {"hello": "sync"}, 1)
    assert (async_done.state, async_done.result, async_done.priority) == ("succeeded", {"hello": "async"}, 9)
    assert [a.outcome for a in attempts] == ["succeeded"] and async_done.finished_at is not None


async def test_a_batch_of_a_thousand_jobs_is_one_call_and_every_job_runs(stack: Stack, gateway: Service) -> None:
    await stack.start("worker")

    def sync_batch() -> tuple[Job, ...]:
        with Client(api_url(gateway), ADMIN_TOKEN, transport=CheckedTransport()) as client:
            return client.jobs.submit_many(submissions(1000, "sync"))

    sync_jobs = await asyncio.to_thread(sync_batch)
    async with AsyncClient(api_url(gateway), ADMIN_TOKEN, transport=CheckedAsyncTransport()) as client:
        async_jobs = await client.jobs.submit_many(submissions(1000, "async"))

        async def all_succeeded() -> bool:
            return len([j async for j in client.jobs.list(state="succeeded", page_size=500)]) == 2000

        await eventually(all_succeeded, timeout_s=90, interval_s=0.5, what="2,000 jobs succeeded")

    ids = [j.id for j in (*sync_jobs, *async_jobs)]
    assert len(sync_jobs) == len(async_jobs) == 1000 and len(set(ids)) == 2000
    assert [j.payload["i"] for j in sync_jobs] == list(range(1000))


async def test_listing_pages_through_2500_jobs_without_duplicates_or_gaps(gateway: Service) -> None:
    async with AsyncClient(api_url(gateway), ADMIN_TOKEN, transport=CheckedAsyncTransport()) as client:
        submitted = []
        for size in (1000, 1000, 500):
            submitted += [j.id for j in await client.jobs.submit_many(submissions(size, "list"))]
        async_listed = [j.id async for j in client.jobs.list(kind="noop", page_size=500)]

    def sync_list() -> list[int]:
        with Client(api_url(gateway), ADMIN_TOKEN, transport=CheckedTransport()) as client:
            return [j.id for j in client.jobs.list(state="queued", page_size=100)]

    sync_listed = await asyncio.to_thread(sync_list)

    for listed in (sync_listed, async_listed):
        assert len(listed) == 2500 and len(set(listed)) == 2500
        assert set(listed) == set(submitted)
        assert listed == sorted(listed, reverse=True)  # newest first, page after page


async def test_a_422_surfaces_as_a_validation_error_naming_the_field_and_a_bad_key_as_unauthorized(
    gateway: Service,
) -> None:
    def sync_submit() -> ValidationError:
        with (
            Client(api_url(gateway), ADMIN_TOKEN, transport=CheckedTransport()) as client,
            pytest.raises(ValidationError) as caught,
        ):
            client.jobs.submit("noop", {"n": 1}, priority=12)
        return caught.value

    error = await asyncio.to_thread(sync_submit)
    async with AsyncClient(api_url(gateway), ADMIN_TOKEN, transport=CheckedAsyncTransport()) as client:
        with pytest.raises(ValidationError) as caught:
            await client.jobs.submit_many([{"kind": "noop"}, {"kind": "noop", "queue": "no-such-queue"}])
        stored = [j async for j in client.jobs.list()]
    async with AsyncClient(
        api_url(gateway), "not-a-key-of-this-gateway", transport=CheckedAsyncTransport()
    ) as stranger:
        with pytest.raises(Unauthorized) as refused:
            await stranger.jobs.get(1)

    assert error.status == 422 and error.title == "Unprocessable Content"
    assert error.message_for("priority") is not None and [e.field for e in error.errors] == ["priority"]
    assert caught.value.status == 422 and caught.value.message_for("jobs[1].queue") is not None
    assert stored == []
    assert refused.value.status == 401


async def test_a_submission_whose_connection_dropped_after_the_gateway_acted_is_retried_without_a_duplicate(
    gateway: Service, db: asyncpg.Connection
) -> None:
    async with DroppingProxy(gateway.port, drops=1) as proxy:

        def sync_submit() -> Job:
            with Client(f"http://127.0.0.1:{proxy.port}/api/v1", ADMIN_TOKEN, transport=CheckedTransport()) as client:
                return client.jobs.submit("noop", {"via": "sync"})

        job = await asyncio.to_thread(sync_submit)
        sync_rows = await db.fetch("SELECT id FROM jobs WHERE payload->>'via' = 'sync'")
        sync_dropped, sync_connections = proxy.dropped, proxy.connections

    async with DroppingProxy(gateway.port, drops=1) as proxy:
        async with AsyncClient(
            f"http://127.0.0.1:{proxy.port}/api/v1", ADMIN_TOKEN, transport=CheckedAsyncTransport()
        ) as client:
            jobs = await client.jobs.submit_many(
                [{"kind": "noop", "payload": {"via": "async", "i": i}} for i in range(5)]
            )
        async_rows = await db.fetch("SELECT id FROM jobs WHERE payload->>'via' = 'async' ORDER BY id")

    # the first connection carried the request to the gateway and was cut before its answer came back
    assert (sync_dropped, sync_connections) == (1, 2) and (proxy.dropped, proxy.connections) == (1, 2)
    assert [r["id"] for r in sync_rows] == [job.id]
    assert [r["id"] for r in async_rows] == [j.id for j in jobs] and len(jobs) == 5


async def test_every_method_of_both_clients_reads_the_live_answers(stack: Stack, gateway: Service) -> None:
    await stack.start("worker")

    def sync_use() -> dict[str, object]:
        with Client(api_url(gateway), ADMIN_TOKEN, transport=CheckedTransport()) as client:
            return use_client(client)

    summary = await asyncio.to_thread(sync_use)
    async with AsyncClient(api_url(gateway), ADMIN_TOKEN, transport=CheckedAsyncTransport()) as client:
        async_summary = await use_async_client(client)

    assert summary["result"] == {"n": 1} and summary["batch"] == 3 and summary["attempts"] == ["succeeded"]
    assert len(summary["listed"]) == 1 and summary["page"] == 2 and summary["results"] == []
    assert (summary["cancelled"], summary["retried"]) == ("cancelled", "queued")
    assert summary["letters"] and summary["resolved"] == ["seen"] and summary["requeued"] == "queued"
    assert summary["bulk"] == 1 and summary["deleted"] == 404
    assert (summary["taken"], summary["updated"], summary["replaced"], summary["preview"]) == (True, "cron", 1800.0, 3)
    assert (summary["paused"], summary["resumed"], summary["triggered"], summary["got"]) == (
        True,
        False,
        True,
        "hourly",
    )
    assert "hourly" in summary["schedules"] and summary["scheduler"][:2] == [True, False]
    assert summary["site"] == (2, 0) and "example.org" in summary["sites"]
    assert (summary["queue_paused"], summary["queue_resumed"]) == ("maintenance", False)
    assert summary["workers"] == 1 and "noop" in summary["stats"] and summary["health"] is True
    assert summary["kinds"] == [("noop", 1)] and summary["kind"] is True
    assert summary["webhooks"] == [("https://example.com/hook", {"kind": ["nothing.*"]})]
    assert [(t, s) for t, _, s in summary["events"]] == [("job.started", "running"), ("job.succeeded", "succeeded")]
    assert summary["event_ids"] is True
    assert async_summary["result"] == {"n": 1} and async_summary["cancelled"] == "cancelled"
    assert len(async_summary["listed"]) == 2 and async_summary["site"] == 3
    assert async_summary["workers"] == 1 and async_summary["health"] is True
    assert "sleep" in async_summary["kinds"] and "noop" not in async_summary["kinds"]
    assert async_summary["webhooks"] is True and async_summary["events"][-2:] == ["job.started", "job.succeeded"]
    assert async_summary["kind"] == "Sleeps `seconds` (default 1, cancellable), then succeeds."
