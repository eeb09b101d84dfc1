"""Batched claims and finishes: one answer per caller, duplicates claimed once, arrays in item order."""

from __future__ import annotations

import dataclasses
from typing import Any

from gleaner.job_context import JobInfo
from gleaner.services.worker.app import worker_id
from gleaner.services.worker.claims import (
    JOB_INFO_FIELDS,
    Finish,
    Finished,
    JobStore,
    distribute,
    finish_arguments,
    job_info,
    unique_keys,
)
from gleaner.services.worker.publishing import finished_event
from gleaner.services.worker.retry import FAILED, RETRYING, SUCCEEDED, Outcome
from gleaner.shared import events
from gleaner.shared.config import Config


def test_duplicate_keys_are_sent_once_in_first_seen_order() -> None:
    assert unique_keys([(1, 1), (2, 1), (1, 1), (3, 2)]) == [(1, 1), (2, 1), (3, 2)]


def test_a_row_goes_to_the_first_caller_with_its_key_only() -> None:
    rows = {(1, 1): "one", (2, 1): "two"}
    assert distribute([(1, 1), (1, 1), (2, 1), (3, 1), (1, 1)], rows) == ["one", None, "two", None, None]


def row(job_id: int, attempt: int) -> dict[str, Any]:
    return {
        "id": job_id,
        "attempt": attempt,
        "kind": "noop",
        "queue": "default",
        "payload": {},
        "site": None,
        "timeout_s": 30.0,
        "soft_timeout_s": None,
        "max_attempts": 3,
        "attempt_base": 0,
        "retry_base_s": 1.0,
        "retry_cap_s": 60.0,
        "request_id": None,
        "generation": 0,
        "wait_s": 0.25,
    }


class FakePool:
    """Answers the claim statement as PostgreSQL would: each waiting row once."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        self.calls.append(args)
        ids, attempts = args[0], args[1]
        return [row(i, a) for i, a in zip(ids, attempts, strict=True)]


async def test_a_batch_claiming_the_same_attempt_twice_gives_the_row_to_one_caller() -> None:
    pool = FakePool()
    store = JobStore(pool, "worker-1", lease_s=3.0)  # type: ignore[arg-type]
    claims = await store.claim([(7, 1, 0), (7, 1, 0), (8, 2, 0)])
    assert [c.job.id if c else None for c in claims] == [7, None, 8]
    assert pool.calls[0][:4] == ([7, 8], [1, 2], "worker-1", 3.0)
    first = claims[0]
    assert first is not None
    assert (first.budget.attempt, first.budget.max_attempts, first.wait_s) == (1, 3, 0.25)
    assert (first.budget.attempt_base, first.budget.retry_base_s, first.budget.retry_cap_s) == (0, 1.0, 60.0)


def test_a_claimed_rows_job_info_equals_the_one_its_constructor_makes() -> None:
    assert tuple(f.name for f in dataclasses.fields(JobInfo)) == JOB_INFO_FIELDS
    record = row(7, 2) | {"request_id": "req-1", "soft_timeout_s": 5.0, "site": "indeed", "payload": {"q": 1}}
    made = job_info(record)
    assert made == JobInfo(**{name: record[name] for name in JOB_INFO_FIELDS})
    assert (made.id, made.attempt, made.site, made.request_id, made.soft_timeout_s) == (7, 2, "indeed", "req-1", 5.0)


async def test_a_claim_announces_its_job_started_and_running_at_its_attempt() -> None:
    [claim, other] = await JobStore(FakePool(), "worker-1", lease_s=3.0).claim([(7, 2, 0), (8, 2, 0)])  # type: ignore[arg-type]
    assert claim is not None and claim.started is not None and other is not None and other.started is not None
    assert other.started["job_id"] == 8
    started = claim.started
    assert (started["type"], started["state"], started["job_id"], started["attempt"]) == (
        "job.started",
        "running",
        7,
        2,
    )


def test_a_claimed_rows_job_info_stays_frozen() -> None:
    made = job_info(row(7, 2))
    try:
        made.attempt = 3  # type: ignore[misc]
    except dataclasses.FrozenInstanceError:
        pass
    else:
        raise AssertionError("JobInfo accepted an assignment")
    assert made.attempt == 2


def test_finish_arguments_are_one_array_per_column_in_item_order() -> None:
    items = [
        Finish(1, 1, Outcome(SUCCEEDED, result_json="{}")),
        Finish(
            2,
            3,
            Outcome(RETRYING, error_class="timeout", error_message="slow", retry_delay_s=0.4, error_traceback="tb"),
        ),
    ]
    assert finish_arguments(items) == (
        [1, 2],
        [1, 3],
        [SUCCEEDED, RETRYING],
        ["{}", None],
        [None, "timeout"],
        [None, "slow"],
        [None, 0.4],
        [None, "tb"],
    )


def test_the_error_columns_of_a_batch_without_errors_go_as_null_arrays_and_the_others_in_full() -> None:
    items = [Finish(n, 1, Outcome(SUCCEEDED, result_json="{}")) for n in (1, 2)]
    assert finish_arguments(items) == ([1, 2], [1, 1], [SUCCEEDED, SUCCEEDED], ["{}", "{}"], None, None, None, None)
    failed = Finish(3, 2, Outcome(FAILED, error_class="bad_result", error_message="not JSON"))
    assert finish_arguments([*items, failed])[4:] == ([None, None, "bad_result"], [None, None, "not JSON"], None, None)


def test_the_finished_event_lists_every_written_outcome_once() -> None:
    def written(job_id: int, state: str) -> Finished:
        row = {"id": job_id, "kind": "noop", "queue": "default", "attempt": 1, "state": state}
        return Finished(state, event=events.job_event(row, events.stamp()))

    results = [written(1, SUCCEEDED), written(2, RETRYING), None, written(4, FAILED)]
    body = finished_event(results)
    assert body is not None
    assert [(e["job_id"], e["type"]) for e in events.decode(body)] == [
        (1, "job.succeeded"),
        (2, "job.retrying"),
        (4, "job.failed"),
    ]
    assert finished_event([None]) is None


def test_each_start_of_a_worker_is_its_own_lease_owner_even_with_a_configured_id() -> None:
    config = Config.from_env({"GLEANER_WORKER_ID": "scraper-7"})
    first, second = worker_id(config), worker_id(config)
    assert first != second
    assert first.startswith("scraper-7-") and second.startswith("scraper-7-")
