"""The gateway as a real process against real PostgreSQL and RabbitMQ: the API contract, end to end."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import asyncpg
import pytest
from multidict import CIMultiDictProxy

from gleaner.services.gateway.auth import hash_key
from gleaner.services.gateway.payload_filter import SCAN_IDS
from gleaner.shared.amqp import Topology
from gleaner.shared.config import Config
from tests.support.contract import checked_session
from tests.support.stack import Api, Stack, eventually, free_port

PROBLEM = "application/problem+json"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_url)
    yield connection
    await connection.close()


@pytest.fixture
def extra_env() -> dict[str, str]:
    return {"GLEANER_QUEUES": "default,idle"}


@pytest.fixture
async def gateway(stack: Stack, api_factory: type[Api]) -> Api:
    service = await stack.start("gateway", GLEANER_MAX_BODY_BYTES="65536")
    return api_factory(service.url)


async def raw(api: Api, method: str, path: str, **kwargs: Any) -> tuple[int, CIMultiDictProxy[str], Any]:
    async with api.session.request(method, api.base_url + path, **kwargs) as response:
        body = await response.read()
        data = await response.json(content_type=None) if body else None
        return response.status, response.headers, data


async def fail_job(db: asyncpg.Connection, job_id: int, error_class: str = "boom") -> None:
    await db.execute(
        "UPDATE jobs SET state = 'failed', attempt = 1, finished_at = now(), "
        "error = jsonb_build_object('class', $2::text, 'message', 'it broke') WHERE id = $1",
        job_id,
        error_class,
    )


async def test_a_submitted_job_is_a_202_with_location_and_its_row_exists(gateway: Api, db: asyncpg.Connection) -> None:
    job = {"kind": "noop", "payload": {"a": 1}, "priority": 7}
    status, headers, body = await raw(gateway, "POST", "/jobs", json=job, headers={"X-Request-Id": "r-1"})
    assert status == 202, body
    assert headers["Location"] == f"/api/v1/jobs/{body['id']}"
    assert headers["X-Request-Id"] == "r-1"
    assert body["state"] == "queued" and body["priority"] == 7 and body["payload"] == {"a": 1}
    assert body["created_at"].endswith("Z")
    row = await db.fetchrow("SELECT kind, request_id, queue FROM jobs WHERE id = $1", body["id"])
    assert row is not None
    assert dict(row) == {"kind": "noop", "request_id": "r-1", "queue": "default"}
    assert (await gateway.job(body["id"]))["id"] == body["id"]


async def test_a_delayed_job_is_scheduled(gateway: Api) -> None:
    job = await gateway.submit(kind="noop", delay_s=3600)
    assert job["state"] == "scheduled"


async def test_a_submission_answers_each_job_exactly_as_reading_it_back_does(gateway: Api) -> None:
    """The answer is built from the submission and the few columns the insert returns; it must not differ from the
    stored row in anything (defaults, numbers given as integers, a payload whose keys jsonb orders otherwise)."""
    later = await gateway.submit(kind="noop", delay_s=3600)
    jobs: list[dict[str, Any]] = [
        {"kind": "noop"},
        {"kind": "noop", "payload": {"zz": [1, 2.5, {"b": None, "a": True}], "a": "x"}, "priority": 9},
        {"kind": "sleep", "queue": "idle", "max_attempts": 7, "timeout_s": 30, "soft_timeout_s": 10},
        {"kind": "noop", "retry_base_s": 2, "retry_cap_s": 60.5, "dedupe_key": "same-as-read", "delay_s": 90},
        {"kind": "noop", "run_at": "2100-01-01T00:00:00Z", "site": "nowhere"},
        {"kind": "noop", "depends_on": [later["id"]], "on_dependency_failure": "run"},
    ]
    answers = [await gateway.submit(**job) for job in jobs]
    plain = [job | {"dedupe_key": "another"} if "dedupe_key" in job else job for job in jobs[:-1]]
    status, _, batch = await raw(gateway, "POST", "/jobs/batch", json={"jobs": plain})
    assert status == 202, batch
    status, _, linked = await raw(gateway, "POST", "/jobs/batch", json={"jobs": [{"kind": "noop"}], "then": jobs[1]})
    assert status == 202, linked
    answers += [*batch["jobs"], *linked["jobs"], linked["then"]]
    for answer in answers:
        assert answer == await gateway.job(answer["id"])
    assert [a["state"] for a in answers[:6]] == ["queued", "queued", "queued", "scheduled", "scheduled", "blocked"]


async def test_invalid_submissions_are_422_problems_naming_their_fields(gateway: Api) -> None:
    body = {"kind": "noop", "priority": 10, "colour": "red", "queue": "nope"}
    status, headers, problem = await raw(gateway, "POST", "/jobs", json=body)
    assert status == 422
    assert headers["Content-Type"].startswith(PROBLEM)
    assert {e["field"] for e in problem["errors"]} == {"priority", "colour", "queue"}
    batch = {"jobs": [{"kind": "noop"}, {"kind": "noop"}, {"kind": "noop"}, {"kind": "noop", "priority": -1}]}
    status, _, problem = await raw(gateway, "POST", "/jobs/batch", json=batch)
    assert status == 422 and [e["field"] for e in problem["errors"]] == ["jobs[3].priority"]
    status, _, listing = await raw(gateway, "GET", "/jobs")
    assert listing["jobs"] == []


async def test_malformed_json_is_400_and_an_oversized_body_413(gateway: Api) -> None:
    headers = {"Content-Type": "application/json"}
    status, h, problem = await raw(gateway, "POST", "/jobs", data=b'{"kind": ', headers=headers)
    assert status == 400 and h["Content-Type"].startswith(PROBLEM), problem
    huge = b'{"kind": "noop", "payload": {"x": "' + b"a" * 100_000 + b'"}}'
    status, h, problem = await raw(gateway, "POST", "/jobs", data=huge, headers=headers)
    assert status == 413 and h["Content-Type"].startswith(PROBLEM), problem
    status, h, _ = await raw(gateway, "DELETE", "/jobs")
    assert status == 405 and h["Content-Type"].startswith(PROBLEM)
    status, _, _ = await raw(gateway, "GET", "/jobs/123456")
    assert status == 404


async def test_keys_are_checked_for_presence_validity_and_scope(
    stack: Stack, gateway: Api, db: asyncpg.Connection
) -> None:
    async with checked_session() as anonymous:
        async with anonymous.get(gateway.base_url + "/jobs") as response:
            assert response.status == 401
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        async with anonymous.get(gateway.base_url + "/jobs", headers={"Authorization": "Bearer nope"}) as response:
            assert response.status == 401
    printed = await stack.run_cli("apikey", "create", "--name", "reader", "--scopes", "jobs:read")
    key = printed.strip().splitlines()[-1]
    assert key.startswith("glk_")
    assert await db.fetchval("SELECT scopes FROM api_keys WHERE key_hash = $1", hash_key(key)) == ["jobs:read"]
    reader = Api(gateway.base_url.removesuffix("/api/v1"), token=key)
    try:
        assert (await reader.request("GET", "/jobs"))[0] == 200
        assert (await reader.request("POST", "/jobs", json={"kind": "noop"}))[0] == 403
        assert (await reader.request("POST", "/dead-letters/requeue", json={}))[0] == 403
    finally:
        await reader.close()


async def test_an_idempotent_replay_returns_the_same_job_and_another_body_is_422(gateway: Api) -> None:
    headers = {"Idempotency-Key": "k-1"}
    first = await raw(gateway, "POST", "/jobs", json={"kind": "noop"}, headers=headers)
    again = await raw(gateway, "POST", "/jobs", json={"kind": "noop"}, headers=headers)
    assert first[0] == again[0] == 202
    assert first[2]["id"] == again[2]["id"]
    status, _, problem = await raw(gateway, "POST", "/jobs", json={"kind": "sleep"}, headers=headers)
    assert status == 422 and problem["errors"][0]["field"] == "Idempotency-Key"
    batch = {"jobs": [{"kind": "noop"}, {"kind": "noop"}]}
    one = await raw(gateway, "POST", "/jobs/batch", json=batch, headers={"Idempotency-Key": "k-2"})
    two = await raw(gateway, "POST", "/jobs/batch", json=batch, headers={"Idempotency-Key": "k-2"})
    assert [j["id"] for j in one[2]["jobs"]] == [j["id"] for j in two[2]["jobs"]]


async def test_a_dedupe_key_held_by_an_unfinished_job_is_a_409(gateway: Api) -> None:
    first = await gateway.submit(kind="noop", dedupe_key="d-1")
    status, _, problem = await raw(gateway, "POST", "/jobs", json={"kind": "noop", "dedupe_key": "d-1"})
    assert status == 409 and str(first["id"]) in problem["detail"]
    status, _, problem = await raw(
        gateway, "POST", "/jobs/batch", json={"jobs": [{"kind": "noop"}, {"kind": "noop", "dedupe_key": "d-1"}]}
    )
    assert status == 409 and problem["errors"][0]["field"] == "jobs[1].dedupe_key"
    _, _, listing = await raw(gateway, "GET", "/jobs")
    assert [job["id"] for job in listing["jobs"]] == [first["id"]]  # the batch's other job was rolled back


async def test_a_blocked_job_keeps_holding_its_dedupe_key(gateway: Api) -> None:
    later = await gateway.submit(kind="noop", delay_s=3600)
    blocked = await gateway.submit(kind="noop", dedupe_key="d-blocked", depends_on=[later["id"]])
    assert blocked["state"] == "blocked"
    status, _, problem = await raw(gateway, "POST", "/jobs", json={"kind": "noop", "dedupe_key": "d-blocked"})
    assert status == 409 and str(blocked["id"]) in problem["detail"]


async def test_listing_pages_through_every_job_once_and_tokens_are_bound_to_filters(gateway: Api) -> None:
    status, _, body = await raw(gateway, "POST", "/jobs/batch", json={"jobs": [{"kind": "sleep"}] * 25})
    assert status == 202
    created = [j["id"] for j in body["jobs"]]
    seen: list[int] = []
    token: str | None = None
    pages = 0
    while True:
        params = {"kind": "sleep", "page_size": "10", **({"page_token": token} if token else {})}
        status, listing = await gateway.request("GET", "/jobs", params=params)
        assert status == 200
        seen += [j["id"] for j in listing["jobs"]]
        pages += 1
        token = listing["next_page_token"]
        if token is None:
            break
    assert pages == 3
    assert seen == sorted(created, reverse=True)
    status, _, _ = await raw(gateway, "GET", "/jobs", params={"page_size": "10"})
    _, first = await gateway.request("GET", "/jobs", params={"kind": "sleep", "page_size": "10"})
    status, _, problem = await raw(gateway, "GET", "/jobs", params={"page_token": first["next_page_token"]})
    assert status == 422 and problem["errors"][0]["field"] == "page_token"


async def test_jobs_are_listed_by_what_their_payload_contains(gateway: Api) -> None:
    payloads = [
        {"ticker": "PETR4", "page": 1},
        {"ticker": "PETR4", "page": 2, "tags": ["a", "b"]},
        {"ticker": "VALE3", "page": 1},
        {"ticker": 4},
    ]
    status, _, body = await raw(
        gateway,
        "POST",
        "/jobs/batch",
        json={"jobs": [{"kind": "noop", "queue": "idle", "payload": p} for p in payloads]},
    )
    assert status == 202
    ids = [j["id"] for j in body["jobs"]]

    async def listed(params: dict[str, str]) -> list[int]:
        status, listing = await gateway.request("GET", "/jobs", params=params)
        assert status == 200, listing
        return sorted(j["id"] for j in listing["jobs"])

    assert await listed({"payload.ticker": "PETR4"}) == ids[:2]
    assert await listed({"payload": '{"page": 1}'}) == [ids[0], ids[2]]
    assert await listed({"payload": '{"tags": ["b"]}', "payload.ticker": "PETR4"}) == [ids[1]]
    assert await listed({"payload": '{"ticker": 4}'}) == [ids[3]]
    assert await listed({"payload.ticker": "4"}) == [], "a key parameter asks for the string"
    status, _, problem = await raw(gateway, "GET", "/jobs", params={"payload": "[1]"})
    assert status == 422 and problem["errors"][0]["field"] == "payload"


async def test_a_payload_search_looks_at_a_bounded_stretch_per_page_and_its_tokens_reach_the_oldest_match(
    gateway: Api, db: asyncpg.Connection
) -> None:
    needle = {"kind": "noop", "queue": "idle", "payload": {"needle": True}}
    _, oldest = await gateway.request("POST", "/jobs", json=needle)
    # two and a half pages' stretch of other jobs between the two matches
    await db.execute(
        "INSERT INTO jobs (kind, queue, payload, state, finished_at) "
        "SELECT 'noop', 'idle', jsonb_build_object('n', n), 'succeeded', now() FROM generate_series(1, $1) AS n",
        SCAN_IDS * 5 // 2,
    )
    _, newest = await gateway.request("POST", "/jobs", json=needle)
    pages: list[list[int]] = []
    params = {"payload": '{"needle": true}', "page_size": "5"}
    while True:
        status, page = await gateway.request("GET", "/jobs", params=params)
        assert status == 200, page
        pages.append([j["id"] for j in page["jobs"]])
        if page["next_page_token"] is None:
            break
        params["page_token"] = page["next_page_token"]
    assert [i for ids in pages for i in ids] == [newest["id"], oldest["id"]]
    assert pages[0] == [newest["id"]], "the newest stretch holds the newest match"
    assert [] in pages, "a stretch without a match is an empty page that goes on"
    assert 3 <= len(pages) <= 4, pages


async def test_cancelling_a_queued_job_finishes_it_and_a_second_cancel_is_409(gateway: Api) -> None:
    job = await gateway.submit(kind="noop", queue="idle")
    status, body = await gateway.request("POST", f"/jobs/{job['id']}/cancel")
    assert status == 200 and body["state"] == "cancelled" and body["finished_at"] is not None
    status, _ = await gateway.request("POST", f"/jobs/{job['id']}/cancel")
    assert status == 409
    waited = await gateway.job(job["id"], wait=5)
    assert waited["state"] == "cancelled"


async def test_retrying_a_failed_job_queues_it_with_a_fresh_budget(gateway: Api, db: asyncpg.Connection) -> None:
    job = await gateway.submit(kind="noop", queue="idle")
    status, _ = await gateway.request("POST", f"/jobs/{job['id']}/retry")
    assert status == 409
    await fail_job(db, job["id"])
    status, body = await gateway.request("POST", f"/jobs/{job['id']}/retry")
    assert status == 202 and body["state"] == "queued" and body["error"] is None
    row = await db.fetchrow("SELECT attempt, attempt_base, finished_at FROM jobs WHERE id = $1", job["id"])
    assert row is not None
    assert (row["attempt"], row["attempt_base"], row["finished_at"]) == (1, 1, None)
    status, attempts = await gateway.request("GET", f"/jobs/{job['id']}/attempts")
    assert status == 200 and attempts == {"attempts": []}


async def test_dead_letters_are_listed_requeued_and_deleted(gateway: Api, db: asyncpg.Connection) -> None:
    jobs = [await gateway.submit(kind="noop", queue="idle") for _ in range(3)]
    for job in jobs:
        await fail_job(db, job["id"], "bulk" if job is not jobs[0] else "single")
    await db.execute(
        "INSERT INTO dead_letters (queue, reason, detail, body) VALUES ('default', 'undecodable', 'bad', $1)",
        b"\x00 not a job",
    )
    status, listing = await gateway.request("GET", "/dead-letters")
    assert status == 200
    ids = [d["id"] for d in listing["dead_letters"]]
    assert {f"job-{j['id']}" for j in jobs} <= set(ids)
    message = next(d for d in listing["dead_letters"] if d["type"] == "message")
    assert "not a job" in message["body"]
    status, _ = await gateway.request("POST", f"/dead-letters/{message['id']}/requeue")
    assert status == 409
    status, body = await gateway.request("POST", f"/dead-letters/job-{jobs[0]['id']}/requeue")
    assert status == 202 and body["state"] == "queued"
    status, body = await gateway.request("POST", "/dead-letters/requeue", json={"error_class": "bulk", "limit": 1})
    assert (status, body) == (200, {"requeued": 1})
    status, _ = await gateway.request("DELETE", f"/dead-letters/{message['id']}")
    assert status == 204
    failed = await db.fetchval("SELECT id FROM jobs WHERE state = 'failed'")
    status, _ = await gateway.request("DELETE", f"/dead-letters/job-{failed}")
    assert status == 204
    status, listing = await gateway.request("GET", "/dead-letters")
    assert listing["dead_letters"] == []


async def test_a_failed_job_s_dead_letter_says_what_it_was_asked_to_do_and_how_often_it_tried(
    gateway: Api, db: asyncpg.Connection
) -> None:
    # seed 002 reads a dead letter's target URL from it: the payload, kind, attempts and budget are all there
    job = await gateway.submit(
        kind="noop", queue="idle", payload={"target_url": "https://example.com/a"}, max_attempts=4
    )
    await fail_job(db, job["id"])

    _, listing = await gateway.request("GET", "/dead-letters", params={"type": "job"})

    (letter,) = listing["dead_letters"]
    assert letter["payload"] == {"target_url": "https://example.com/a"}
    assert (letter["kind"], letter["attempt"], letter["max_attempts"], letter["site"]) == ("noop", 1, 4, None)


async def test_a_resolved_dead_letter_leaves_the_list_keeps_its_history_and_is_not_bulk_requeued(
    gateway: Api, db: asyncpg.Connection
) -> None:
    first, second = [await gateway.submit(kind="noop", queue="idle") for _ in range(2)]
    for job in (first, second):
        await fail_job(db, job["id"])

    status, _ = await gateway.request("POST", f"/dead-letters/job-{first['id']}/resolve", json={"note": "site gone"})
    _, open_letters = await gateway.request("GET", "/dead-letters")
    _, resolved = await gateway.request("GET", "/dead-letters", params={"resolved": "true"})
    _, bulk = await gateway.request("POST", "/dead-letters/requeue", json={})
    _, job = await gateway.request("GET", f"/jobs/{first['id']}")

    assert status == 204
    assert [d["id"] for d in open_letters["dead_letters"]] == [f"job-{second['id']}"]
    assert [(d["id"], d["resolution"]) for d in resolved["dead_letters"]] == [(f"job-{first['id']}", "site gone")]
    assert bulk["requeued"] == 1, "only the open letter"
    assert job["state"] == "failed" and job["resolution"] == "site gone" and job["resolved_at"] is not None

    status, requeued = await gateway.request("POST", f"/dead-letters/job-{first['id']}/requeue")
    assert status == 202 and requeued["resolved_at"] is None and requeued["resolution"] is None
    assert (await gateway.request("POST", f"/dead-letters/job-{first['id']}/resolve"))[0] == 409
    assert (await gateway.request("POST", "/dead-letters/message-999999/resolve"))[0] == 404
    bad, problem = await gateway.request("POST", f"/dead-letters/job-{second['id']}/resolve", json={"note": 5})
    assert bad == 422 and problem["errors"][0]["field"] == "note"


async def test_queues_report_broker_depth_and_database_counts(gateway: Api) -> None:
    await gateway.submit(kind="noop", queue="idle")
    await gateway.submit(kind="noop", queue="idle", delay_s=3600)

    async def counted() -> dict[str, Any]:
        status, body = await gateway.request("GET", "/queues")
        assert status == 200
        return {q["name"]: q for q in body["queues"]}

    queues = await counted()
    assert set(queues) == {"default", "idle"}
    idle = queues["idle"]
    assert (idle["queued"], idle["scheduled"]) == (1, 1)
    assert idle["consumers"] == 0 and idle["ready"] in (0, 1) and idle["unacked"] == 0


async def test_queues_count_messages_a_consumer_holds_unacked(gateway: Api, config: Config) -> None:
    await gateway.submit(kind="noop", queue="idle")
    connection = await aio_pika.connect(config.amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(Topology.from_config(config).work_queue("idle"), ensure=False)
        held = await eventually(lambda: queue.get(fail=False), what="the job's message")

        async def idle_queue() -> dict[str, Any] | None:
            _, body = await gateway.request("GET", "/queues")
            [idle] = [q for q in body["queues"] if q["name"] == "idle"]
            # RabbitMQ samples its management figures every few seconds
            return idle if idle["unacked"] == 1 else None

        idle = await eventually(idle_queue, timeout_s=20, interval_s=0.5, what="unacked 1 in /queues")
        assert (idle["ready"], idle["running"]) == (0, 0)
        await held.ack()
    finally:
        await connection.close()


async def test_queues_without_the_management_api_still_count_ready_messages(
    stack: Stack, api_factory: type[Api]
) -> None:
    service = await stack.start(
        "gateway", GLEANER_RABBITMQ_MANAGEMENT_URL=f"http://127.0.0.1:{free_port()}", GLEANER_QUEUE_DEPTH_TTL_S="0"
    )
    api = api_factory(service.url)
    await api.submit(kind="noop", queue="idle")

    _, body = await api.request("GET", "/queues")

    [idle] = [q for q in body["queues"] if q["name"] == "idle"]
    assert (idle["ready"], idle["unacked"], idle["consumers"]) == (1, None, 0), "a zero TTL asks every time"


async def test_queues_reuse_the_brokers_counts_for_a_while_then_show_new_messages(
    stack: Stack, api_factory: type[Api]
) -> None:
    service = await stack.start("gateway", GLEANER_RABBITMQ_MANAGEMENT_URL="off", GLEANER_QUEUE_DEPTH_TTL_S="10")
    api = api_factory(service.url)

    async def idle_ready() -> int:
        _, body = await api.request("GET", "/queues")
        [idle] = [q for q in body["queues"] if q["name"] == "idle"]
        return int(idle["ready"])

    assert await idle_ready() == 0, "counted when the gateway started"
    await api.submit(kind="noop", queue="idle")
    assert await idle_ready() == 0, "the broker is asked every 10 s, not for every request"

    async def counted() -> bool:
        return await idle_ready() == 1

    await eventually(counted, timeout_s=25, interval_s=0.5, what="ready 1 once the gateway asked again")


async def test_the_openapi_document_is_served_without_auth(gateway: Api) -> None:
    async with checked_session() as anonymous, anonymous.get(gateway.base_url + "/openapi.json") as response:
        assert response.status == 200
        document = await response.json()
    assert document["openapi"].startswith("3.1")


async def test_a_waiting_read_returns_as_soon_as_the_job_finishes(gateway: Api) -> None:
    job = await gateway.submit(kind="noop", queue="idle")
    started = time.monotonic()
    waiter = asyncio.create_task(gateway.job(job["id"], wait=10))
    await asyncio.sleep(0.3)
    assert not waiter.done()
    status, _ = await gateway.request("POST", f"/jobs/{job['id']}/cancel")
    assert status == 200
    finished = await waiter
    assert finished["state"] == "cancelled"
    assert time.monotonic() - started < 5
    status, body = await gateway.request("GET", f"/jobs/{job['id']}", params={"wait": "61"})
    assert status == 422 and body["errors"][0]["field"] == "wait"


async def test_requests_are_counted_by_route_template(gateway: Api) -> None:
    job = await gateway.submit(kind="noop", queue="idle")
    await gateway.job(job["id"])
    metrics_url = gateway.base_url.removesuffix("/api/v1") + "/metrics"
    async with checked_session() as anonymous, anonymous.get(metrics_url) as response:
        text = await response.text()
    assert 'gleaner_http_requests_total{code="200",method="GET",route="/api/v1/jobs/{id}"}' in text
    assert 'gleaner_jobs_submitted_total{kind="noop",queue="idle"} 1.0' in text


async def test_a_batch_of_alike_jobs_stores_each_with_the_values_they_share_and_its_own_payload(gateway: Api) -> None:
    """The insert sends a value every item sets alike once: each row must still get it, and its own payload."""
    alike = {"kind": "sleep", "queue": "idle", "priority": 3, "max_attempts": 5, "timeout_s": 20, "site": "one"}
    jobs = [alike | {"payload": {"seconds": 0, "i": i}} for i in range(3)] + [alike | {"payload": {"seconds": 0}}] * 2
    status, _, batch = await raw(gateway, "POST", "/jobs/batch", json={"jobs": jobs})
    assert status == 202, batch
    stored = [await gateway.job(answer["id"]) for answer in batch["jobs"]]
    assert stored == batch["jobs"]
    assert [job["payload"] for job in stored] == [job["payload"] for job in jobs]
    shared = {(j["kind"], j["queue"], j["priority"], j["max_attempts"], j["timeout_s"], j["site"]) for j in stored}
    assert shared == {("sleep", "idle", 3, 5, 20.0, "one")}
