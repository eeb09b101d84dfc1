"""Every API request as a `Call` (method, path, query, body, headers, whether it may be repeated, how its
answer is read) and the reading of answers: the one implementation both clients share. Pure, no I/O."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import orjson

from gleaner import _decode
from gleaner.errors import UnexpectedResponse, api_error
from gleaner.inputs import (
    EventFilter,
    JobChange,
    JobFilters,
    ScheduleDefinition,
    ScheduleFields,
    SitePolicy,
    Submission,
)
from gleaner.json_types import Json, JsonInput
from gleaner.models import (
    ApiKey,
    Attempt,
    DeadLetter,
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

T = TypeVar("T")
Params = tuple[tuple[str, str], ...]
IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_HOLD_S = 60.0  # the longest ?wait the gateway takes


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One request and how to read its answer; the same Call is sent again on a retry (same key, same bytes)."""

    method: str
    path: str  # under the API root (`/api/v1`), or under the server root when `from_root`
    read: Callable[[Json], T]
    params: Params = ()
    body: bytes | None = None
    idempotency_key: str | None = None
    repeatable: bool = False  # a repeat after an unknown outcome cannot act twice (see gleaner.retries)
    hold_s: float = 0.0  # the gateway may hold the request this long (?wait): added to the read timeout
    answers: frozenset[int] = frozenset()  # error statuses whose body is the answer (/health's 503)
    from_root: bool = False

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"} if self.body is not None else {}
        if self.idempotency_key is not None:
            headers[IDEMPOTENCY_HEADER] = self.idempotency_key
        return headers


def answer(call: Call[T], status: int, content: bytes, retry_after_s: float | None = None) -> T:
    """The call's result from the gateway's answer, or the ApiError the answer is."""
    data = _json(content)
    if status >= 400 and status not in call.answers:
        raise api_error(status, data, retry_after_s)
    return call.read(data)


def _json(content: bytes) -> Json:
    if not content:
        return None
    try:
        data: Json = orjson.loads(content)
    except orjson.JSONDecodeError:
        raise UnexpectedResponse(f"the answer is not JSON: {content[:200]!r}") from None
    return data


def encode(body: JsonInput | Mapping[str, Any]) -> bytes:
    """JSON bytes; mappings and sequences of any kind, and datetimes (RFC 3339) are accepted."""
    return orjson.dumps(body, default=_plain)


def _plain(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def query(values: Mapping[str, object]) -> Params:
    """Query parameters: None left out, booleans as true/false, datetimes as RFC 3339, objects as JSON."""
    return tuple((name, _param(value)) for name, value in values.items() if value is not None)


def _param(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return encode(value).decode()
    return str(value)


def segment(value: str | int) -> str:
    return quote(str(value), safe="")


def new_key() -> str:
    """A fresh Idempotency-Key: one per submission call, kept across its retries."""
    return str(uuid.uuid4())


def hold_for(deadline: float | None, now: float) -> float | None:
    """How long the next `?wait` may hold: up to the deadline (None: no deadline), None once it passed."""
    if deadline is None:
        return MAX_HOLD_S
    left = deadline - now
    return min(MAX_HOLD_S, left) if left >= 0.001 else None


def next_token(page: Page[T], previous: str | None) -> str | None:
    """The token of the page after `page`; a server handing back the same token again would loop forever."""
    if page.next_page_token is not None and page.next_page_token == previous:
        raise UnexpectedResponse(f"the server returned page token {previous!r} twice")
    return page.next_page_token


# readers of answers


def one(cls: type[T]) -> Callable[[Json], T]:
    return lambda data: _decode.decode(cls, data)


def many(cls: type[T], name: str) -> Callable[[Json], tuple[T, ...]]:
    return lambda data: _decode.decode_all(cls, _decode.member(data, name), name)


def paged(cls: type[T], name: str, token: str = "next_page_token") -> Callable[[Json], Page[T]]:
    def read(data: Json) -> Page[T]:
        items = _decode.decode_all(cls, _decode.member(data, name), name)
        following = _decode.member(data, token)
        assert isinstance(data, dict)  # member() checked it
        return Page(items, None if following is None else str(following), raw=data)

    return read


def nothing(_data: Json) -> None:
    return None


def count(name: str) -> Callable[[Json], int]:
    def read(data: Json) -> int:
        value = _decode.member(data, name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise UnexpectedResponse(f"response.{name}: expected an integer")
        return value

    return read


def _get(path: str, read: Callable[[Json], T], params: Params = (), hold_s: float = 0.0) -> Call[T]:
    return Call("GET", path, read, params, repeatable=True, hold_s=hold_s)


def _send(method: str, path: str, read: Callable[[Json], T], body: bytes | None, *, repeatable: bool) -> Call[T]:
    return Call(method, path, read, body=body, repeatable=repeatable)


# jobs


def submit(submission: Submission, key: str | None) -> Call[Job]:
    body = encode(submission)
    return Call("POST", "/jobs", one(Job), body=body, idempotency_key=key or new_key(), repeatable=True)


def submit_many(
    submissions: tuple[Submission, ...], key: str | None, then: Submission | None = None
) -> Call[tuple[Job, ...]]:
    """A batch; with `then`, its callback job comes last in the answer."""
    body = encode({"jobs": submissions} if then is None else {"jobs": submissions, "then": then})
    jobs = many(Job, "jobs")

    def read(data: Json) -> tuple[Job, ...]:
        callback = (_decode.decode(Job, _decode.member(data, "then"), "then"),) if then is not None else ()
        return jobs(data) + callback

    return Call("POST", "/jobs/batch", read, body=body, idempotency_key=key or new_key(), repeatable=True)


def get_job(job_id: int, hold_s: float | None = None) -> Call[Job]:
    params = query({"wait": hold_s})
    return _get(f"/jobs/{segment(job_id)}", one(Job), params, hold_s or 0.0)


def list_jobs(filters: JobFilters, page_size: int | None, token: str | None) -> Call[Page[Job]]:
    params = query({**filters, "page_size": page_size, "page_token": token})
    return _get("/jobs", paged(Job, "jobs"), params)


def cancel_job(job_id: int, tree: bool = False) -> Call[Job]:
    # a repeat of a cancel that took effect answers 409 naming the state it set
    params = query({"tree": True}) if tree else ()
    return Call("POST", f"/jobs/{segment(job_id)}/cancel", one(Job), params, repeatable=True)


def related_jobs(job_id: int, name: str, page_size: int | None, token: str | None) -> Call[Page[Job]]:
    """`/jobs/{id}/children` or `/jobs/{id}/dependencies`, newest first."""
    params = query({"page_size": page_size, "page_token": token})
    return _get(f"/jobs/{segment(job_id)}/{name}", paged(Job, "jobs"), params)


def change_job(job_id: int, change: JobChange) -> Call[Job]:
    # the same change again leaves the job as the first one did
    return _send("PATCH", f"/jobs/{segment(job_id)}", one(Job), encode(change), repeatable=True)


def retry_job(job_id: int) -> Call[Job]:
    return _send("POST", f"/jobs/{segment(job_id)}/retry", one(Job), None, repeatable=False)


def attempts(job_id: int) -> Call[tuple[Attempt, ...]]:
    return _get(f"/jobs/{segment(job_id)}/attempts", many(Attempt, "attempts"))


def results(job_id: int, page_size: int | None, token: str | None) -> Call[Page[ScrapeResult]]:
    params = query({"page_size": page_size, "page_token": token})
    return _get(f"/jobs/{segment(job_id)}/results", paged(ScrapeResult, "results"), params)


# dead letters


def dead_letters(filters: Mapping[str, object]) -> Call[tuple[DeadLetter, ...]]:
    return _get("/dead-letters", many(DeadLetter, "dead_letters"), query(filters))


def requeue_letter(letter_id: str) -> Call[Job]:
    return _send("POST", f"/dead-letters/{segment(letter_id)}/requeue", one(Job), None, repeatable=False)


def requeue_letters(filters: Mapping[str, object]) -> Call[int]:
    body = encode({k: v for k, v in filters.items() if v is not None})
    return _send("POST", "/dead-letters/requeue", count("requeued"), body, repeatable=False)


def resolve_letter(letter_id: str, note: str | None) -> Call[None]:
    body = encode({"note": note} if note is not None else {})
    return _send("POST", f"/dead-letters/{segment(letter_id)}/resolve", nothing, body, repeatable=True)


def delete_letter(letter_id: str) -> Call[None]:
    return _send("DELETE", f"/dead-letters/{segment(letter_id)}", nothing, None, repeatable=True)


# schedules and the scheduler


def list_schedules(page_size: int | None, token: str | None) -> Call[Page[Schedule]]:
    params = query({"page_size": page_size, "after_id": token})
    return _get("/schedules", paged(Schedule, "schedules", token="next_after_id"), params)


def get_schedule(schedule: int | str) -> Call[Schedule]:
    return _get(f"/schedules/{segment(schedule)}", one(Schedule))


def create_schedule(definition: ScheduleDefinition) -> Call[Schedule]:
    return _send("POST", "/schedules", one(Schedule), encode(definition), repeatable=False)


def replace_schedule(schedule: int | str, definition: ScheduleDefinition) -> Call[Schedule]:
    return _send("PUT", f"/schedules/{segment(schedule)}", one(Schedule), encode(definition), repeatable=True)


def update_schedule(schedule: int | str, changes: ScheduleFields) -> Call[Schedule]:
    return _send("PATCH", f"/schedules/{segment(schedule)}", one(Schedule), encode(changes), repeatable=True)


def delete_schedule(schedule: int | str) -> Call[None]:
    return _send("DELETE", f"/schedules/{segment(schedule)}", nothing, None, repeatable=True)


def schedule_action(schedule: int | str, action: str) -> Call[Schedule]:
    """`pause` or `resume`: setting a state, so repeatable."""
    return _send("POST", f"/schedules/{segment(schedule)}/{action}", one(Schedule), None, repeatable=True)


def trigger_schedule(schedule: int | str) -> Call[Job]:
    return _send("POST", f"/schedules/{segment(schedule)}/trigger", one(Job), None, repeatable=False)


def preview_schedule(schedule: int | str, count: int | None) -> Call[SchedulePreview]:
    return _get(f"/schedules/{segment(schedule)}/preview", one(SchedulePreview), query({"count": count}))


def scheduler_status() -> Call[SchedulerStatus]:
    return _get("/scheduler", one(SchedulerStatus))


def scheduler_config() -> Call[SchedulerConfig]:
    return _get("/scheduler/config", one(SchedulerConfig))


def scheduler_action(action: str) -> Call[SchedulerStatus]:
    """`pause` and `resume` set a state; `run` fires what is due (not repeated after an unknown outcome)."""
    return _send("POST", f"/scheduler/{action}", one(SchedulerStatus), None, repeatable=action != "run")


# API keys (created by `gleaner apikey create`: the key is shown once, and only there)


def api_keys() -> Call[tuple[ApiKey, ...]]:
    return _get("/api-keys", many(ApiKey, "api_keys"))


def revoke_api_key(key_id: int) -> Call[ApiKey]:
    # revoking a revoked key keeps its first revocation: repeatable
    return _send("POST", f"/api-keys/{segment(key_id)}/revoke", one(ApiKey), None, repeatable=True)


# webhooks (`admin`): the secret is sent once, never read back


def webhooks() -> Call[tuple[Webhook, ...]]:
    return _get("/webhooks", many(Webhook, "webhooks"))


def create_webhook(url: str, secret: str, wanted: EventFilter | None, description: str | None) -> Call[Webhook]:
    body = encode({"url": url, "secret": secret, "filter": filter_lists(wanted or {}), "description": description})
    return _send("POST", "/webhooks", one(Webhook), body, repeatable=False)


def delete_webhook(webhook_id: int) -> Call[None]:
    return _send("DELETE", f"/webhooks/{segment(webhook_id)}", nothing, None, repeatable=True)


def filter_lists(wanted: EventFilter) -> dict[str, list[str | int]]:
    """An event filter as the API takes it: each field a list of values (a single string or number is one)."""
    lists: dict[str, list[str | int]] = {}
    for name, values in wanted.items():
        if isinstance(values, str | int):
            lists[name] = [values]
        elif isinstance(values, Sequence) and all(isinstance(v, str | int) for v in values):
            lists[name] = list(values)
        else:
            raise TypeError(f"the {name} filter takes a value or a list of values")
    return lists


# sites, queues, workers, stats, health


def list_sites() -> Call[tuple[Site, ...]]:
    return _get("/sites", many(Site, "sites"))


def get_site(name: str) -> Call[Site]:
    return _get(f"/sites/{segment(name)}", one(Site))


def put_site(name: str, policy: SitePolicy) -> Call[Site]:
    return _send("PUT", f"/sites/{segment(name)}", one(Site), encode(policy), repeatable=True)


def list_queues() -> Call[tuple[Queue, ...]]:
    return _get("/queues", many(Queue, "queues"))


def queue_action(name: str, action: str, reason: str | None = None) -> Call[Queue]:
    body = encode({"reason": reason}) if reason is not None else None
    return _send("POST", f"/queues/{segment(name)}/{action}", one(Queue), body, repeatable=True)


def workers() -> Call[Workers]:
    return _get("/workers", one(Workers))


def stats(filters: Mapping[str, object]) -> Call[Stats]:
    return _get("/stats", one(Stats), query(filters))


def report(hours: float | None) -> Call[Report]:
    return _get("/reports", one(Report), query({"hours": hours}))


def health() -> Call[Health]:
    return Call("GET", "/health", one(Health), repeatable=True, answers=frozenset({503}), from_root=True)


def list_kinds() -> Call[tuple[Kind, ...]]:
    return _get("/kinds", many(Kind, "kinds"))


def get_kind(name: str) -> Call[Kind]:
    return _get(f"/kinds/{segment(name)}", one(Kind))


def raw(method: str, path: str, params: Mapping[str, object], body: JsonInput) -> Call[Json]:
    """Any request, its answer as plain JSON; repeated after an unknown outcome only when it is a GET."""
    content = encode(body) if body is not None else None
    return Call(method.upper(), path, lambda data: data, query(params), content, repeatable=method.upper() == "GET")
