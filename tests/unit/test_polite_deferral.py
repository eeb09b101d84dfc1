"""A deferral is neither a failure nor a retry: it spends no attempt and ends no job."""

from __future__ import annotations

from gleaner.services.worker.claims import Finished
from gleaner.services.worker.context import Deferred
from gleaner.services.worker.publishing import finished_event
from gleaner.services.worker.retry import DEFERRED, SUCCEEDED, Budget, from_error
from gleaner.shared import events

SPENT = Budget(attempt=3, attempt_base=0, max_attempts=3, retry_base_s=1, retry_cap_s=10)


def test_a_deferral_waits_even_when_the_attempt_budget_is_spent() -> None:
    outcome = from_error(Deferred(12.5, "rate_limited"), SPENT)
    assert (outcome.state, outcome.retry_delay_s, outcome.error_class) == (DEFERRED, 12.5, "rate_limited")


def test_a_deferred_job_is_not_announced_as_finished() -> None:
    done = events.job_event({"id": 2, "kind": "noop", "queue": "default", "attempt": 1, "state": SUCCEEDED}, "t")
    body = finished_event([Finished(DEFERRED), Finished(SUCCEEDED, event=done)])
    assert body is not None and [e["job_id"] for e in events.decode(body)] == [2]
