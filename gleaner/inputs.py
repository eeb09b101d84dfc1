"""What the client sends: typed dictionaries of the API's request bodies and filters (checked by mypy)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal, Required, TypedDict

from gleaner.json_types import JsonInput, JsonObjectInput

__all__ = [
    "EventFilter",
    "FanOut",
    "JobChange",
    "JobFilters",
    "JobOptions",
    "JobTemplate",
    "Priority",
    "RespectfulHours",
    "ScheduleDefinition",
    "ScheduleFields",
    "SitePolicy",
    "Submission",
]


# a priority: 0-9 (9 runs first) or a name: `high` (9), `normal` (5), `low` (0, the default)
Priority = int | Literal["high", "normal", "low"]


class JobOptions(TypedDict, total=False):
    """The optional fields of a submission (`POST /jobs`); the server fills in what is left out."""

    queue: str
    priority: Priority
    max_attempts: int
    timeout_s: float
    soft_timeout_s: float  # below timeout_s: gleaner.SoftTimeLimitExceeded is raised in the handler then
    retry_base_s: float
    retry_cap_s: float
    run_at: datetime | str  # an aware datetime or RFC 3339 text; or delay_s
    delay_s: float
    site: str
    dedupe_key: str
    depends_on: Sequence[int]  # existing job ids: the job waits (`blocked`) until they end
    on_dependency_failure: Literal["cancel", "run"]
    allow_partial: bool  # a dependency ending `partial` counts as success


class JobChange(TypedDict, total=False):
    """A waiting job's new priority and/or due time (`PATCH /jobs/{id}`): at least one of them."""

    priority: Priority
    run_at: datetime | str
    delay_s: float


class Submission(JobOptions, total=False):
    """One job of `submit_many`: `kind` and `payload` beside the options."""

    kind: Required[str]
    payload: JsonObjectInput


class JobFilters(TypedDict, total=False):
    """The filters of `GET /jobs`: every one narrows the list; `payload` matches jobs whose payload contains it."""

    state: str
    kind: str
    queue: str
    site: str
    schedule_id: int
    parent_id: int
    created_after: datetime | str
    created_before: datetime | str
    updated_after: datetime | str
    payload: JsonObjectInput


class EventFilter(TypedDict, total=False):
    """Which events a stream or a webhook wants: every field given must match, each accepts any of its values.
    `type` and `kind` take a prefix ending in `*` (`job.*`, `boards.*`)."""

    type: Sequence[str]
    kind: Sequence[str]
    queue: Sequence[str]
    state: Sequence[str]
    site: Sequence[str]
    schedule_id: Sequence[int]
    job_id: Sequence[int]


class FanOut(TypedDict):
    """A schedule firing one job per value, each with `payload[key]` set to its value."""

    key: str
    values: Sequence[JsonInput]


class JobTemplate(TypedDict, total=False):
    """The job a schedule creates: a submission without `run_at`, `delay_s` and `dedupe_key`."""

    kind: Required[str]
    payload: JsonObjectInput
    queue: str
    priority: Priority
    max_attempts: int
    timeout_s: float
    soft_timeout_s: float
    retry_base_s: float
    retry_cap_s: float
    site: str
    fan_out: FanOut
    then: JobTemplate  # one more job per fire, after the fire's jobs (without fan_out and then of its own)


class _Timing(TypedDict, total=False):
    type: Literal["interval", "cron", "once"]  # implied by the timing field given
    interval_s: float
    jitter: float
    cron: str
    timezone: str
    at: datetime | str
    misfire: Literal["fire_once", "skip"]
    overlap: Literal["allow", "skip"]
    misfire_grace_s: float
    enabled: bool
    description: str


class ScheduleFields(_Timing, total=False):
    """Some of a schedule's fields, as `PATCH /schedules/{id}` takes them; giving another timing than the
    current one replaces it."""

    name: str
    job: JobTemplate


class ScheduleDefinition(_Timing, total=False):
    """A whole schedule, as `POST /schedules` and `PUT /schedules/{id}` take it: a name, one timing
    (`interval_s` with `jitter`, `cron` with `timezone`, or `at`), the job it creates and the policies."""

    name: Required[str]
    job: Required[JobTemplate]


class RespectfulHours(TypedDict):
    """A daily local window in which a site is asked `factor` times more slowly."""

    timezone: str
    start: str  # HH:MM
    end: str
    factor: float


class SitePolicy(TypedDict, total=False):
    """A site's politeness policy, as `PUT /sites/{name}` takes it; left-out fields take their defaults."""

    requests_per_hour: float
    burst: int
    min_delay_s: float
    pause_min_s: float
    pause_max_s: float
    respectful_hours: RespectfulHours | None
    max_concurrency: int | None
    partial_error_ratio: float
    timeout_s: float
    max_bytes: int
    user_agent: str | None
    robots: Literal["obey", "ignore"]
    adaptive: bool
    proxies: list[str]
