"""`GET /api/v1/events` read with a plain HTTP client: filters, keep-alive, resume, a client leaving mid-stream."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from typing import Any

import pytest

from tests.support.contract import checked_session
from tests.support.sse import Message, Stream
from tests.support.stack import Api, Service, Stack, eventually

Opener = Callable[..., AbstractAsyncContextManager[Stream]]


@pytest.fixture
async def gateway(stack: Stack) -> Service:
    return await stack.start("gateway", GLEANER_EVENTS_KEEPALIVE_S="0.5")


@pytest.fixture
async def api(gateway: Service, api_factory: type[Api]) -> Api:
    return api_factory(gateway.url)


@pytest.fixture
def open_stream(api: Api) -> Opener:
    @asynccontextmanager
    async def opened(params: Any = (), headers: dict[str, str] | None = None) -> AsyncIterator[Stream]:
        response = await api.session.get(f"{api.base_url}/events", params=params, headers=headers)
        try:
            assert response.status == 200, await response.text()
            assert response.headers["Content-Type"].startswith("text/event-stream")
            yield Stream(response)
        finally:
            response.close()

    return opened


def of_job(job_id: int, type_: str) -> Callable[[Message], bool]:
    return lambda m: m.event == type_ and m.json()["job_id"] == job_id


async def streams_open(api: Api) -> float:
    async with api.session.get(api.base_url.removesuffix("/api/v1") + "/metrics") as response:
        text = await response.text()
    line = next(line for line in text.splitlines() if line.startswith("gleaner_event_streams "))
    return float(line.split()[1])


async def test_a_stream_shows_each_step_of_the_jobs_its_filters_select_and_keeps_a_quiet_stream_alive(
    stack: Stack, api: Api, open_stream: Opener
) -> None:
    await stack.start("worker")
    async with (
        open_stream([("kind", "noop")]) as noops,
        open_stream([("type", "job.failed"), ("type", "schedule.*")]) as failures,
        open_stream([("queue", "nobody-uses-this-queue")]) as quiet,
    ):
        ok = await api.submit(kind="noop", payload={"n": 1})
        bad = await api.submit(kind="fail", payload={"mode": "permanent"}, max_attempts=1)
        seen = await noops.events_until(of_job(ok["id"], "job.succeeded"))
        steps = [(m.event, m.json()["state"]) for m in seen if m.json()["job_id"] == ok["id"]]
        assert steps == [("job.submitted", "queued"), ("job.started", "running"), ("job.succeeded", "succeeded")]
        done = seen[-1].json()
        assert (done["kind"], done["queue"], done["attempt"], done["error_class"]) == ("noop", "default", 1, None)
        assert all(m.json()["kind"] == "noop" for m in seen)

        failed = await failures.event()
        assert failed.event == "job.failed" and failed.id is not None
        body = failed.json()
        assert (body["job_id"], body["kind"], body["state"], body["attempt"]) == (bad["id"], "fail", "failed", 1)
        assert body["error_class"] and body["error_message"]
        assert (await quiet.next(timeout_s=5)).comment == "keep-alive"


async def test_streams_need_a_read_key_valid_filters_and_may_end_by_themselves(
    stack: Stack, gateway: Service, api: Api, api_factory: type[Api]
) -> None:
    status, body = await api.request("GET", "/events", params=[("state", "finished"), ("job_id", "x"), ("color", "1")])
    assert status == 422
    assert {e["field"] for e in body["errors"]} == {"state", "job_id", "color"}

    created = await stack.run_cli("apikey", "create", "--name", "reader", "--scopes", "jobs:read")
    reader = api_factory(gateway.url, token=created.strip().splitlines()[-1])
    async with reader.session.get(f"{reader.base_url}/events", params={"duration_s": "0.3"}) as response:
        assert response.status == 200
        assert (await response.read()).startswith(b"retry: ")  # and then it ended
    anonymous = checked_session()
    try:
        async with anonymous.get(f"{reader.base_url}/events", params={"duration_s": "0.2"}) as response:
            assert response.status == 401
    finally:
        await anonymous.close()


async def test_a_client_that_leaves_mid_stream_is_forgotten_and_one_that_comes_back_resumes(
    stack: Stack, api: Api, open_stream: Opener
) -> None:
    await stack.start("worker")
    async with open_stream() as leaving:
        job = await api.submit(kind="noop", payload={})
        assert (await leaving.event()).json()["job_id"] == job["id"]
        assert await streams_open(api) == 1
        leaving.response.connection.transport.abort()  # type: ignore[union-attr]  # gone without a goodbye
        for _ in range(3):
            await api.submit(kind="noop", payload={})
    await eventually(lambda: _none_open(api), what="the gateway to forget the stream")
    async with open_stream([("type", "job.succeeded")]) as after:
        job = await api.submit(kind="noop", payload={})
        await after.events_until(of_job(job["id"], "job.succeeded"))

    # a reconnect with Last-Event-ID gets what it missed; an id this replica never gave gets a resync
    async with open_stream([("type", "job.submitted")]) as first:
        job = await api.submit(kind="noop", payload={})
        last = await first.event()
        assert last.json()["job_id"] == job["id"]
    missed = [await api.submit(kind="noop", payload={"n": n}) for n in range(3)]
    async with open_stream([("type", "job.submitted")], headers={"Last-Event-ID": str(last.id)}) as again:
        replayed = [(await again.event()).json()["job_id"] for _ in missed]
        assert replayed == [j["id"] for j in missed]
    async with open_stream(headers={"Last-Event-ID": "another-replica-1.0"}) as lost:
        assert (await lost.event()).event == "resync"
    # the catch-up a resync asks for: the jobs changed since the last event seen, read from PostgreSQL
    status, changed = await api.request("GET", "/jobs", params={"updated_after": last.json()["at"]})
    assert status == 200
    assert {j["id"] for j in missed} <= {j["id"] for j in changed["jobs"]}
    seen_at = datetime.fromisoformat(last.json()["at"])
    assert all(datetime.fromisoformat(j["updated_at"]) > seen_at for j in changed["jobs"])


async def _none_open(api: Api) -> bool:
    return await streams_open(api) == 0
