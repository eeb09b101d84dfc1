"""The soft time limit: raise `SoftTimeLimitExceeded` inside a running handler, at the await it is suspended in.

asyncio can only throw `CancelledError` into a task, and an `except` clause matches by type, so the handler's
coroutine is driven through a thin proxy: at the soft deadline the task is cancelled with a marker message and
the proxy throws `SoftTimeLimitExceeded` into the handler in place of that one cancellation (and takes the
cancellation request back, so the hard timeout still counts as the task's only one). Every other cancellation
(the hard `timeout_s`, a cancel request, shutdown) passes through unchanged. Jobs without a soft limit are not
proxied at all.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Generator
from typing import Any, Final

from gleaner.handlers import SoftTimeLimitExceeded
from gleaner.job_context import JobInfo

SOFT_LIMIT_MARK: Final = "gleaner.soft_time_limit"


def effective_soft_s(job_soft_s: float | None, kind_soft_s: float | None, timeout_s: float) -> float | None:
    """The soft limit that applies: the job's own, else its kind's; none unless it falls before `timeout_s`."""
    soft_s = job_soft_s if job_soft_s is not None else kind_soft_s
    return soft_s if soft_s is not None and 0 < soft_s < timeout_s else None


def with_soft_limit(job: JobInfo, kind_soft_s: float | None) -> JobInfo:
    """The job as its handler sees it: `soft_timeout_s` is the limit that applies (None: no soft limit)."""
    soft_s = effective_soft_s(job.soft_timeout_s, kind_soft_s, job.timeout_s)
    return job if soft_s == job.soft_timeout_s else dataclasses.replace(job, soft_timeout_s=soft_s)


class SoftLimited:
    """Await `awaitable` in the current task, which is cancelled with the marker `soft_s` seconds from now."""

    def __init__(self, awaitable: Awaitable[Any], soft_s: float) -> None:
        self._awaitable = awaitable
        self._soft_s = soft_s

    def __await__(self) -> Generator[Any, None, Any]:
        task = asyncio.current_task()
        assert task is not None, "a handler runs in a task"
        handle = asyncio.get_running_loop().call_later(self._soft_s, task.cancel, SOFT_LIMIT_MARK)
        try:
            return (yield from self._drive(task))
        finally:
            handle.cancel()

    def _drive(self, task: asyncio.Task[Any]) -> Generator[Any, None, Any]:
        """`yield from` the awaitable, except that the soft limit's cancellation arrives as SoftTimeLimitExceeded."""
        coro = self._awaitable.__await__()
        sent: Any = None
        thrown: BaseException | None = None
        while True:
            try:
                yielded = coro.send(sent) if thrown is None else coro.throw(thrown)
            except StopIteration as stop:
                return stop.value
            sent, thrown = None, None
            try:
                sent = yield yielded
            except asyncio.CancelledError as cancel:
                thrown = cancel
                if cancel.args == (SOFT_LIMIT_MARK,):
                    task.uncancel()
                    thrown = SoftTimeLimitExceeded(f"soft time limit of {self._soft_s:g}s exceeded")
            except BaseException as error:  # noqa: BLE001 - every other exception reaches the handler unchanged
                thrown = error
