"""The client's pure parts: reading answers into models, problems into errors, settings, retries, paging."""

from __future__ import annotations

from datetime import UTC, datetime
from types import MappingProxyType

import orjson
import pytest

from gleaner import _calls, _decode
from gleaner._transport import Settings
from gleaner.errors import (
    ApiError,
    BadRequest,
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    RateLimited,
    ServerError,
    Unauthorized,
    UnexpectedResponse,
    ValidationError,
)
from gleaner.models import Job, Page, Schedule, Site, Stats
from gleaner.retries import Failure, RetryPolicy, retry_after_s, status_failure
from gleaner.shared.config import Config

JOB = {
    "id": 7,
    "kind": "noop",
    "state": "succeeded",
    "attempt": 1,
    "payload": {"n": 1},
    "result": {"n": 1},
    "site": None,
    "created_at": "2026-11-24T10:00:00.123456Z",
    "timeout_s": 300,
}


def test_a_job_is_read_with_its_timestamps_aware_and_unknown_fields_ignored() -> None:
    job = _decode.decode(Job, {**JOB, "a_field_of_a_newer_server": [1, 2]})

    assert (job.id, job.kind, job.state, job.payload, job.result) == (7, "noop", "succeeded", {"n": 1}, {"n": 1})
    assert job.created_at == datetime(2026, 11, 24, 10, 0, 0, 123456, tzinfo=UTC)
    assert job.timeout_s == 300.0 and isinstance(job.timeout_s, float)
    assert job.is_final and job.site is None and job.started_at is None
    assert job.raw["a_field_of_a_newer_server"] == [1, 2]


def test_fields_an_older_server_does_not_send_take_their_defaults() -> None:
    job = _decode.decode(Job, {"id": 1, "kind": "noop", "state": "queued"})

    assert (job.attempt, job.payload, job.cancel_requested, job.is_final) == (0, {}, False, False)


def test_a_missing_required_field_or_a_wrong_type_is_an_unexpected_response_naming_it() -> None:
    with pytest.raises(UnexpectedResponse, match=r"response\.kind: expected a string"):
        _decode.decode(Job, {"id": 1, "state": "queued"})
    with pytest.raises(UnexpectedResponse, match=r"response\.attempt: expected an integer, got bool"):
        _decode.decode(Job, {**JOB, "attempt": True})
    with pytest.raises(UnexpectedResponse, match=r"jobs\[1\]: expected an object"):
        _decode.decode_all(Job, [JOB, "job 2"], "jobs")


def test_nested_objects_lists_and_maps_are_read_into_their_models() -> None:
    site = _decode.decode(Site, {"name": "a", "burst": 2, "state": {"tokens_left": -1.5, "running_jobs": 1}})
    schedule = _decode.decode(
        Schedule, {"id": 3, "name": "n", "type": "cron", "last_job": None, "counters": {"fired": 4}}
    )
    stats = _decode.decode(
        Stats, {"groups": [{"kind": "noop", "states": {"queued": 2}, "duration_s": {"p50": 0.1, "p95": None}}]}
    )

    assert (site.burst, site.state.tokens_left, site.state.running_jobs) == (2, -1.5, 1)
    assert (schedule.last_job, schedule.counters.fired, schedule.counters.skipped_overlap) == (None, 4, 0)
    assert stats.groups[0].states == {"queued": 2} and stats.groups[0].duration_s.p50 == 0.1


def test_a_page_keeps_its_items_its_token_and_the_json_as_sent() -> None:
    body = b'{"jobs": [{"id": 2, "kind": "noop", "state": "queued"}], "next_page_token": "abc"}'
    call = _calls.list_jobs({"state": "queued"}, 50, None)

    page = _calls.answer(call, 200, body)

    assert [job.id for job in page.items] == [2] and page.next_page_token == "abc"
    assert page.raw["next_page_token"] == "abc"
    assert call.params == (("state", "queued"), ("page_size", "50"))


PROBLEM = {
    "type": "about:blank",
    "title": "Unprocessable Content",
    "status": 422,
    "detail": "invalid fields: priority",
    "request_id": "r1",
    "errors": [{"field": "priority", "message": "must be an integer from 0 to 9"}],
}


def test_a_problem_becomes_a_validation_error_carrying_status_title_and_field_errors() -> None:
    with pytest.raises(ValidationError) as caught:
        _calls.answer(_calls.get_job(1), 422, orjson.dumps(PROBLEM))

    error = caught.value
    assert (error.status, error.title, error.detail, error.request_id) == (
        422,
        "Unprocessable Content",
        "invalid fields: priority",
        "r1",
    )
    assert error.errors == (FieldError("priority", "must be an integer from 0 to 9"),)
    assert error.message_for("priority") == "must be an integer from 0 to 9" and error.message_for("kind") is None
    assert str(error) == (
        "HTTP 422 Unprocessable Content: invalid fields: priority (priority: must be an integer from 0 to 9)"
    )
    field, message = error.errors[0]
    assert field == "priority" and message.startswith("must be")


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequest),
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (409, Conflict),
        (422, ValidationError),
        (429, RateLimited),
        (500, ServerError),
        (503, ServerError),
        (418, ApiError),
    ],
)
def test_each_error_status_has_its_exception(status: int, cls: type[ApiError]) -> None:
    with pytest.raises(cls) as caught:
        _calls.answer(_calls.get_job(1), status, b"")
    assert type(caught.value) is cls and caught.value.status == status and caught.value.errors == ()


def test_an_error_that_is_not_a_problem_still_has_its_status_and_reason() -> None:
    with pytest.raises(ServerError, match="HTTP 502 Bad Gateway") as caught:
        _calls.answer(_calls.get_job(1), 502, b'{"message": "upstream"}')
    assert caught.value.title == "Bad Gateway"


def test_an_answer_that_is_not_json_is_an_unexpected_response() -> None:
    with pytest.raises(UnexpectedResponse, match="not JSON"):
        _calls.answer(_calls.get_job(1), 200, b"<html>")


def test_a_rate_limited_error_carries_the_retry_after() -> None:
    with pytest.raises(RateLimited) as caught:
        _calls.answer(_calls.get_job(1), 429, b"", retry_after_s=2.0)
    assert caught.value.retry_after_s == 2.0


def test_health_answers_with_its_checks_even_when_degraded() -> None:
    body = b'{"status": "degraded", "ready": true, "checks": {"broker": {"ok": false}}}'
    health = _calls.answer(_calls.health(), 503, body)
    assert not health.ok and health.checks == {"broker": {"ok": False}}


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"GLEANER_API_URL": "https://api.example.com/api/v1/"},
        {"GLEANER_HTTP_HOST": "0.0.0.0", "GLEANER_HTTP_PORT": "9000"},
        {"GLEANER_HTTP_HOST": "10.1.2.3"},
    ],
)
def test_the_api_url_defaults_as_the_operator_commands_read_it(env: dict[str, str]) -> None:
    assert Settings.resolve(None, None, env).url == Config.from_env(env).gateway_api_url


def test_the_token_is_the_argument_else_the_api_token_else_the_admin_token() -> None:
    both = {"GLEANER_API_TOKEN": "api-token", "GLEANER_ADMIN_TOKEN": "admin-token"}

    assert Settings.resolve(None, "given", both).token == "given"
    assert Settings.resolve(None, None, both).token == "api-token"
    assert Settings.resolve(None, None, {"GLEANER_ADMIN_TOKEN": "admin-token"}).token == "admin-token"
    assert Settings.resolve(None, None, {}).token is None
    assert "Authorization" not in Settings.resolve(None, None, {}).headers()


def test_a_url_without_a_scheme_is_refused_naming_the_variable() -> None:
    with pytest.raises(ValueError, match="GLEANER_API_URL"):
        Settings.resolve(None, None, {"GLEANER_API_URL": "localhost:8080"})


def test_health_is_found_beside_the_api_root() -> None:
    assert Settings.resolve("http://h:1/prefix/api/v1", None, {}).root == "http://h:1/prefix"


def test_query_parameters_leave_out_none_and_spell_booleans_times_and_objects() -> None:
    when = datetime(2030, 1, 1, tzinfo=UTC)
    params = _calls.query({"a": None, "b": True, "c": when, "payload": {"ticker": "PETR4"}, "n": 5})
    assert params == (("b", "true"), ("c", "2030-01-01T00:00:00+00:00"), ("payload", '{"ticker":"PETR4"}'), ("n", "5"))


def test_bodies_accept_any_mapping_or_sequence_and_datetimes() -> None:
    body = _calls.encode({"m": MappingProxyType({"a": (1, 2)}), "at": datetime(2030, 1, 1, tzinfo=UTC)})
    assert body == b'{"m":{"a":[1,2]},"at":"2030-01-01T00:00:00+00:00"}'


def test_each_submission_gets_its_own_idempotency_key_unless_one_is_given() -> None:
    first, second = _calls.submit({"kind": "noop"}, None), _calls.submit({"kind": "noop"}, None)
    given = _calls.submit_many(({"kind": "noop"},), "my-key")

    assert first.idempotency_key and second.idempotency_key and first.idempotency_key != second.idempotency_key
    assert given.headers()["Idempotency-Key"] == "my-key" and given.repeatable


def test_writes_that_make_something_new_are_not_repeatable_and_state_setting_ones_are() -> None:
    assert not any(
        c.repeatable for c in (_calls.retry_job(1), _calls.requeue_letter("job-1"), _calls.trigger_schedule(1))
    )
    assert not _calls.requeue_letters({}).repeatable and not _calls.scheduler_action("run").repeatable
    assert not _calls.create_schedule({"name": "n", "job": {"kind": "noop"}}).repeatable
    assert all(c.repeatable for c in (_calls.cancel_job(1), _calls.delete_letter("job-1"), _calls.get_job(1)))
    assert _calls.queue_action("q", "pause").repeatable and _calls.put_site("s", {}).repeatable


def test_retries_back_off_exponentially_within_the_cap_and_stop_after_the_attempts() -> None:
    policy = RetryPolicy(attempts=4, base_s=1.0, cap_s=3.0)

    delays = [policy.delay_s(n, Failure.NOT_SENT, repeatable=False) for n in (1, 2, 3, 4)]

    assert delays[3] is None
    assert 0.5 <= delays[0] <= 1.0 and 1.0 <= delays[1] <= 2.0 and 1.5 <= delays[2] <= 3.0  # type: ignore[operator]


def test_an_unknown_outcome_is_retried_only_for_repeatable_calls() -> None:
    policy = RetryPolicy()
    assert policy.delay_s(1, Failure.UNKNOWN, repeatable=True) is not None
    assert policy.delay_s(1, Failure.UNKNOWN, repeatable=False) is None


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    policy = RetryPolicy(base_s=0.1, cap_s=5.0)
    assert policy.delay_s(1, Failure.NOT_SENT, repeatable=False, retry_after_s=2.0) == 2.0
    assert policy.delay_s(1, Failure.NOT_SENT, repeatable=False, retry_after_s=60.0) == 5.0
    assert (retry_after_s("3"), retry_after_s(None), retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT")) == (
        3.0,
        None,
        None,
    )


def test_statuses_say_whether_the_request_was_acted_on() -> None:
    assert status_failure(429) is Failure.NOT_SENT
    assert [status_failure(s) for s in (502, 503, 504)] == [Failure.UNKNOWN] * 3
    assert [status_failure(s) for s in (200, 202, 404, 409, 422, 500)] == [None] * 6


def test_a_wait_holds_up_to_a_minute_and_stops_at_the_deadline() -> None:
    assert _calls.hold_for(None, 0.0) == 60.0
    assert _calls.hold_for(100.0, 0.0) == 60.0
    assert _calls.hold_for(100.0, 95.5) == 4.5
    assert _calls.hold_for(100.0, 100.0) is None


def test_a_server_handing_back_the_same_page_token_is_caught_instead_of_looping() -> None:
    page: Page[int] = Page((1,), "t1")
    assert _calls.next_token(page, None) == "t1"
    assert _calls.next_token(Page((1,), None), "t1") is None
    with pytest.raises(UnexpectedResponse, match="twice"):
        _calls.next_token(page, "t1")
