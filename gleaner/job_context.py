"""What a handler receives: the job, its HTTP client, the database, the site's policy, results, log and progress.

The worker builds a `JobContext` for every attempt; `gleaner.testing` builds one with fakes. The parts are
described by protocols, so a handler is type-checked against what it may use, not against the worker's classes.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from gleaner.json_types import JsonInput, JsonObject, JsonObjectInput

__all__ = [
    "ChildJob",
    "ChildJobs",
    "Database",
    "HttpClient",
    "HttpResponse",
    "JobContext",
    "JobInfo",
    "JobSite",
    "ResultStore",
    "Row",
    "StoredResult",
    "job_logger",
]


class Row(Protocol):
    """A row as a handler reads it (asyncpg's Record): `row["column"]`."""

    def __getitem__(self, key: str, /) -> object: ...


@dataclass(frozen=True, slots=True)
class JobInfo:
    """The job as a handler sees it; `attempt` counts from 1. `soft_timeout_s`: when the worker raises
    `gleaner.SoftTimeLimitExceeded` in the handler (the job's own limit, else its kind's; None: never)."""

    id: int
    kind: str
    queue: str
    attempt: int
    max_attempts: int
    payload: JsonObject
    site: str | None
    timeout_s: float
    request_id: str | None = None
    soft_timeout_s: float | None = None


class HttpResponse(Protocol):
    """A fetched page: `url` is where redirects ended, `requested_url` what was asked for."""

    @property
    def url(self) -> str: ...
    @property
    def status(self) -> int: ...
    @property
    def content_type(self) -> str: ...
    @property
    def body(self) -> bytes: ...
    @property
    def requested_url(self) -> str: ...
    @property
    def sha256(self) -> str: ...
    @property
    def etag(self) -> str | None: ...
    @property
    def last_modified(self) -> str | None: ...
    @property
    def not_modified(self) -> bool:
        """A 304 to a conditional request: the page did not change since the validators sent."""
        ...

    def text(self) -> str: ...


class HttpClient(Protocol):
    """The job's HTTP client: SSRF-guarded, and polite (the site's limits across all workers) for a job of a site.

    Raises `RetryableError` or `PermanentError` on failure; a redirect is followed and checked again.
    """

    async def get(
        self, url: str, *, timeout_s: float = ..., headers: Mapping[str, str] | None = None
    ) -> HttpResponse: ...


class Database(Protocol):
    """The worker's PostgreSQL pool, for handlers that store their own data (asyncpg's `$n` parameters)."""

    async def execute(self, query: str, *args: object) -> str: ...
    async def fetch(self, query: str, *args: object) -> Sequence[Row]: ...
    async def fetchrow(self, query: str, *args: object) -> Row | None: ...
    async def fetchval(self, query: str, *args: object) -> object: ...


class JobSite(Protocol):
    """The job's site as configured (`PUT /sites/{name}`)."""

    @property
    def name(self) -> str: ...
    @property
    def partial_error_ratio(self) -> float: ...
    @property
    def timeout_s(self) -> float: ...


@dataclass(frozen=True, slots=True)
class StoredResult:
    """A stored page: its row id, and whether the URL's previous result had the same content."""

    id: int
    unchanged: bool


class ResultStore(Protocol):
    """Where the job's pages go (`GET /jobs/{id}/results`)."""

    async def save(
        self, response: HttpResponse, data: JsonInput = None, *, keep_body: bool = True, url: str | None = None
    ) -> StoredResult: ...
    async def done_urls(self) -> Mapping[str, bool]:
        """URLs this job stored already (an earlier attempt), each True when robots.txt blocked it."""
        ...

    async def conditional_headers(self, url: str) -> dict[str, str]:
        """If-None-Match / If-Modified-Since from the URL's last stored result (empty: none stored)."""
        ...

    async def save_blocked(self, url: str) -> int:
        """Record that robots.txt disallows `url`: a page result `blocked_by_robots`, not a failure."""
        ...


@dataclass(frozen=True, slots=True)
class ChildJob:
    """A job a handler submits (`JobContext.submit_many`); fields left None take the defaults of a submission.

    `key` names the child among its parent's children: see `JobContext.submit` for the rule.
    """

    kind: str
    payload: JsonObjectInput | None = None
    key: str | None = None
    queue: str | None = None
    priority: int | None = None
    max_attempts: int | None = None
    timeout_s: float | None = None
    delay_s: float | None = None
    site: str | None = None


class ChildJobs(Protocol):
    """Where a handler's child jobs go: the worker writes them fenced on the attempt; `gleaner.testing` records them."""

    async def submit(self, jobs: Sequence[ChildJob]) -> list[int]:
        """The children's job ids, in order (the existing ids for keys the parent used before)."""
        ...


class _NoChildren:
    async def submit(self, jobs: Sequence[ChildJob]) -> list[int]:
        raise RuntimeError("this context cannot submit jobs")


class _NoHttp:
    async def get(self, url: str, *, timeout_s: float = 30.0, headers: Mapping[str, str] | None = None) -> HttpResponse:
        raise RuntimeError("this context has no HTTP client")


class _NoDatabase:
    async def execute(self, query: str, *args: object) -> str:
        raise RuntimeError("this context has no database")

    async def fetch(self, query: str, *args: object) -> Sequence[Row]:
        raise RuntimeError("this context has no database")

    async def fetchrow(self, query: str, *args: object) -> Row | None:
        raise RuntimeError("this context has no database")

    async def fetchval(self, query: str, *args: object) -> object:
        raise RuntimeError("this context has no database")


async def _no_progress(_: JsonInput) -> None:
    return None


@dataclass(slots=True)
class JobContext:
    """Passed to every handler.

    `http` fetches pages (see `HttpClient`), `db` reaches PostgreSQL, `site` is the job's site policy (None for a
    job without a site), `results` stores pages (`save_result` is the short form), `log` is a logger bound to the
    job, and `progress(data)` records how far the job got (its `progress` field).
    """

    job: JobInfo
    log: logging.LoggerAdapter[logging.Logger]
    http: HttpClient = field(default_factory=_NoHttp)
    db: Database = field(default_factory=_NoDatabase)
    report: Callable[[JsonInput], Awaitable[None]] = _no_progress
    extras: dict[str, object] = field(default_factory=dict)
    site: JobSite | None = None
    results: ResultStore | None = None
    children: ChildJobs = field(default_factory=_NoChildren)

    async def progress(self, data: JsonInput) -> None:
        """Record progress (e.g. pages done); visible as the job's `progress` field."""
        await self.report(data)

    async def submit(
        self,
        kind: str,
        payload: JsonObjectInput | None = None,
        *,
        key: str | None = None,
        queue: str | None = None,
        priority: int | None = None,
        max_attempts: int | None = None,
        timeout_s: float | None = None,
        delay_s: float | None = None,
        site: str | None = None,
    ) -> int:
        """Submit a child job (its `parent_id` is this job); returns its id.

        Children pass the checks of an API submission (known kind, payload schema, queue, limits; a
        `maintenance.*` kind only from a `maintenance.*` parent) and raise `PermanentError` when they fail them.
        The rule that keeps a retried or re-delivered parent from creating its children twice: a child is keyed
        by `key`, or else by its position among the children this attempt submitted (`#0`, `#1`, ...); a key the
        parent used before gives back the existing child. A handler whose children differ between attempts (or
        come in another order) should give keys. Jobs that wait for this one wait for its children too.
        """
        job = ChildJob(kind, payload, key, queue, priority, max_attempts, timeout_s, delay_s, site)
        return (await self.children.submit([job]))[0]

    async def submit_many(self, jobs: Sequence[ChildJob]) -> list[int]:
        """Submit several child jobs in one transaction (see `submit`); their ids, in order."""
        return await self.children.submit(jobs) if jobs else []

    async def save_result(
        self, response: HttpResponse, data: JsonInput = None, *, keep_body: bool = True
    ) -> StoredResult:
        """Store a fetched page (and what was extracted from it) as a result of this job.

        `unchanged` in the answer: the URL's previous result had the same content.
        """
        if self.results is None:
            raise RuntimeError("this context has no result store")
        return await self.results.save(response, data, keep_body=keep_body)


# LogRecord's own attributes: an `extra` key among them would make logging raise, so it is renamed `extra_<key>`
_RECORD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JobLogger(logging.LoggerAdapter[logging.Logger]):
    """A job's logger: each record carries the job's kind and site and keeps the fields the handler passes in
    `extra` (the stdlib adapter drops them); the worker's JSON lines add job_id, attempt and request_id."""

    def process(self, msg: object, kwargs: MutableMapping[str, Any]) -> tuple[object, MutableMapping[str, Any]]:
        given = kwargs.get("extra") or {}
        fields = {f"extra_{key}" if key in _RECORD_ATTRIBUTES else key: value for key, value in given.items()}
        kwargs["extra"] = {**(self.extra or {}), **fields}
        return msg, kwargs


def job_logger(job: JobInfo) -> JobLogger:
    """The logger a job's context carries: `gleaner.job.<kind>`, with the kind and site in each record."""
    return JobLogger(_kind_logger(job.kind), {"kind": job.kind, "site": job.site})


@functools.lru_cache(maxsize=1024)
def _kind_logger(kind: str) -> logging.Logger:
    """`logging.getLogger` takes the logging module's lock on every call: once per kind is enough (and bounded)."""
    return logging.getLogger(f"gleaner.job.{kind}")
