"""`client.events()`: the SSE frames read, the notices, the resume with Last-Event-ID (the stream itself is
served by httpx's MockTransport here; tests/e2e/test_python_client.py reads a live one)."""

from __future__ import annotations

import httpx
import orjson
import pytest

from gleaner import AsyncClient, Client, Forbidden, RetryPolicy
from gleaner._calls import filter_lists
from gleaner._event_stream import EventStream, event_params

EVENT = {
    "type": "job.succeeded",
    "at": "2026-12-01T00:00:01+00:00",
    "job_id": 7,
    "kind": "noop",
    "queue": "default",
    "state": "succeeded",
    "attempt": 1,
    "site": None,
    "schedule_id": None,
    "created_at": "2026-12-01T00:00:00+00:00",
    "error_class": None,
    "error_message": None,
    "detail": None,
}


def frame(event_id: str, event: dict[str, object]) -> str:
    return f"id: {event_id}\nevent: {event['type']}\ndata: {orjson.dumps(event).decode()}\n\n"


def test_frames_become_events_and_comments_and_retry_lines_are_read() -> None:
    stream = EventStream({}, None, None)
    text = "retry: 1500\n\n: keep-alive\n\n" + frame("r1-5", EVENT)
    events = [e for line in text.split("\n") if (e := stream.feed(line)) is not None]
    assert [(e.id, e.type, e.job_id, e.state) for e in events] == [("r1-5", "job.succeeded", 7, "succeeded")]
    assert events[0].created_at is not None and events[0].at is not None
    assert stream.retry_s == 1.5 and stream.last_id == "r1-5"
    assert stream.headers()["Last-Event-ID"] == "r1-5"


def test_a_resync_is_an_event_and_dropped_or_closing_ask_for_a_reconnect() -> None:
    stream = EventStream({}, "old", duration_s=5)
    resync = [stream.feed(line) for line in ("event: resync", 'data: {"detail": "gone"}', "")]
    assert resync[-1] is not None and (resync[-1].type, resync[-1].detail, resync[-1].id) == ("resync", "gone", None)
    for line in ("event: dropped", 'data: {"detail": "behind"}', ""):
        assert stream.feed(line) is None
    assert stream.resumes() is True  # the server asked for it
    assert stream.resumes() is False  # the asked duration passed: the iteration ends
    assert EventStream({}, None, None).resumes() is True  # no duration: always back


def test_filters_are_one_query_parameter_per_value() -> None:
    params = event_params({"kind": ["a", "b.*"], "job_id": [1], "type": "job.failed"}, 2.5)
    assert params == (("kind", "a"), ("kind", "b.*"), ("job_id", "1"), ("type", "job.failed"), ("duration_s", "2.5"))
    assert filter_lists({"state": "failed", "schedule_id": [3, 4]}) == {"state": ["failed"], "schedule_id": [3, 4]}
    with pytest.raises(TypeError):
        filter_lists({"kind": [object()]})  # type: ignore[list-item]


class Streams:
    """Answers `GET /events` with each body in turn, recording the Last-Event-ID each request sent."""

    def __init__(self, *answers: httpx.Response) -> None:
        self.answers = list(answers)
        self.resumed: list[str | None] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v1/events" and request.headers["Accept"] == "text/event-stream"
        self.resumed.append(request.headers.get("Last-Event-ID"))
        return self.answers.pop(0)


def sse(body: str) -> httpx.Response:
    return httpx.Response(200, headers={"Content-Type": "text/event-stream"}, content=body.encode())


def test_a_dropped_stream_is_resumed_after_its_last_event_and_a_timed_stream_ends() -> None:
    second = {**EVENT, "job_id": 8}
    streams = Streams(
        sse("retry: 0\n\n" + frame("r1-1", EVENT) + 'event: dropped\ndata: {"detail": "behind"}\n\n'),
        httpx.Response(503, json={"title": "Service Unavailable", "status": 503}),
        sse(frame("r1-2", second)),
    )
    client = Client("http://gw/api/v1", transport=httpx.MockTransport(streams), retry=RetryPolicy(base_s=0, cap_s=0))
    seen = [(e.id, e.job_id) for e in client.events(kind=["noop"], duration_s=60)]
    assert seen == [("r1-1", 7), ("r1-2", 8)]
    assert streams.resumed == [None, "r1-1", "r1-1"]


def test_an_error_answer_is_raised_like_any_request_s() -> None:
    answer = httpx.Response(403, json={"title": "Forbidden", "status": 403, "detail": "needs jobs:read"})
    client = Client("http://gw/api/v1", transport=httpx.MockTransport(Streams(answer)))
    with pytest.raises(Forbidden):
        next(iter(client.events()))


async def test_the_async_client_reads_the_same_stream() -> None:
    streams = Streams(sse(frame("r2-9", EVENT)))
    async with AsyncClient("http://gw/api/v1", transport=httpx.MockTransport(streams)) as client:
        seen = [e.job_id async for e in client.events(last_event_id="r2-8", duration_s=1)]
    assert seen == [7] and streams.resumed == ["r2-8"]
