"""How an attempt's ending becomes a job state: budget, error classes, backoff, results (pure)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from gleaner.services.worker.context import Deferred, Partial
from gleaner.services.worker.politeness import INLINE_WAIT_S, BucketState, Limits, reserve
from gleaner.services.worker.retry import (
    ABANDONED,
    CANCELLED,
    DEFERRED,
    FAILED,
    HANDBACK,
    MAX_DEFER_S,
    MAX_TRACEBACK,
    PARTIAL,
    REASON_CANCEL,
    REASON_LEASE_LOST,
    REASON_SHUTDOWN,
    REFUSED_DELAY_CAP_S,
    RETRYING,
    SUCCEEDED,
    Budget,
    JobTimedOut,
    Outcome,
    classify,
    early_by_s,
    from_cancellation,
    from_error,
    from_result,
    refused,
    traceback_text,
)
from gleaner.shared.backoff import MAX_RETRY_DELAY_S
from gleaner.shared.errors import HandlerError, PermanentError, RetryableError, UnknownKindError
from gleaner.shared.site_rules import MIN_REQUESTS_PER_HOUR

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def budget(attempt: int, max_attempts: int = 3, attempt_base: int = 0) -> Budget:
    return Budget(attempt=attempt, attempt_base=attempt_base, max_attempts=max_attempts, retry_base_s=1, retry_cap_s=60)


@pytest.mark.parametrize(("attempt", "state"), [(1, RETRYING), (2, RETRYING), (3, FAILED)])
def test_a_retryable_error_retries_until_max_attempts_have_run(attempt: int, state: str) -> None:
    assert from_error(RetryableError("boom"), budget(attempt)).state == state


def test_the_budget_counts_from_the_last_user_requeue() -> None:
    assert from_error(RetryableError("boom"), budget(4, attempt_base=3)).state == RETRYING
    assert from_error(RetryableError("boom"), budget(6, attempt_base=3)).state == FAILED


def test_a_retry_carries_the_jittered_exponential_backoff() -> None:
    outcome = from_error(RetryableError("boom"), budget(3, max_attempts=5), rng=random.Random(1))
    assert outcome.retry_delay_s is not None
    assert 0.9 * 4 <= outcome.retry_delay_s <= 1.1 * 4


def test_a_retry_delay_is_rounded_up_to_the_delay_unit_it_travels_in() -> None:
    rng = random.Random(7)
    unit = Budget(attempt=1, attempt_base=0, max_attempts=3, retry_base_s=1, retry_cap_s=60, delay_unit_s=0.25)
    delays = {from_error(RetryableError("boom"), unit, rng=rng).retry_delay_s for _ in range(200)}
    assert delays == {1.0, 1.25}


def test_a_permanent_error_fails_at_once_whatever_the_budget() -> None:
    outcome = from_error(PermanentError("bad payload"), budget(1, max_attempts=10))
    assert (outcome.state, outcome.error_class, outcome.retry_delay_s) == (FAILED, "permanent", None)


def test_an_unknown_exception_is_retryable_and_named_by_its_type() -> None:
    outcome = from_error(KeyError("x"), budget(1))
    assert (outcome.state, outcome.error_class) == (RETRYING, "KeyError")


def test_a_timeout_is_retryable_with_the_timeout_class() -> None:
    outcome = from_error(JobTimedOut("too slow"), budget(1))
    assert (outcome.state, outcome.error_class) == (RETRYING, "timeout")


def test_handler_errors_keep_their_own_error_class() -> None:
    assert classify(RetryableError("x", error_class="http_503"))[:2] == (True, "http_503")
    assert classify(UnknownKindError("x"))[:2] == (False, "unknown_kind")
    assert classify(HandlerError("x"))[:2] == (True, "handler_error")


def test_a_long_error_message_is_clipped() -> None:
    _, _, message = classify(RuntimeError("x" * 10_000))
    assert len(message) <= 2000


def test_a_result_is_encoded_once_as_json() -> None:
    outcome = from_result({"pages": [1, 2]})
    assert (outcome.state, outcome.result_json) == (SUCCEEDED, '{"pages":[1,2]}')


def test_a_handler_returning_nothing_succeeds_with_a_null_result() -> None:
    outcome = from_result(None)
    assert (outcome.state, outcome.result_json, outcome.error_class) == (SUCCEEDED, "null", None)


def test_a_partial_result_ends_partial() -> None:
    outcome = from_result(Partial({"done": 7, "failed": 1}))
    assert (outcome.state, outcome.result_json) == (PARTIAL, '{"done":7,"failed":1}')


def test_a_result_that_is_not_json_fails_permanently_as_bad_result() -> None:
    outcome = from_result({"when": object()})
    assert (outcome.state, outcome.error_class) == (FAILED, "bad_result")


def test_a_requested_cancel_ends_cancelled_and_a_lost_lease_is_left_to_the_reaper() -> None:
    assert from_cancellation(REASON_CANCEL, budget(1)).state == CANCELLED
    assert from_cancellation(REASON_LEASE_LOST, budget(1)).state == ABANDONED


def test_a_cancel_for_shutdown_hands_the_job_back() -> None:
    assert from_cancellation(REASON_SHUTDOWN, budget(1)).state == HANDBACK


def test_a_cancel_nobody_asked_for_counts_as_a_retryable_failure() -> None:
    outcome = from_cancellation(None, budget(1))
    assert (outcome.state, outcome.error_class) == (RETRYING, "cancelled_unexpectedly")


def test_a_message_is_early_only_when_more_than_one_unit_before_due() -> None:
    assert early_by_s(due_ms=0, now_ms=10_000, unit_ms=100) == 0.0
    assert early_by_s(due_ms=10_100, now_ms=10_000, unit_ms=100) == 0.0
    assert early_by_s(due_ms=10_500, now_ms=10_000, unit_ms=100) == pytest.approx(0.5)
    assert early_by_s(due_ms=9_000, now_ms=10_000, unit_ms=100) == 0.0


def _raised(error: BaseException) -> BaseException:
    try:
        raise error
    except BaseException as caught:  # noqa: BLE001 - the test wants the raised object with its traceback
        return caught


def test_a_failure_keeps_the_traceback_of_the_error_that_ended_it() -> None:
    error = _raised(ValueError("bad row 7"))

    outcome = from_error(error, Budget(attempt=1, attempt_base=0, max_attempts=1, retry_base_s=1, retry_cap_s=10))

    assert outcome.error_traceback is not None
    assert "in _raised" in outcome.error_traceback
    assert outcome.error_traceback.rstrip().endswith("ValueError: bad row 7")


def test_a_long_traceback_keeps_its_end_and_an_unraised_error_has_none() -> None:
    long = _raised(RuntimeError("x" * 20_000))

    text = traceback_text(long)

    assert text is not None and len(text) == MAX_TRACEBACK
    assert text.startswith("…") and text.rstrip().endswith("x" * 100)
    assert traceback_text(RuntimeError("never raised")) is None


@pytest.mark.parametrize("wait_s", [3601.0, 1e303, float("inf"), float("nan")])
def test_a_deferral_waits_at_most_an_hour_whatever_the_site_asks(wait_s: float) -> None:
    outcome = from_error(Deferred(wait_s, "rate_limited"), budget(1))
    assert outcome.state == DEFERRED and outcome.retry_delay_s == MAX_DEFER_S


def test_the_slowest_allowed_site_defers_a_waiting_job_by_an_hour_not_centuries() -> None:
    limits = Limits(requests_per_hour=MIN_REQUESTS_PER_HOUR, burst=1, min_delay_s=86_400, factor=1000)
    taken = reserve(BucketState(), limits, T0, INLINE_WAIT_S)
    refused = reserve(taken.state, limits, T0, INLINE_WAIT_S)
    assert taken.taken and not refused.taken and refused.wait_s > 365 * 86_400
    assert from_error(Deferred(refused.wait_s, "rate_limited"), budget(1)).retry_delay_s == MAX_DEFER_S


def test_a_retry_delay_never_exceeds_thirty_days_whatever_the_row_says() -> None:
    huge = Budget(attempt=1, attempt_base=0, max_attempts=3, retry_base_s=1e300, retry_cap_s=float("inf"))
    outcome = from_error(RetryableError("x"), huge, random.Random(1))
    assert outcome.retry_delay_s is not None and outcome.retry_delay_s <= MAX_RETRY_DELAY_S * 1.1


def test_a_result_postgres_refuses_becomes_a_failure_that_says_why() -> None:
    outcome = refused(Outcome(SUCCEEDED, result_json='{"t":"a\\u0000b"}'), ValueError("unsupported Unicode escape"))
    assert (outcome.state, outcome.result_json, outcome.error_class) == (FAILED, None, "result_refused")
    assert outcome.error_message is not None and "unsupported Unicode escape" in outcome.error_message


def test_a_refused_failure_keeps_its_state_and_class_without_nul_and_with_a_delay_postgres_can_add() -> None:
    original = Outcome(RETRYING, error_class="boom", error_message="bad\x00bytes", retry_delay_s=1e300)
    outcome = refused(original, ValueError("invalid byte sequence"))
    assert (outcome.state, outcome.error_class) == (RETRYING, "boom")
    assert outcome.error_message is not None and "\x00" not in outcome.error_message
    assert outcome.retry_delay_s == REFUSED_DELAY_CAP_S
