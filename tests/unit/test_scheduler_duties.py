"""The scheduler's pure pieces: lock key, relay batching, reaper verdicts, prune plan, state gauge values."""

from __future__ import annotations

import random
from typing import Any

from gleaner.services.scheduler import pruner
from gleaner.services.scheduler.leadership import lock_key
from gleaner.services.scheduler.reaper import ERROR_CLASS, Verdict, finished_event, reap_arguments, verdict
from gleaner.services.scheduler.relay import BATCH, keep_going
from gleaner.services.scheduler.state_gauges import gauge_values, ready_values
from gleaner.shared import events


def test_the_lock_key_is_a_stable_signed_64_bit_number_per_namespace() -> None:
    assert lock_key("gleaner") == lock_key("gleaner")
    assert lock_key("gleaner") != lock_key("staging")
    assert all(-(2**63) <= lock_key(ns) < 2**63 for ns in ("a", "gleaner", "t0123abcd"))


def test_the_relay_takes_another_batch_only_after_a_full_and_fully_confirmed_one() -> None:
    assert keep_going(BATCH, BATCH, BATCH)
    assert not keep_going(BATCH - 1, BATCH - 1, BATCH)
    assert not keep_going(BATCH, 0, BATCH)  # broker down: stop, the next pass tries again
    assert not keep_going(0, 0, BATCH)


def expired(**overrides: Any) -> dict[str, Any]:
    row = {
        "id": 7,
        "attempt": 1,
        "attempt_base": 0,
        "max_attempts": 3,
        "retry_base_s": 2.0,
        "retry_cap_s": 300.0,
        "cancel_requested": False,
        "lease_owner": "w1",
    }
    return row | overrides


def test_an_expired_attempt_with_budget_left_is_retried_with_backoff() -> None:
    v = verdict(expired(attempt=2), random.Random(1))
    assert (v.state, v.attempt, v.worker) == ("retrying", 2, "w1")
    assert v.delay_s is not None and 3.6 <= v.delay_s <= 4.4
    assert "w1" in v.message


def test_an_expired_attempt_that_spent_the_budget_fails() -> None:
    assert verdict(expired(attempt=3)).state == "failed"
    assert verdict(expired(attempt=3)).delay_s is None


def test_a_user_retry_resets_the_budget_through_attempt_base() -> None:
    assert verdict(expired(attempt=4, attempt_base=3)).state == "retrying"


def test_an_expired_attempt_of_a_cancelled_job_ends_cancelled() -> None:
    assert verdict(expired(attempt=1, cancel_requested=True)).state == "cancelled"


def test_reap_arguments_are_column_arrays() -> None:
    v = [Verdict(1, 2, "failed", None, "m", "w"), Verdict(3, 1, "retrying", 0.5, "n", None)]
    assert reap_arguments(v) == ([1, 3], [2, 1], ["failed", "retrying"], [None, 0.5], ["m", "n"], ["w", None])


def test_reaped_jobs_are_announced_with_the_lease_error_and_only_the_final_ones_wake_waiters() -> None:
    rows = [
        {"id": 1, "kind": "noop", "queue": "default", "attempt": 1, "state": "retrying", "message": "lease expired"},
        {"id": 2, "kind": "noop", "queue": "default", "attempt": 3, "state": "failed", "message": "lease expired"},
    ]
    announced = events.decode(finished_event(rows))
    assert [(e["type"], e["error_class"]) for e in announced] == [
        ("job.retrying", ERROR_CLASS),
        ("job.failed", ERROR_CLASS),
    ]
    assert events.final_ids(announced) == [2]


def test_the_prune_plan_keeps_jobs_forever_at_zero_retention_but_still_expires_idempotency_keys() -> None:
    assert [table for table, _, _ in pruner.plan(30)] == [
        "jobs",
        "job_minutes",
        "job_hours",
        "dead_letters",
        "site_minutes",
        "idempotency_keys",
        "workers",
        "webhook_deliveries",
    ]
    assert [age for _, _, age in pruner.plan(30)] == [30 * 86_400] * 5 + [86_400] * 3
    assert [table for table, _, _ in pruner.plan(0)] == ["idempotency_keys", "workers", "webhook_deliveries"]


def test_state_gauges_report_zero_for_configured_queues_without_jobs() -> None:
    values = gauge_values([{"state": "queued", "queue": "default", "n": 5}], ["default", "bulk"])
    assert values[("queued", "default")] == 5
    assert values[("queued", "bulk")] == 0 and values[("running", "default")] == 0
    assert len(values) == 8


def test_ready_jobs_are_summed_per_queue_over_the_states_and_configured_queues_show_zero() -> None:
    counts = [
        {"state": "queued", "queue": "default", "n": 5, "ready": 5},
        {"state": "retrying", "queue": "default", "n": 4, "ready": 1},
        {"state": "queued", "queue": "other", "n": 2, "ready": 2},
    ]
    assert ready_values(counts, ["default", "bulk"]) == {"default": 6, "bulk": 0, "other": 2}
