"""The event wire format, the stream filters and the hub's fan-out (pure, no services)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from gleaner.services.gateway import event_hub
from gleaner.services.gateway.event_filters import parse_filter
from gleaner.services.gateway.event_hub import ALL_ROUTES, DROPPED, HISTORY_S, WAKING, EventHub, Subscriber
from gleaner.services.gateway.waiting import Waiters
from gleaner.shared import events, webhooks
from gleaner.shared.amqp import Broker
from gleaner.shared.config import Config
from gleaner.shared.errors import DecodeError

AT = "2026-11-30T21:04:05.120000+00:00"
ROW = {"id": 7, "kind": "boards.greenhouse", "queue": "default", "state": "failed", "attempt": 3, "site": "greenhouse"}


def failed(**row: object) -> events.Event:
    return events.job_event({**ROW, **row}, AT, error_class="timeout", error_message="took longer than 30 s")


def test_an_event_survives_encoding_with_every_field() -> None:
    (decoded,) = events.decode(events.encode([failed()]))
    assert decoded == failed()
    assert decoded["type"] == "job.failed"
    assert set(decoded) == set(events.Event.__annotations__)


def test_a_body_that_is_not_a_list_of_events_is_a_decode_error() -> None:
    for body in (b"nonsense", b'{"id": 1}', b'[{"id": 1}]', b'[{"type": "job.failed", "at": "x", "job_id": true}]'):
        with pytest.raises(DecodeError):
            events.decode(body)


def test_only_final_states_wake_waiters() -> None:
    retrying = events.job_event({**ROW, "id": 8, "state": "retrying"}, AT)
    assert events.final_ids([failed(), retrying, events.skipped_event(2, "skipped_overlap", AT)]) == [7]


def test_a_cancel_command_names_one_job() -> None:
    assert events.cancel_target(events.cancel_command(12)) == 12
    for body in (b'{"id": true}', b"[12]", b"garbage"):
        assert events.cancel_target(body) is None


def test_filters_match_every_field_given_with_prefixes_for_type_and_kind() -> None:
    wanted, errors = parse_filter({"type": ["job.failed", "schedule.*"], "kind": ["boards.*"], "site": ["greenhouse"]})
    assert errors == []
    assert wanted.matches(failed())
    assert not wanted.matches(failed(kind="http.fetch"))
    assert not wanted.matches(events.job_event({**ROW, "state": "succeeded"}, AT))
    assert parse_filter({})[0].matches(events.skipped_event(1, "misfire_skipped", AT))


def test_bad_filter_values_are_named() -> None:
    _, errors = parse_filter({"state": ["done"], "job_id": ["\uff11"], "type": ["job.exploded"], "kind": ["Boards"]})
    assert sorted(e["field"] for e in errors) == ["job_id", "kind", "state", "type"]


def hub() -> EventHub:
    return EventHub(Broker(Config.from_env({}), name="test"), Waiters())


def test_a_slow_subscriber_is_dropped_with_bounded_memory_and_the_others_keep_getting_events() -> None:
    events_hub = hub()
    slow, fast = Subscriber(parse_filter({})[0], capacity=3), Subscriber(parse_filter({})[0], capacity=100)
    events_hub.subscribe(slow, None)
    events_hub.subscribe(fast, None)
    for _ in range(5):
        events_hub.receive(events.FINISHED, events.encode([failed()]))
    assert slow.dropped and slow.queue.qsize() == 1 and slow.queue.get_nowait() is DROPPED
    assert fast.queue.qsize() == 5


def test_a_subscriber_resumes_after_the_last_event_it_saw_on_this_replica_only() -> None:
    events_hub = hub()
    first = Subscriber(parse_filter({})[0])
    events_hub.subscribe(first, None)
    events_hub.receive(events.FINISHED, events.encode([failed(), failed()]))
    seen = first.queue.get_nowait()
    events_hub.unsubscribe(first)
    events_hub.receive(events.FINISHED, events.encode([failed()]))

    again = Subscriber(parse_filter({})[0])
    assert events_hub.subscribe(again, seen.id)
    assert again.queue.qsize() == 2  # the second of the first batch, and the whole second one
    assert not events_hub.subscribe(Subscriber(parse_filter({})[0]), "elsewhere-1.0")


class BindingQueue:
    """What the hub does with its queue's bindings (a broker queue without the broker)."""

    def __init__(self) -> None:
        self.bound: set[str] = set()

    async def bind(self, exchange: str, routing_key: str) -> None:
        self.bound.add(routing_key)

    async def unbind(self, exchange: str, routing_key: str) -> None:
        self.bound.discard(routing_key)


async def test_the_hub_hears_only_the_routes_its_listeners_need_and_for_a_history_window_after_they_left(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events_hub, queue, now = hub(), BindingQueue(), [1000.0]
    events_hub._queue = queue  # type: ignore[assignment]
    monkeypatch.setattr(event_hub.time, "monotonic", lambda: now[0])
    await events_hub.settle()
    assert queue.bound == set()  # nobody listens: the workers' event messages do not come here

    assert await events_hub.listen(WAKING)  # a waiter: only the finishes, and the caller is told to re-read
    assert queue.bound == WAKING and not await events_hub.listen(WAKING)
    stream = Subscriber(parse_filter({})[0])
    assert await events_hub.listen(ALL_ROUTES)
    events_hub.subscribe(stream, None)
    events_hub.receive(events.FINISHED, events.encode([failed()]))
    seen = stream.queue.get_nowait()
    events_hub.unsubscribe(stream)

    now[0] += HISTORY_S - 1
    await events_hub.settle()  # the stream may still come back and resume
    assert queue.bound == ALL_ROUTES
    assert events_hub.subscribe(Subscriber(parse_filter({})[0]), seen.id)
    events_hub.unsubscribe(next(iter(events_hub._subscribers)))
    now[0] += HISTORY_S + 1
    await events_hub.settle()
    assert queue.bound == set()
    assert not events_hub.subscribe(Subscriber(parse_filter({})[0]), seen.id)  # events went unheard since: resync


def test_the_readme_receiver_accepts_a_delivery_s_signature_and_refuses_a_changed_body_or_an_old_timestamp() -> None:
    from tests.e2e.test_webhooks import readme_verifier

    verified = readme_verifier()
    body, secret, now = events.encode_one(failed()), "a-long-random-shared-secret", int(time.time())

    def headers(timestamp: int, signed_body: bytes = body) -> dict[str, str]:
        signature = webhooks.signature(secret, timestamp, signed_body)
        return {webhooks.TIMESTAMP_HEADER: str(timestamp), webhooks.SIGNATURE_HEADER: signature}

    assert verified(secret, headers(now), body) is True
    assert webhooks.verify(secret, str(now), headers(now)[webhooks.SIGNATURE_HEADER], body, now) is True
    assert verified(secret, headers(now, b"{}"), body) is False
    assert verified("another-secret-entirely", headers(now), body) is False
    assert verified(secret, headers(now - 3600), body) is False


def test_stream_frames_and_notices_are_server_sent_events() -> None:
    frame = events.stream_frame("r1-4", failed())
    assert frame.startswith(b"id: r1-4\nevent: job.failed\ndata: {") and frame.endswith(b"}\n\n")
    assert events.decode(b"[" + frame.split(b"data: ", 1)[1].strip() + b"]") == [failed()]
    assert events.stream_notice(events.DROPPED, 'say "hi"') == b'event: dropped\ndata: {"detail":"say \\"hi\\""}\n\n'


def test_an_event_writes_its_job_s_creation_in_the_zone_it_was_read_in() -> None:
    instant = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    row = {"id": 1, "kind": "noop", "queue": "default", "attempt": 0, "state": "queued", "created_at": instant}
    shifted = row | {"created_at": instant.astimezone(timezone(timedelta(hours=2)))}
    assert events.job_event(row, "at")["created_at"] == "2026-01-02T03:04:05+00:00"
    assert events.job_event(shifted, "at")["created_at"] == "2026-01-02T05:04:05+02:00"


def test_the_events_of_a_statement_s_rows_are_each_row_s_own_event() -> None:
    now = datetime(2026, 1, 2, tzinfo=UTC)
    elsewhere = now.astimezone(timezone(timedelta(hours=2)))  # the same instant, written with its own offset
    base = {"kind": "noop", "queue": "default", "state": "queued", "attempt": 0, "site": None, "created_at": now}
    rows: list[dict[str, Any]] = [
        base | {"id": 1},
        base | {"id": 2},
        base | {"id": 3, "kind": "sleep"},
        base | {"id": 4},
        base | {"id": 5, "created_at": elsewhere},
        base | {"id": 6, "state": "scheduled", "site": "s", "schedule_id": 7},
        base | {"id": 7, "state": "scheduled", "site": "s", "schedule_id": 7},
    ]
    made = events.job_events(rows, "at", events.SUBMITTED)
    assert made == [events.job_event(row, "at", events.SUBMITTED) for row in rows]
    assert made[4]["created_at"] != made[3]["created_at"]
    assert len({id(event) for event in made}) == len(rows)


def test_a_worker_batch_s_events_are_each_row_s_own_event_with_its_state_and_error() -> None:
    now = datetime(2026, 1, 2, tzinfo=UTC)
    base = {"kind": "noop", "queue": "default", "attempt": 1, "site": None, "created_at": now}
    claimed: list[dict[str, Any]] = [base | {"id": 1}, base | {"id": 2}, base | {"id": 3, "attempt": 2}]
    started = events.job_events(claimed, "at", events.STARTED, state="running")
    assert started == [events.job_event(row, "at", events.STARTED, state="running") for row in claimed]
    ended = base | {"state": "succeeded", "error_class": None, "error_message": None}
    rows: list[dict[str, Any]] = [
        ended | {"id": 1},
        ended | {"id": 2, "state": "retrying", "error_class": "timeout", "error_message": "slow"},
        ended | {"id": 3},
        ended | {"id": 4, "state": "failed", "error_class": "bad_result", "error_message": "not JSON"},
        ended | {"id": 5, "state": "failed", "error_class": "bad_result", "error_message": "not JSON"},
        ended | {"id": 6},
    ]
    made = events.job_events(rows, "at", errors=True)
    assert made == [
        events.job_event(row, "at", error_class=row["error_class"], error_message=row["error_message"]) for row in rows
    ]
    assert [(e["type"], e["error_class"]) for e in made[:2]] == [("job.succeeded", None), ("job.retrying", "timeout")]
    assert len({id(event) for event in made}) == len(rows)
