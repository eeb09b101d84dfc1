"""What a handler receives: the job, a logger bound to it, progress reporting, cancellation."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

JSON = Any


@dataclass(frozen=True, slots=True)
class JobInfo:
    """The job as a handler sees it."""

    id: int
    kind: str
    queue: str
    attempt: int
    max_attempts: int
    payload: JSON
    site: str | None
    timeout_s: float
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class Partial:
    """Return this from a handler when part of the work failed: the job ends `partial`."""

    result: JSON


class Deferred(Exception):
    """Raise this (the polite client does) to end the attempt without spending it: the job waits `wait_s`
    and runs again; it never fails because of waiting."""

    def __init__(self, wait_s: float, reason: str) -> None:
        super().__init__(f"deferred {wait_s:.2f}s: {reason}")
        self.wait_s = wait_s
        self.reason = reason


async def _no_progress(_: JSON) -> None:
    return None


@dataclass(slots=True)
class JobContext:
    """Passed to every handler.

    `http` is the job's HTTP client: a `PoliteClient` applying the site's policy when the job has a site,
    otherwise the worker's SSRF-guarded `FetchClient`; both have `get(url) -> Response`.
    `save_result(response, data)` stores a `scrape_results` row (see gleaner.services.worker.results).
    """

    job: JobInfo
    log: logging.LoggerAdapter[logging.Logger]
    http: Any = None
    # the worker's PostgreSQL pool, for maintenance handlers and handlers that store their own data
    db: Any = None
    report: Callable[[JSON], Awaitable[None]] = _no_progress
    extras: dict[str, Any] = field(default_factory=dict)
    # the job's site policy (gleaner.services.worker.site_limits.Site) or None
    site: Any = None
    # a gleaner.services.worker.results.ResultStore bound to this job
    results: Any = None

    async def progress(self, data: JSON) -> None:
        """Record progress (e.g. pages done); visible as the job's `progress` field."""
        await self.report(data)

    async def save_result(self, response: Any, data: JSON = None, *, keep_body: bool = True) -> Any:
        """Store a fetched page (and what was extracted from it) as a `scrape_results` row of this job.

        Returns a `StoredResult` (id, unchanged): `unchanged` when the URL's previous result had the same hash.
        """
        if self.results is None:
            raise RuntimeError("this context has no result store")
        return await self.results.save(response, data, keep_body=keep_body)


def job_logger(job: JobInfo) -> logging.LoggerAdapter[logging.Logger]:
    return logging.LoggerAdapter(logging.getLogger(f"gleaner.job.{job.kind}"), {"kind": job.kind})
