"""Client and AsyncClient over httpx's MockTransport: paging, retries with the same key, waiting, errors."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import orjson
import pytest

from gleaner import ApiConnectionError, AsyncClient, Client, RetryPolicy, ValidationError, WaitTimeout

URL = "http://gateway.test/api/v1"
NO_WAIT = RetryPolicy(attempts=3, base_s=0.0, cap_s=0.0)
Handler = Callable[[httpx.Request], httpx.Response]


def job(job_id: int, state: str = "queued") -> dict[str, object]:
    return {"id": job_id, "kind": "noop", "state": state}


def respond(status: int, body: object) -> httpx.Response:
    return httpx.Response(status, content=orjson.dumps(body), headers={"Content-Type": "application/json"})


class Recorder:
    """A scripted gateway: answers in turn (an exception is raised as the transport's failure)."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def client(self, **kwargs: object) -> Client:
        return Client(URL, "t0ken", transport=httpx.MockTransport(self), retry=NO_WAIT, **kwargs)  # type: ignore[arg-type]

    def async_client(self) -> AsyncClient:
        return AsyncClient(URL, "t0ken", transport=httpx.MockTransport(self), retry=NO_WAIT)


def pages_of_jobs(request: httpx.Request) -> httpx.Response:
    """Three pages of two jobs each, newest first, the filter checked on every page."""
    assert request.url.params["state"] == "queued"
    token = request.url.params.get("page_token")
    start = {None: 6, "p2": 4, "p3": 2}[token]
    following = {None: "p2", "p2": "p3", "p3": None}[token]
    return respond(200, {"jobs": [job(start), job(start - 1)], "next_page_token": following})


def test_listing_follows_the_page_tokens_with_the_same_filters_to_the_last_page() -> None:
    with Client(URL, transport=httpx.MockTransport(pages_of_jobs)) as client:
        ids = [j.id for j in client.jobs.list(state="queued", page_size=2)]
    assert ids == [6, 5, 4, 3, 2, 1]


async def test_the_async_listing_follows_the_page_tokens_to_the_last_page() -> None:
    async with AsyncClient(URL, transport=httpx.MockTransport(pages_of_jobs)) as client:
        ids = [j.id async for j in client.jobs.list(state="queued", page_size=2)]
    assert ids == [6, 5, 4, 3, 2, 1]


def test_requests_carry_the_token_and_json_bodies() -> None:
    gateway = Recorder(respond(202, job(1)))
    with gateway.client() as client:
        client.jobs.submit("noop", {"n": 1}, priority=5)
    sent = gateway.requests[0]
    assert sent.headers["Authorization"] == "Bearer t0ken" and sent.headers["Content-Type"] == "application/json"
    assert (sent.method, sent.url.path) == ("POST", "/api/v1/jobs")
    assert orjson.loads(sent.content) == {"kind": "noop", "payload": {"n": 1}, "priority": 5}


def test_a_submission_whose_connection_dropped_is_sent_again_with_the_same_key_and_body() -> None:
    dropped = httpx.RemoteProtocolError("Server disconnected without sending a response.")
    gateway = Recorder(dropped, respond(503, {"title": "Service Unavailable", "status": 503}), respond(202, job(9)))
    with gateway.client() as client:
        submitted = client.jobs.submit("noop", {"n": 1})
    keys = {r.headers["Idempotency-Key"] for r in gateway.requests}
    assert submitted.id == 9 and len(gateway.requests) == 3 and len(keys) == 1
    assert len({r.content for r in gateway.requests}) == 1


async def test_an_async_batch_whose_answer_timed_out_is_sent_again_with_the_same_key() -> None:
    gateway = Recorder(httpx.ReadTimeout("timed out"), respond(202, {"jobs": [job(1), job(2)]}))
    async with gateway.async_client() as client:
        jobs = await client.jobs.submit_many([{"kind": "noop"}, {"kind": "noop", "priority": 9}])
    assert [j.id for j in jobs] == [1, 2]
    assert gateway.requests[0].headers["Idempotency-Key"] == gateway.requests[1].headers["Idempotency-Key"]
    assert gateway.requests[0].url.path == "/api/v1/jobs/batch"


def test_a_retry_of_a_job_whose_connection_dropped_is_not_sent_again() -> None:
    gateway = Recorder(httpx.ReadError("connection reset"), respond(202, job(1)))
    with gateway.client() as client, pytest.raises(ApiConnectionError, match="POST /jobs/1/retry"):
        client.jobs.retry(1)
    assert len(gateway.requests) == 1


def test_a_refused_connection_is_tried_again_for_any_request_then_reported() -> None:
    gateway = Recorder(*[httpx.ConnectError("connection refused")] * 3)
    with gateway.client() as client, pytest.raises(ApiConnectionError, match="connection refused"):
        client.jobs.retry(1)
    assert len(gateway.requests) == 3


def test_a_rate_limited_request_is_tried_again() -> None:
    limited = httpx.Response(429, headers={"Retry-After": "0"})
    gateway = Recorder(limited, respond(202, job(1, "queued")))
    with gateway.client() as client:
        assert client.jobs.retry(1).id == 1
    assert len(gateway.requests) == 2


def test_a_validation_error_is_raised_at_once_with_its_fields() -> None:
    problem = {"title": "Unprocessable Content", "status": 422, "errors": [{"field": "priority", "message": "0-9"}]}
    gateway = Recorder(respond(422, problem))
    with gateway.client() as client, pytest.raises(ValidationError) as caught:
        client.jobs.submit("noop", priority=12)
    assert caught.value.message_for("priority") == "0-9" and len(gateway.requests) == 1


def test_wait_holds_on_the_gateway_until_the_job_is_final() -> None:
    gateway = Recorder(respond(200, job(4, "running")), respond(200, job(4, "succeeded")))
    with gateway.client() as client:
        done = client.jobs.wait(4)
    assert done.state == "succeeded"
    assert [r.url.params["wait"] for r in gateway.requests] == ["60.0", "60.0"]


async def test_wait_gives_up_at_its_deadline_with_the_job_as_last_seen() -> None:
    gateway = Recorder(respond(200, job(4, "running")), respond(200, job(4, "running")))
    async with gateway.async_client() as client:
        with pytest.raises(WaitTimeout) as caught:
            await client.jobs.wait(4, timeout_s=0)
    assert caught.value.job.state == "running" and "wait" not in gateway.requests[0].url.params


def test_health_is_asked_at_the_server_root() -> None:
    gateway = Recorder(respond(200, {"status": "ok", "ready": True, "checks": {}}))
    with gateway.client() as client:
        assert client.health().ok
    assert gateway.requests[0].url.path == "/health"


def test_a_degraded_health_is_an_answer_at_once_not_a_503_to_try_again() -> None:
    gateway = Recorder(respond(503, {"status": "degraded", "ready": True, "checks": {"broker": {"ok": False}}}))
    with gateway.client() as client:
        assert client.health().status == "degraded"
    assert len(gateway.requests) == 1


def test_api_keys_are_listed_and_revoked_as_typed_keys() -> None:
    key = {"id": 3, "name": "ci", "scopes": ["jobs:read"], "created_at": "2026-11-30T10:00:00Z", "revoked_at": None}
    revoked = {**key, "revoked_at": "2026-11-30T11:00:00Z"}
    gateway = Recorder(respond(200, {"api_keys": [key]}), respond(200, revoked))
    with gateway.client() as client:
        (listed,) = client.api_keys()
        after = client.revoke_api_key(3)
    assert (listed.id, listed.name, listed.scopes, listed.revoked_at) == (3, "ci", ("jobs:read",), None)
    assert after.revoked_at is not None and after.revoked_at.hour == 11
    assert [(r.method, r.url.path) for r in gateway.requests] == [
        ("GET", "/api/v1/api-keys"),
        ("POST", "/api/v1/api-keys/3/revoke"),
    ]


def test_the_raw_request_returns_the_json_for_printing() -> None:
    gateway = Recorder(respond(200, {"jobs": [], "next_page_token": None}))
    with gateway.client() as client:
        body = client.request("GET", "/jobs", params={"state": "failed", "kind": None})
    assert body == {"jobs": [], "next_page_token": None}
    assert str(gateway.requests[0].url) == f"{URL}/jobs?state=failed"
