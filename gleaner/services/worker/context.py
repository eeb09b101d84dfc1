"""What a handler receives (the public `gleaner.JobContext`), and `Deferred`, the worker's own wait signal."""

from __future__ import annotations

from gleaner.handlers import Partial
from gleaner.job_context import JobContext, JobInfo, JobLogger, job_logger

__all__ = ["Deferred", "JobContext", "JobInfo", "JobLogger", "Partial", "job_logger"]


class Deferred(Exception):
    """Raise this (the polite client does) to end the attempt without spending it: the job waits `wait_s`
    and runs again; it never fails because of waiting."""

    def __init__(self, wait_s: float, reason: str) -> None:
        super().__init__(f"deferred {wait_s:.2f}s: {reason}")
        self.wait_s = wait_s
        self.reason = reason
