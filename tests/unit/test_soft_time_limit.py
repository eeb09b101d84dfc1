"""The soft time limit: `SoftTimeLimitExceeded` raised inside the handler before the hard `timeout_s`."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

import gleaner
from gleaner import Partial, Registry, SoftTimeLimitExceeded
from gleaner.services.worker.context import JobContext, JobInfo
from gleaner.services.worker.handlers import ServedKinds
from gleaner.services.worker.retry import CANCELLED, PARTIAL, REASON_CANCEL, RETRYING, SUCCEEDED, Budget
from gleaner.services.worker.runner import RunningJobs
from gleaner.shared.soft_limit import effective_soft_s, with_soft_limit

BUDGET = Budget(attempt=1, attempt_base=0, max_attempts=3, retry_base_s=0.1, retry_cap_s=1.0)


def context(timeout_s: float = 5.0, soft_timeout_s: float | None = None) -> JobContext:
    job = JobInfo(
        id=1,
        kind="t",
        queue="default",
        attempt=1,
        max_attempts=3,
        payload={},
        site=None,
        timeout_s=timeout_s,
        soft_timeout_s=soft_timeout_s,
    )
    return JobContext(job=job, log=logging.LoggerAdapter(logging.getLogger("t"), {}))


def test_the_soft_time_limit_is_public_and_a_retryable_handler_error() -> None:
    assert "SoftTimeLimitExceeded" in gleaner.__all__
    assert issubclass(SoftTimeLimitExceeded, gleaner.RetryableError)
    assert SoftTimeLimitExceeded.error_class == "soft_time_limit"


async def test_a_handler_that_catches_the_soft_limit_saves_its_partial_work_and_returns() -> None:
    pages: list[int] = []

    async def handler(ctx: JobContext) -> Any:
        try:
            for page in range(1000):
                await asyncio.sleep(0.01)
                pages.append(page)
        except SoftTimeLimitExceeded:
            return Partial({"pages": len(pages)})
        return {"pages": len(pages)}

    outcome = await RunningJobs().run(handler, context(timeout_s=5.0, soft_timeout_s=0.1), BUDGET)
    assert outcome.state == PARTIAL
    assert 0 < len(pages) < 1000
    assert outcome.result_json == f'{{"pages":{len(pages)}}}'


async def test_a_handler_that_ignores_the_soft_limit_is_still_stopped_at_the_hard_timeout() -> None:
    seen: list[str] = []

    async def handler(ctx: JobContext) -> Any:
        while True:
            try:
                await asyncio.sleep(3600)
            except SoftTimeLimitExceeded:
                seen.append("soft")  # swallowed: the handler carries on

    outcome = await RunningJobs().run(handler, context(timeout_s=0.3, soft_timeout_s=0.05), BUDGET)
    assert seen == ["soft"]
    assert (outcome.state, outcome.error_class) == (RETRYING, "timeout")


async def test_an_uncaught_soft_limit_ends_the_attempt_as_a_retryable_soft_time_limit() -> None:
    async def handler(ctx: JobContext) -> Any:
        await asyncio.sleep(3600)

    outcome = await RunningJobs().run(handler, context(timeout_s=5.0, soft_timeout_s=0.05), BUDGET)
    assert (outcome.state, outcome.error_class) == (RETRYING, "soft_time_limit")


async def test_a_handler_done_before_its_soft_limit_never_sees_it() -> None:
    async def handler(ctx: JobContext) -> Any:
        await asyncio.sleep(0.01)
        return "done"

    outcome = await RunningJobs().run(handler, context(timeout_s=5.0, soft_timeout_s=0.2), BUDGET)
    await asyncio.sleep(0.3)
    assert (outcome.state, outcome.result_json) == (SUCCEEDED, '"done"')


async def test_a_cancel_request_still_cancels_a_soft_limited_handler() -> None:
    running = RunningJobs()
    started = asyncio.Event()

    async def handler(ctx: JobContext) -> Any:
        started.set()
        await asyncio.sleep(3600)

    run = asyncio.create_task(running.run(handler, context(timeout_s=5.0, soft_timeout_s=2.0), BUDGET))
    await started.wait()
    assert running.cancel(1, REASON_CANCEL)
    assert (await run).state == CANCELLED


def test_the_jobs_own_soft_limit_wins_over_its_kinds_and_neither_applies_past_the_timeout() -> None:
    assert effective_soft_s(10.0, 20.0, 60.0) == 10.0
    assert effective_soft_s(None, 20.0, 60.0) == 20.0
    assert effective_soft_s(None, 60.0, 60.0) is None
    assert effective_soft_s(None, None, 60.0) is None


def test_a_kind_registered_with_a_soft_limit_gives_it_to_jobs_that_set_none() -> None:
    registry = Registry()

    @registry.handler("slow.scrape", soft_timeout_s=30)
    async def slow(ctx: JobContext) -> Any:
        return None

    kinds = ServedKinds(registry)
    job = context(timeout_s=300.0).job
    assert with_soft_limit(job, kinds.soft_timeout_s("slow.scrape")).soft_timeout_s == 30
    assert with_soft_limit(job, kinds.soft_timeout_s("noop")).soft_timeout_s is None
    copy = Registry()
    copy.include(registry)
    assert copy.get("slow.scrape").soft_timeout_s == 30


def test_a_kind_soft_limit_that_is_not_a_positive_number_is_refused() -> None:
    with pytest.raises(ValueError, match="soft_timeout_s"):
        Registry().add("x", lambda ctx: None, soft_timeout_s=0)  # type: ignore[arg-type,return-value]


async def test_gleaner_testing_raises_the_soft_limit_in_a_handler_as_the_worker_does() -> None:
    from gleaner.testing import run_job

    registry = Registry()

    @registry.handler("crawl", soft_timeout_s=0.05)
    async def crawl(ctx: JobContext) -> Any:
        pages = 0
        try:
            while True:
                await asyncio.sleep(0.01)
                pages += 1
        except SoftTimeLimitExceeded:
            return Partial({"pages": pages, "soft_timeout_s": ctx.job.soft_timeout_s})

    by_kind = await run_job(registry, "crawl")
    own = await run_job(registry, "crawl", soft_timeout_s=0.02)
    assert by_kind.outcome == "partial" and by_kind.result["soft_timeout_s"] == 0.05  # type: ignore[index,call-overload]
    assert own.outcome == "partial" and own.result["soft_timeout_s"] == 0.02  # type: ignore[index,call-overload]
