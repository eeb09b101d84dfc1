"""`gleaner.Client`: the synchronous Python client of the gateway's API (`AsyncClient` has the same methods).

Submissions carry an `Idempotency-Key` (generated per call unless given) and are sent again after a timeout,
a dropped connection or a 503 with the same key, so a retry never makes a second job; `gleaner.retries`
states which other requests are repeated. Every answer is a typed, frozen object whose `raw` is the JSON.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from types import TracebackType
from typing import Literal, TypeVar, Unpack

import httpx

from gleaner import _calls, _event_stream, _transport
from gleaner.errors import WaitTimeout
from gleaner.inputs import (
    EventFilter,
    JobChange,
    JobFilters,
    JobOptions,
    ScheduleDefinition,
    ScheduleFields,
    SitePolicy,
    Submission,
)
from gleaner.json_types import Json, JsonInput, JsonObjectInput
from gleaner.models import (
    ApiKey,
    Attempt,
    DeadLetter,
    Event,
    Health,
    Job,
    Kind,
    Page,
    Queue,
    Report,
    Schedule,
    SchedulePreview,
    SchedulerConfig,
    SchedulerStatus,
    ScrapeResult,
    Site,
    Stats,
    Webhook,
    Workers,
)
from gleaner.retries import RetryPolicy

__all__ = ["Client", "DeadLetters", "Jobs", "Queues", "Scheduler", "Schedules", "Sites"]

T = TypeVar("T")
DEFAULT_TIMEOUT_S = 30.0
# above the gateway's keep-alive period (GLEANER_EVENTS_KEEPALIVE_S, 15 s by default)
DEFAULT_STREAM_READ_S = 60.0


class Client:
    """The gateway's API, synchronously: `with Client() as client: client.jobs.submit("noop", {"n": 1})`.

    `url` (e.g. `http://127.0.0.1:8080/api/v1`) and `token` default to GLEANER_API_URL and GLEANER_API_TOKEN
    (else GLEANER_ADMIN_TOKEN), as for the `gleaner` operator commands. `timeout_s` bounds each request (a
    `wait` adds the time the gateway holds it); `retry` sets how often and how long it tries again.

    Retries (the rule in `gleaner.retries`): a request the gateway did not act on (connection refused, 429)
    is sent again whatever it is; after a timeout, a dropped connection or a 502/503/504 only reads,
    submissions (same `Idempotency-Key`) and writes that set a state (cancel, pause, resume, resolve, PUT,
    PATCH, DELETE) are: never retry, requeue, trigger, schedule create or scheduler run.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._settings = _transport.Settings.resolve(url, token)
        self._http = httpx.Client(headers=self._settings.headers(), transport=transport)
        self._timeout_s = timeout_s
        self._retry = retry or RetryPolicy()
        self.jobs = Jobs(self)
        self.dead_letters = DeadLetters(self)
        self.schedules = Schedules(self)
        self.scheduler = Scheduler(self)
        self.sites = Sites(self)
        self.queues = Queues(self)

    @property
    def url(self) -> str:
        return self._settings.url

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def workers(self) -> Workers:
        """Workers alive or seen within the hour, with the totals of the alive ones."""
        return self._run(_calls.workers())

    def kinds(self) -> tuple[Kind, ...]:
        """The job kinds workers registered (schema, queues, alive workers), by name."""
        return self._run(_calls.list_kinds())

    def kind(self, name: str) -> Kind:
        """One registered kind; NotFound when no worker ever registered it."""
        return self._run(_calls.get_kind(name))

    def report(self, *, hours: float | None = None) -> Report:
        """Per site and kind over the last `hours` (default 24): outcomes, success rate, p50/p95 durations, top
        error classes and dead letters."""
        return self._run(_calls.report(hours))

    def stats(
        self,
        *,
        window_s: float | None = None,
        since: datetime | str | None = None,
        site: str | None = None,
        kind: str | None = None,
    ) -> Stats:
        """Jobs by site and kind over the last `window_s` (default 3600) or `since` an RFC 3339 instant."""
        return self._run(_calls.stats({"window_s": window_s, "since": since, "site": site, "kind": kind}))

    def health(self) -> Health:
        """The gateway's PostgreSQL and RabbitMQ checks; a degraded gateway is an answer, not an error."""
        return self._run(_calls.health())

    def api_keys(self) -> tuple[ApiKey, ...]:
        """Every API key, oldest first, with its scopes and when it was revoked (needs `admin`)."""
        return self._run(_calls.api_keys())

    def revoke_api_key(self, key_id: int) -> ApiKey:
        """Revoke a key: every gateway refuses it within a second; it stays listed with its `revoked_at`."""
        return self._run(_calls.revoke_api_key(key_id))

    def webhooks(self) -> tuple[Webhook, ...]:
        """Every webhook, oldest first: URL, filter, description (never the secret; needs `admin`)."""
        return self._run(_calls.webhooks())

    def create_webhook(
        self, url: str, secret: str, *, filter: EventFilter | None = None, description: str | None = None
    ) -> Webhook:
        """POST the events `filter` selects (all when None) to `url`, signed with `secret` (16 to 200 characters):
        see the README's receiver for the check. Not repeated after an unknown outcome (it would make two)."""
        return self._run(_calls.create_webhook(url, secret, filter, description))

    def delete_webhook(self, webhook_id: int) -> None:
        self._run(_calls.delete_webhook(webhook_id))

    def events(
        self,
        *,
        last_event_id: str | None = None,
        duration_s: float | None = None,
        read_timeout_s: float | None = DEFAULT_STREAM_READ_S,
        **filters: Unpack[EventFilter],
    ) -> Iterator[Event]:
        """The live job and schedule events (`GET /events`) the filters select, as they happen.

        A stream the gateway ends (a client that fell behind, a gateway stopping), a dropped connection or
        `read_timeout_s` without even a keep-alive is opened again with `Last-Event-ID`, so the gateway replays
        what it still holds; when it cannot, a `resync` event comes first: catch up with
        `jobs.list(updated_after=<the at of the last event seen>)`. With `duration_s` the iteration ends when the
        gateway ends the stream after that long. Errors are raised like those of any request.
        """
        stream = _event_stream.EventStream(filters, last_event_id, duration_s)
        attempt = 1
        while True:
            request = _transport.stream_request(self._http, self._settings, stream, self._timeout_s, read_timeout_s)
            result: _transport.Result | None = None
            try:
                response = self._http.send(request, stream=True)
            except httpx.TransportError as error:
                result = error
            else:
                try:
                    if response.status_code != 200:
                        response.read()
                        result = response
                    else:
                        attempt = 1
                        for line in response.iter_lines():
                            event = stream.feed(line)
                            if event is not None:
                                yield event
                except httpx.TransportError as error:
                    result = error
                finally:
                    response.close()
            delay = _transport.reconnect_delay(self._retry, stream, attempt, result, self._settings)
            if delay is None:
                return
            time.sleep(delay)
            if result is not None:
                attempt += 1

    def request(
        self, method: str, path: str, *, params: Mapping[str, JsonInput] | None = None, json: JsonInput = None
    ) -> Json:
        """Any API request (`path` under the API root, e.g. `/jobs`); the answer's JSON, errors raised."""
        return self._run(_calls.raw(method, path, params or {}, json))

    def _run(self, call: _calls.Call[T]) -> T:
        attempt = 1
        while True:
            result = self._send(call)
            delay = _transport.retry_delay(self._retry, call, attempt, result)
            if delay is None:
                return _transport.finish(call, result, self._settings)
            time.sleep(delay)
            attempt += 1

    def _send(self, call: _calls.Call[T]) -> _transport.Result:
        request = _transport.build(self._http, self._settings, call, self._timeout_s)
        try:
            return self._http.send(request)
        except httpx.TransportError as error:
            return error

    def _iterate(self, page_of: Callable[[str | None], _calls.Call[Page[T]]]) -> Iterator[T]:
        token: str | None = None
        while True:
            page = self._run(page_of(token))
            yield from page.items
            token = _calls.next_token(page, token)
            if token is None:
                return


class Jobs:
    """`client.jobs`: submit, watch, list, cancel and retry jobs."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def submit(
        self,
        kind: str,
        payload: JsonObjectInput | None = None,
        *,
        idempotency_key: str | None = None,
        **options: Unpack[JobOptions],
    ) -> Job:
        """Submit one job; safe to retry: the same `Idempotency-Key` goes with every attempt of this call."""
        submission: Submission = {"kind": kind, "payload": payload or {}, **options}
        return self._client._run(_calls.submit(submission, idempotency_key))

    def submit_many(
        self, submissions: Iterable[Submission], *, idempotency_key: str | None = None, then: Submission | None = None
    ) -> tuple[Job, ...]:
        """Submit up to 1,000 jobs in one request, all or nothing (`POST /jobs/batch`), safe to retry. With `then`,
        one more job that waits for all of them (and their children) comes last in the answer."""
        return self._client._run(_calls.submit_many(tuple(submissions), idempotency_key, then))

    def get(self, job_id: int) -> Job:
        return self._client._run(_calls.get_job(job_id))

    def wait(self, job_id: int, timeout_s: float | None = None) -> Job:
        """The job once it is final, held by the gateway (`?wait`) a minute at a time; `WaitTimeout` (with the
        job as last seen) if `timeout_s` passes first."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            hold_s = _calls.hold_for(deadline, time.monotonic())
            job = self._client._run(_calls.get_job(job_id, hold_s))
            if job.is_final:
                return job
            if hold_s is None:
                raise WaitTimeout(job, timeout_s or 0.0)

    def list(self, *, page_size: int | None = None, **filters: Unpack[JobFilters]) -> Iterator[Job]:
        """Every job matching the filters, newest first, fetched a page at a time as you iterate."""
        return self._client._iterate(lambda token: _calls.list_jobs(filters, page_size, token))

    def page(
        self, page_token: str | None = None, *, page_size: int | None = None, **filters: Unpack[JobFilters]
    ) -> Page[Job]:
        """One page of the list; pass its `next_page_token` (with the same filters) for the next."""
        return self._client._run(_calls.list_jobs(filters, page_size, page_token))

    def cancel(self, job_id: int, *, tree: bool = False) -> Job:
        """Cancel a waiting job at once, a running one cooperatively (the job comes back `cancel_requested`).

        `tree=True` also cancels its waiting descendants and the jobs that depend on it (even if it finished)."""
        return self._client._run(_calls.cancel_job(job_id, tree))

    def children(self, job_id: int, *, page_size: int | None = None) -> Iterator[Job]:
        """The jobs the job's handler submitted (ctx.submit), newest first."""
        return self._client._iterate(lambda token: _calls.related_jobs(job_id, "children", page_size, token))

    def dependencies(self, job_id: int, *, page_size: int | None = None) -> Iterator[Job]:
        """The jobs the job waits (or waited) for, newest first."""
        return self._client._iterate(lambda token: _calls.related_jobs(job_id, "dependencies", page_size, token))

    def change(self, job_id: int, **change: Unpack[JobChange]) -> Job:
        """A waiting job's new priority and/or run_at (or delay_s); `Conflict` once it runs or finished."""
        return self._client._run(_calls.change_job(job_id, change))

    def retry(self, job_id: int) -> Job:
        """Run a finished job again with a fresh attempt budget."""
        return self._client._run(_calls.retry_job(job_id))

    def attempts(self, job_id: int) -> tuple[Attempt, ...]:
        return self._client._run(_calls.attempts(job_id))

    def results(self, job_id: int, *, page_size: int | None = None) -> Iterator[ScrapeResult]:
        """The pages the job stored, oldest first, fetched a page at a time as you iterate."""
        return self._client._iterate(lambda token: _calls.results(job_id, page_size, token))


class DeadLetters:
    """`client.dead_letters`: failed jobs (`job-<id>`) and poison messages (`message-<id>`)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def list(
        self,
        *,
        kind: str | None = None,
        queue: str | None = None,
        type: Literal["job", "message"] | None = None,
        resolved: bool = False,
        limit: int | None = None,
    ) -> tuple[DeadLetter, ...]:
        """Newest first; `resolved=True` lists the resolved ones instead."""
        filters = {"kind": kind, "queue": queue, "type": type, "resolved": resolved or None, "limit": limit}
        return self._client._run(_calls.dead_letters(filters))

    def requeue(self, letter_id: str) -> Job:
        return self._client._run(_calls.requeue_letter(letter_id))

    def requeue_many(
        self,
        *,
        kind: str | None = None,
        queue: str | None = None,
        error_class: str | None = None,
        limit: int | None = None,
    ) -> int:
        """Requeue the failed jobs matching the filters; how many were requeued."""
        return self._client._run(
            _calls.requeue_letters({"kind": kind, "queue": queue, "error_class": error_class, "limit": limit})
        )

    def resolve(self, letter_id: str, note: str | None = None) -> None:
        """Take it off the list, kept with its history and the note."""
        self._client._run(_calls.resolve_letter(letter_id, note))

    def delete(self, letter_id: str) -> None:
        self._client._run(_calls.delete_letter(letter_id))


class Schedules:
    """`client.schedules`: create, change, pause and trigger schedules."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def list(self, *, page_size: int | None = None) -> Iterator[Schedule]:
        return self._client._iterate(lambda token: _calls.list_schedules(page_size, token))

    def get(self, schedule_id: int | str) -> Schedule:
        return self._client._run(_calls.get_schedule(schedule_id))

    def create(self, **definition: Unpack[ScheduleDefinition]) -> Schedule:
        """A new schedule (`ValidationError` naming each bad field, `Conflict` for a taken name)."""
        return self._client._run(_calls.create_schedule(definition))

    def replace(self, schedule_id: int | str, **definition: Unpack[ScheduleDefinition]) -> Schedule:
        return self._client._run(_calls.replace_schedule(schedule_id, definition))

    def update(self, schedule_id: int | str, **changes: Unpack[ScheduleFields]) -> Schedule:
        """Change some fields (`PATCH`); another timing field than the current one replaces it."""
        return self._client._run(_calls.update_schedule(schedule_id, changes))

    def delete(self, schedule_id: int | str) -> None:
        self._client._run(_calls.delete_schedule(schedule_id))

    def pause(self, schedule_id: int | str) -> Schedule:
        return self._client._run(_calls.schedule_action(schedule_id, "pause"))

    def resume(self, schedule_id: int | str) -> Schedule:
        return self._client._run(_calls.schedule_action(schedule_id, "resume"))

    def trigger(self, schedule_id: int | str) -> Job:
        """One job now, whatever the pauses (the first one for a fan-out schedule)."""
        return self._client._run(_calls.trigger_schedule(schedule_id))

    def preview(self, schedule_id: int | str, count: int | None = None) -> SchedulePreview:
        return self._client._run(_calls.preview_schedule(schedule_id, count))


class Scheduler:
    """`client.scheduler`: the scheduler's status, global pause and resume, and a tick now."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def status(self) -> SchedulerStatus:
        return self._client._run(_calls.scheduler_status())

    def config(self) -> SchedulerConfig:
        """The effective settings: intervals, grace, misfire and overlap defaults, retention, cron timezone."""
        return self._client._run(_calls.scheduler_config())

    def pause(self) -> SchedulerStatus:
        return self._client._run(_calls.scheduler_action("pause"))

    def resume(self) -> SchedulerStatus:
        return self._client._run(_calls.scheduler_action("resume"))

    def run(self) -> SchedulerStatus:
        return self._client._run(_calls.scheduler_action("run"))


class Sites:
    """`client.sites`: site policies and their live rate-limit state."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def list(self) -> tuple[Site, ...]:
        return self._client._run(_calls.list_sites())

    def get(self, name: str) -> Site:
        return self._client._run(_calls.get_site(name))

    def put(self, name: str, **policy: Unpack[SitePolicy]) -> Site:
        """Create or replace a site's policy; left-out fields take their defaults."""
        return self._client._run(_calls.put_site(name, policy))


class Queues:
    """`client.queues`: depths and counts of every queue; pause and resume one."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def list(self) -> tuple[Queue, ...]:
        return self._client._run(_calls.list_queues())

    def pause(self, name: str, reason: str | None = None) -> Queue:
        return self._client._run(_calls.queue_action(name, "pause", reason))

    def resume(self, name: str) -> Queue:
        return self._client._run(_calls.queue_action(name, "resume"))
