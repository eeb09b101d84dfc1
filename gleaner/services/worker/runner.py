"""Run one handler in the job's own flow task, under the job's timeout, cancellable by job id.

The handler runs inline: no task of its own and no timer of its own (a task, its wait and a per-job
`asyncio.timeout` cost the worker about a sixth of its CPU per no-op job). A cancel by job id, or the job's
timeout, cancels the flow task while the handler runs, and the flow takes that cancellation back
(`Task.uncancel`) to write the outcome; a cancellation of the flow itself still ends the flow. One timer, set for
the nearest deadline among the running jobs, enforces every timeout.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from gleaner.services.worker.context import JobContext
from gleaner.services.worker.handlers import Handler
from gleaner.services.worker.retry import REASON_TIMEOUT, Budget, Outcome, from_cancellation, from_error, from_result
from gleaner.shared.soft_limit import SoftLimited

# a timer may fire this much before its time (the loop's clock resolution): a deadline that close has passed
DEADLINE_SLACK_S = 0.001


@dataclass(slots=True)
class RunningJob:
    """A handler this worker runs, the task it runs in, when it times out (loop time) and, once cancelled, why."""

    job_id: int
    attempt: int
    task: asyncio.Task[Any]
    deadline: float = math.inf
    reason: str | None = None
    ended: bool = False

    @property
    def key(self) -> tuple[int, int]:
        return (self.job_id, self.attempt)

    def cancel(self, reason: str) -> bool:
        """Cancel the handler unless it already ended; the first reason given wins (and only it cancels)."""
        if self.ended:
            return False
        if self.reason is None:
            self.reason = reason
            self.task.cancel()
        return True


@dataclass(slots=True)
class RunningJobs:
    """The attempts this process holds (claimed, outcome not written yet) and their running handlers, by job id
    (a job runs one attempt at a time). The heartbeat renews the leases of exactly the attempts held."""

    _jobs: dict[int, RunningJob] = field(default_factory=dict)
    _held: set[tuple[int, int]] = field(default_factory=set)
    # set by cancel_all: a handler starting afterwards (its claim was in flight) is cancelled at once
    _cancel_new: str | None = None
    # the one timeout timer, for the nearest deadline (it may find that job ended and look for the next)
    _timer: asyncio.TimerHandle | None = None
    _timer_at: float = math.inf
    _loop: asyncio.AbstractEventLoop | None = None

    def hold(self, keys: Iterable[tuple[int, int]]) -> None:
        """This process claimed these attempts: their leases are renewed until `release`."""
        self._held.update(keys)

    def release(self, keys: Iterable[tuple[int, int]]) -> None:
        """The attempts' outcomes are written (or they were handed back, or the flow gave up on them)."""
        self._held.difference_update(keys)

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
        """Run the handler to its outcome, in the calling task; cancelling the caller cancels the handler too."""
        if self._cancel_new is not None:
            return from_cancellation(self._cancel_new, budget)  # never started: the same outcome as cancelled at once
        loop, task = self._current()
        entry = self._start(ctx, task, loop)
        soft_s = ctx.job.soft_timeout_s
        try:
            # the handler's coroutine awaited here, not in a coroutine of its own (one frame less a job)
            result = await (handler(ctx) if soft_s is None else SoftLimited(handler(ctx), soft_s))
        except asyncio.CancelledError:
            # ours only if a reason was given and no other cancellation of the flow is pending
            if entry.reason is None or task.uncancel() > 0:
                raise
            return from_cancellation(entry.reason, budget, ctx.job.timeout_s)
        except Exception as error:  # noqa: BLE001 - every handler failure is an outcome
            return from_error(error, budget)
        finally:
            entry.ended = True
            if self._jobs.get(entry.job_id) is entry:
                del self._jobs[entry.job_id]
        if entry.reason is not None:
            task.uncancel()  # the handler swallowed its cancellation and returned: the flow goes on uncancelled
        return from_result(result)

    def _current(self) -> tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]]:
        """The running loop and task. `asyncio.get_running_loop()` costs a getpid() system call on Python 3.11 (0.4
        µs here, more on a busy VM), so the loop is looked up once: only a running loop has a current task, so a
        task found for the loop kept is this one (a new loop, as in tests, is looked up again)."""
        loop = self._loop
        task = asyncio.current_task(loop) if loop is not None else None
        if loop is None or task is None:
            loop = self._loop = asyncio.get_running_loop()
            task = asyncio.current_task(loop)
        assert task is not None, "a handler runs in a task"
        return loop, task

    def _start(self, ctx: JobContext, task: asyncio.Task[Any], loop: asyncio.AbstractEventLoop) -> RunningJob:
        entry = RunningJob(ctx.job.id, ctx.job.attempt, task, loop.time() + ctx.job.timeout_s)
        self._jobs[entry.job_id] = entry
        if entry.deadline < self._timer_at:
            self._arm(loop, entry.deadline)
        return entry

    def _arm(self, loop: asyncio.AbstractEventLoop, at: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        self._timer = loop.call_at(at, self._expire, loop) if math.isfinite(at) else None

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        """The timer: cancel the handlers past their deadline, then wait for the nearest one still running."""
        now = loop.time() + DEADLINE_SLACK_S
        nearest = math.inf
        for entry in list(self._jobs.values()):
            if entry.reason is not None:
                continue
            if entry.deadline <= now:
                entry.cancel(REASON_TIMEOUT)
            else:
                nearest = min(nearest, entry.deadline)
        self._timer = None
        self._arm(loop, nearest)
