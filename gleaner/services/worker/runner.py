"""Run one handler as its own task, under the job's timeout, cancellable by job id."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from gleaner.services.worker.context import JobContext
from gleaner.services.worker.handlers import Handler
from gleaner.services.worker.retry import Budget, JobTimedOut, Outcome, from_cancellation, from_error, from_result
from gleaner.shared.soft_limit import SoftLimited


@dataclass(slots=True)
class RunningJob:
    """A handler task of this worker and, once cancelled, why."""

    job_id: int
    attempt: int
    task: asyncio.Task[Any]
    reason: str | None = None

    @property
    def key(self) -> tuple[int, int]:
        return (self.job_id, self.attempt)

    def cancel(self, reason: str) -> bool:
        """Cancel the handler unless it already ended; the first reason given wins."""
        if self.task.done():
            return False
        if self.reason is None:
            self.reason = reason
        self.task.cancel()
        return True


@dataclass(slots=True)
class RunningJobs:
    """The attempts this process holds (claimed, outcome not written yet) and their handler tasks, by job id
    (a job runs one attempt at a time). The heartbeat renews the leases of exactly the attempts held."""

    _jobs: dict[int, RunningJob] = field(default_factory=dict)
    _held: set[tuple[int, int]] = field(default_factory=set)
    # set by cancel_all: a handler starting afterwards (its claim was in flight) is cancelled at once
    _cancel_new: str | None = None

    def hold(self, key: tuple[int, int]) -> None:
        """This process claimed the attempt: its lease is renewed until `release`."""
        self._held.add(key)

    def release(self, key: tuple[int, int]) -> None:
        """The attempt's outcome is written (or it was handed back, or the flow gave up on it)."""
        self._held.discard(key)

    def held(self) -> list[tuple[int, int]]:
        return list(self._held)

    def __len__(self) -> int:
        return len(self._jobs)

    def __iter__(self) -> Iterator[RunningJob]:
        return iter(list(self._jobs.values()))

    def get(self, job_id: int) -> RunningJob | None:
        return self._jobs.get(job_id)

    def cancel(self, job_id: int, reason: str) -> bool:
        job = self._jobs.get(job_id)
        return job is not None and job.cancel(reason)

    def cancel_all(self, reason: str) -> int:
        self._cancel_new = reason
        return sum(job.cancel(reason) for job in self)

    async def run(self, handler: Handler, ctx: JobContext, budget: Budget) -> Outcome:
        """Run the handler to its outcome; cancellation of the caller cancels the handler too."""
        task = asyncio.create_task(_call(handler, ctx), name=f"job-{ctx.job.id}")
        entry = RunningJob(ctx.job.id, ctx.job.attempt, task)
        self._jobs[entry.job_id] = entry
        if self._cancel_new is not None:
            entry.cancel(self._cancel_new)
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:
            task.cancel()
            raise
        finally:
            if self._jobs.get(entry.job_id) is entry:
                del self._jobs[entry.job_id]
        return outcome_of(entry, budget)


def outcome_of(entry: RunningJob, budget: Budget) -> Outcome:
    """The outcome of a finished handler task."""
    task = entry.task
    if task.cancelled():
        return from_cancellation(entry.reason, budget)
    error = task.exception()
    if error is not None:
        return from_error(error, budget)
    return from_result(task.result())


async def _call(handler: Handler, ctx: JobContext) -> Any:
    timeout = asyncio.timeout(ctx.job.timeout_s)
    soft_s = ctx.job.soft_timeout_s
    try:
        async with timeout:
            if soft_s is None:
                return await handler(ctx)
            return await SoftLimited(handler(ctx), soft_s)
    except TimeoutError:
        if timeout.expired():
            raise JobTimedOut(f"no result within {ctx.job.timeout_s:g}s") from None
        raise
