"""Run a handler without services: fake HTTP answers, captured results and progress, no broker or database.

    http = FakeHttp({"https://board.example/jobs": "<h2 class=job-title>Welder</h2>"})
    run = await run_job(registry, "jobboard.scrape", {"start_url": "https://board.example/jobs"}, http=http)
    assert run.outcome == "succeeded" and run.results[0].data == {"titles": ["Welder"]}

The payload is checked against the kind's schema first, as the gateway does (`InvalidPayload` names the members);
the handler's return value or error becomes the outcome the worker would record (`succeeded`, `partial`,
`retrying`, `failed`). `run_job_sync` does the same from synchronous code.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import orjson

from gleaner.handlers import HandlerError, Partial, PermanentError, Registry, RetryableError
from gleaner.job_context import (
    ChildJob,
    Database,
    HttpResponse,
    JobContext,
    JobInfo,
    JobSite,
    StoredResult,
    job_logger,
)
from gleaner.json_types import Json, JsonInput, JsonObjectInput
from gleaner.shared.payload_schemas import SchemaChecks
from gleaner.shared.soft_limit import SoftLimited, with_soft_limit
from gleaner.shared.urlguard import Policy

__all__ = [
    "CapturedChildren",
    "CapturedResults",
    "FakeHttp",
    "FakeResponse",
    "InvalidPayload",
    "Outcome",
    "Run",
    "SavedResult",
    "run_job",
    "run_job_sync",
]

Outcome = Literal["succeeded", "partial", "retrying", "failed"]


class InvalidPayload(ValueError):
    """The payload fails the kind's schema: the gateway would answer 422 naming these members."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"payload.{path}: {message}" if path else message for path, message in problems))


@dataclass(frozen=True, slots=True)
class FakeResponse:
    """A canned answer, shaped like the worker's responses."""

    url: str
    status: int = 200
    content_type: str = "text/html"
    body: bytes = b""
    requested_url: str = ""
    etag: str | None = None
    last_modified: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class FakeHttp:
    """`ctx.http` answering from a table of URL → body (or FakeResponse); `requested` lists the URLs asked for.

    Like the worker's client, a 429 or 5xx raises RetryableError and another 4xx (or a URL not in the table,
    a 404) raises PermanentError.
    """

    def __init__(self, pages: Mapping[str, str | bytes | FakeResponse] | None = None) -> None:
        self.pages: dict[str, FakeResponse] = {}
        self.requested: list[str] = []
        for url, page in (pages or {}).items():
            self.add(url, page)

    def add(self, url: str, page: str | bytes | FakeResponse, *, status: int = 200) -> None:
        if isinstance(page, FakeResponse):
            self.pages[url] = page
            return
        body = page.encode() if isinstance(page, str) else page
        self.pages[url] = FakeResponse(url, status, body=body, requested_url=url)

    async def get(self, url: str, *, timeout_s: float = 30.0, headers: Mapping[str, str] | None = None) -> HttpResponse:
        self.requested.append(url)
        response = self.pages.get(url) or FakeResponse(url, 404, requested_url=url)
        if response.status == 429 or response.status >= 500:
            raise RetryableError(f"HTTP {response.status} from {url}", error_class=f"http_{response.status}")
        if response.status >= 400:
            raise PermanentError(f"HTTP {response.status} from {url}", error_class=f"http_{response.status}")
        return response


@dataclass(frozen=True, slots=True)
class SavedResult:
    """A page the handler stored, with what it extracted."""

    url: str
    status: int
    data: JsonInput
    keep_body: bool
    unchanged: bool


class CapturedResults:
    """`ctx.results` keeping what the handler stored in `saved` (ids count from 1)."""

    def __init__(self) -> None:
        self.saved: list[SavedResult] = []
        self.blocked: list[str] = []
        self._hashes: dict[str, str] = {}

    async def save(
        self, response: HttpResponse, data: JsonInput = None, *, keep_body: bool = True, url: str | None = None
    ) -> StoredResult:
        requested = url or response.requested_url or response.url
        unchanged = self._hashes.get(requested) == response.sha256
        self._hashes[requested] = response.sha256
        self.saved.append(SavedResult(requested, response.status, data, keep_body, unchanged))
        return StoredResult(len(self.saved), unchanged)

    async def done_urls(self) -> dict[str, bool]:
        return {saved.url: False for saved in self.saved} | dict.fromkeys(self.blocked, True)

    async def conditional_headers(self, url: str) -> dict[str, str]:
        return {}

    async def save_blocked(self, url: str) -> int:
        self.blocked.append(url)
        return len(self.saved) + len(self.blocked)


class CapturedChildren:
    """`ctx.submit` keeping the child jobs in `submitted`; ids count from 2 (the job itself is 1). The key rule is
    the worker's: a child's `key`, else its position among the keyless children (`#0`, `#1`, ...); a key used
    before gives back its id and records nothing, as a retried parent's children are not created twice."""

    def __init__(self) -> None:
        self.submitted: list[ChildJob] = []
        self._ids: dict[str, int] = {}
        self._positions = 0

    async def submit(self, jobs: Sequence[ChildJob]) -> list[int]:
        ids = []
        for job in jobs:
            key = job.key
            if key is None:
                key, self._positions = f"#{self._positions}", self._positions + 1
            if key not in self._ids:
                self._ids[key] = len(self._ids) + 2
                self.submitted.append(job)
            ids.append(self._ids[key])
        return ids


@dataclass(slots=True)
class Run:
    """How one attempt went: the outcome the worker would record, the result or error, what was reported."""

    outcome: Outcome
    result: JsonInput = None
    error: BaseException | None = None
    progress: list[JsonInput] = field(default_factory=list)
    results: list[SavedResult] = field(default_factory=list)
    requested: list[str] = field(default_factory=list)
    children: list[ChildJob] = field(default_factory=list)


async def run_job(
    registry: Registry,
    kind: str,
    payload: JsonObjectInput | None = None,
    *,
    http: FakeHttp | None = None,
    db: Database | None = None,
    site: JobSite | None = None,
    attempt: int = 1,
    max_attempts: int = 3,
    timeout_s: float = 60.0,
    soft_timeout_s: float | None = None,
) -> Run:
    """Run one attempt of a `kind` job of `registry` with `payload`, in this event loop.

    `soft_timeout_s` (else the kind's own) raises `SoftTimeLimitExceeded` in the handler as the worker does.
    """
    spec = registry.get(kind)
    body = dict(payload or {})
    if spec.schema is not None:
        problems = SchemaChecks(Policy()).check_of(spec.schema)(body)
        if problems:
            raise InvalidPayload(problems)
    job = JobInfo(
        1, kind, spec.queue or "default", attempt, max_attempts, _plain(body), site.name if site else None, timeout_s
    )
    job = with_soft_limit(dataclasses.replace(job, soft_timeout_s=soft_timeout_s), spec.soft_timeout_s)
    fake_http = http or FakeHttp()
    results = CapturedResults()
    progress: list[JsonInput] = []

    async def report(data: JsonInput) -> None:
        progress.append(data)

    children = CapturedChildren()
    ctx = JobContext(
        job=job, log=job_logger(job), http=fake_http, report=report, site=site, results=results, children=children
    )
    if db is not None:
        ctx.db = db
    run = Run(
        "succeeded",
        progress=progress,
        results=results.saved,
        requested=fake_http.requested,
        children=children.submitted,
    )
    try:
        running = spec.handler(ctx)
        limited = running if job.soft_timeout_s is None else SoftLimited(running, job.soft_timeout_s)
        value = await asyncio.wait_for(limited, timeout_s)
    except (HandlerError, Exception) as exc:  # noqa: BLE001 - any error is an outcome, as in the worker
        run.error = exc
        retryable = not isinstance(exc, HandlerError) or exc.retryable
        run.outcome = "retrying" if retryable and attempt < max_attempts else "failed"
        return run
    if isinstance(value, Partial):
        run.outcome, run.result = "partial", value.result
    else:
        run.result = value
    return run


def run_job_sync(
    registry: Registry,
    kind: str,
    payload: JsonObjectInput | None = None,
    *,
    http: FakeHttp | None = None,
    attempt: int = 1,
    max_attempts: int = 3,
) -> Run:
    """`run_job` from synchronous code (a new event loop)."""
    return asyncio.run(run_job(registry, kind, payload, http=http, attempt=attempt, max_attempts=max_attempts))


def _plain(payload: Mapping[str, JsonInput]) -> dict[str, Json]:
    """The payload as the worker hands it over: decoded JSON (lists and dicts)."""
    decoded: Json = orjson.loads(orjson.dumps(payload))
    return decoded if isinstance(decoded, dict) else {}
