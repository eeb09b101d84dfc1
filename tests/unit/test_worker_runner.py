"""Running a handler: timeouts, cancellation by reason, results, and the heartbeat's cancel decisions."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from gleaner.services.worker.context import JobContext, JobInfo
from gleaner.services.worker.dead_letters import json_headers
from gleaner.services.worker.heartbeat import to_cancel
from gleaner.services.worker.retry import (
    CANCELLED,
    FAILED,
    HANDBACK,
    REASON_CANCEL,
    REASON_LEASE_LOST,
    REASON_SHUTDOWN,
    RETRYING,
    SUCCEEDED,
    Budget,
)
from gleaner.services.worker.runner import RunningJobs

BUDGET = Budget(attempt=1, attempt_base=0, max_attempts=3, retry_base_s=0.1, retry_cap_s=1.0)


def context(job_id: int = 1, timeout_s: float = 5.0) -> JobContext:
    job = JobInfo(
        id=job_id, kind="t", queue="default", attempt=1, max_attempts=3, payload={}, site=None, timeout_s=timeout_s
    )
    return JobContext(job=job, log=logging.LoggerAdapter(logging.getLogger("t"), {}))


async def forever(ctx: JobContext) -> Any:
    await asyncio.sleep(3600)


async def test_a_handler_that_returns_succeeds_with_its_result() -> None:
    async def handler(ctx: JobContext) -> Any:
        return {"id": ctx.job.id}

    outcome = await RunningJobs().run(handler, context(job_id=5), BUDGET)
    assert (outcome.state, outcome.result_json) == (SUCCEEDED, '{"id":5}')


async def test_a_handler_past_its_timeout_is_a_retryable_timeout() -> None:
    outcome = await RunningJobs().run(forever, context(timeout_s=0.01), BUDGET)
    assert (outcome.state, outcome.error_class) == (RETRYING, "timeout")


async def test_each_job_times_out_at_its_own_deadline_and_the_others_run_on() -> None:
    running = RunningJobs()
    slow = asyncio.create_task(running.run(forever, context(job_id=1, timeout_s=0.4), BUDGET))
    await asyncio.sleep(0)  # the slow job armed the timer for its own, later deadline
    started = time.monotonic()
    quick = await running.run(forever, context(job_id=2, timeout_s=0.05), BUDGET)
    assert (quick.state, quick.error_class) == (RETRYING, "timeout")
    assert time.monotonic() - started < 0.3 and not slow.done()
    late = await slow
    assert (late.state, late.error_class, late.error_message) == (RETRYING, "timeout", "no result within 0.4s")
    assert len(running) == 0


async def test_a_timeout_raised_by_the_handler_itself_is_not_the_job_timeout() -> None:
    async def handler(ctx: JobContext) -> Any:
        raise TimeoutError("upstream")

    outcome = await RunningJobs().run(handler, context(), BUDGET)
    assert (outcome.state, outcome.error_class) == (RETRYING, "TimeoutError")


async def test_a_permanent_error_fails() -> None:
    async def handler(ctx: JobContext) -> Any:
        from gleaner.shared.errors import PermanentError

        raise PermanentError("no")

    assert (await RunningJobs().run(handler, context(), BUDGET)).state == FAILED


def started_forever(started: asyncio.Event) -> Any:
    async def handler(ctx: JobContext) -> Any:
        started.set()
        await asyncio.sleep(3600)

    return handler


async def cancel_while_running(reason: str) -> str:
    running, started = RunningJobs(), asyncio.Event()
    run = asyncio.create_task(running.run(started_forever(started), context(job_id=9), BUDGET))
    await started.wait()
    assert running.cancel(9, reason)
    outcome = await run
    assert len(running) == 0
    return outcome.state


async def test_a_cancel_request_ends_the_job_cancelled() -> None:
    assert await cancel_while_running(REASON_CANCEL) == CANCELLED


async def test_a_shutdown_cancel_hands_the_job_back() -> None:
    assert await cancel_while_running(REASON_SHUTDOWN) == HANDBACK


async def test_a_handler_starting_after_a_shutdown_cancel_is_handed_back_at_once() -> None:
    running = RunningJobs()
    running.cancel_all(REASON_SHUTDOWN)
    assert (await running.run(forever, context(), BUDGET)).state == HANDBACK


async def test_cancelling_an_unknown_job_does_nothing() -> None:
    assert not RunningJobs().cancel(42, REASON_CANCEL)


async def test_cancelling_the_caller_cancels_the_handler_too() -> None:
    running, started, stopped = RunningJobs(), asyncio.Event(), asyncio.Event()

    async def handler(ctx: JobContext) -> Any:
        started.set()
        try:
            await asyncio.sleep(3600)
        finally:
            stopped.set()

    run = asyncio.create_task(running.run(handler, context(job_id=3), BUDGET))
    await started.wait()
    run.cancel()
    await asyncio.gather(run, return_exceptions=True)
    assert run.cancelled() and stopped.is_set()
    assert len(running) == 0


async def test_a_cancelled_job_leaves_its_flow_free_to_write_the_outcome() -> None:
    running, started = RunningJobs(), asyncio.Event()

    async def flow() -> tuple[str, str]:
        outcome = await running.run(started_forever(started), context(job_id=4), BUDGET)
        await asyncio.sleep(0.01)  # the flow goes on (it writes the outcome): no cancellation is left pending
        return outcome.state, "written"

    run = asyncio.create_task(flow())
    await started.wait()
    assert running.cancel(4, REASON_CANCEL)
    assert await run == (CANCELLED, "written")
    assert not running.cancel(4, REASON_CANCEL)


def test_the_heartbeat_cancels_jobs_whose_lease_is_gone_or_whose_cancel_was_requested() -> None:
    local = [(1, 1), (2, 1), (3, 2)]
    leased = {(1, 1): False, (3, 2): True, (4, 1): False}
    assert to_cancel(local, leased) == [((2, 1), REASON_LEASE_LOST), ((3, 2), REASON_CANCEL)]


def test_amqp_headers_are_stored_as_json() -> None:
    headers = {"job_id": 1, "raw": b"bytes", "nested": {"a": [b"x", 2]}, "odd": object}
    stored = json_headers(headers)
    assert stored["job_id"] == 1 and stored["raw"] == "bytes" and stored["nested"] == {"a": ["x", 2]}
    assert isinstance(stored["odd"], str)


def test_a_cancel_reaches_the_handler_of_its_own_job_whatever_task_and_loop_ran_the_ones_before() -> None:
    running = RunningJobs()

    async def in_a_loop(job_id: int) -> tuple[str, str]:
        quick = await running.run(forever, context(job_id=100 + job_id, timeout_s=0.01), BUDGET)  # this task
        other = asyncio.create_task(running.run(forever, context(job_id=job_id), BUDGET))  # a task of its own
        await asyncio.sleep(0.01)
        assert running.cancel(job_id, REASON_CANCEL)
        return quick.state, (await other).state

    assert asyncio.run(in_a_loop(1)) == (RETRYING, CANCELLED)
    assert asyncio.run(in_a_loop(2)) == (RETRYING, CANCELLED)  # a new loop: not the one kept from the first
