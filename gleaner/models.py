"""What the client returns: frozen dataclasses read from the API's JSON (`raw` keeps the JSON as sent)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from gleaner.json_types import Json, JsonObject

__all__ = [
    "FINAL_STATES",
    "ApiKey",
    "Attempt",
    "DeadLetter",
    "Durations",
    "Event",
    "Health",
    "Job",
    "LastJob",
    "Page",
    "Queue",
    "Schedule",
    "ScheduleCounters",
    "SchedulePreview",
    "SchedulerStatus",
    "ScrapeResult",
    "Site",
    "SiteCounters",
    "SiteState",
    "Stats",
    "StatsGroup",
    "Webhook",
    "WindowCounters",
    "Worker",
    "Workers",
]

T = TypeVar("T")

FINAL_STATES = frozenset({"succeeded", "partial", "failed", "cancelled"})


@dataclass(frozen=True, slots=True)
class Job:
    """A job as `GET /jobs/{id}` shows it; `state` is one of the lifecycle's states (a string, so new ones read)."""

    id: int
    kind: str
    state: str
    attempt: int = 0
    max_attempts: int = 0
    priority: int = 0
    queue: str = ""
    payload: JsonObject = field(default_factory=dict)
    result: Json = None
    error: Json = None
    progress: Json = None
    site: str | None = None
    schedule_id: int | None = None
    trigger: str | None = None
    dedupe_key: str | None = None
    cancel_requested: bool = False
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    run_at: datetime | None = None
    updated_at: datetime | None = None
    timeout_s: float | None = None
    soft_timeout_s: float | None = None
    retry_base_s: float | None = None
    retry_cap_s: float | None = None
    resolved_at: datetime | None = None
    resolution: str | None = None
    parent_id: int | None = None  # the job whose handler submitted this one
    depends_on: tuple[int, ...] = ()  # the jobs the submission named in `depends_on`
    blocked_on: int = 0  # dependencies not ended yet (state `blocked` while above 0)
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_final(self) -> bool:
        """Succeeded, partial, failed or cancelled: nothing more will happen unless it is retried."""
        return self.state in FINAL_STATES


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key as `GET /api-keys` lists it: never the key itself (only its SHA-256 is stored)."""

    id: int
    name: str
    scopes: tuple[str, ...] = ()
    created_at: datetime | None = None
    revoked_at: datetime | None = None
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One run of a job: who ran it, when, and how it ended."""

    attempt: int
    worker: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    outcome: str | None = None
    error_class: str | None = None
    error_message: str | None = None
    retry_delay_s: float | None = None
    error_traceback: str | None = None
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class ScrapeResult:
    """A page a job stored: what was fetched and what the handler extracted (`data`)."""

    id: int
    url: str
    final_url: str | None = None
    status: int | None = None
    content_type: str | None = None
    size: int | None = None
    content_hash: str | None = None
    data: Json = None
    unchanged: bool = False
    body_stored: bool = False
    blocked_by_robots: bool = False
    etag: str | None = None
    last_modified: str | None = None
    fetched_at: datetime | None = None
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing; `next_page_token` fetches the next (None on the last page)."""

    items: tuple[T, ...]
    next_page_token: str | None
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A failed job (`id` `job-<n>`, `type` job) or a poison message (`message-<n>`, `type` message)."""

    id: str
    type: str
    job_id: int | None = None
    kind: str | None = None
    queue: str | None = None
    site: str | None = None
    payload: Json = None
    error: Json = None
    attempt: int | None = None
    max_attempts: int | None = None
    finished_at: datetime | None = None
    reason: str | None = None
    detail: str | None = None
    body: str | None = None
    body_base64: str | None = None
    headers: Json = None
    created_at: datetime | None = None
    resolved_at: datetime | None = None
    resolution: str | None = None
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Queue:
    """A queue's broker counts (None when unknown) beside its PostgreSQL counts, and its pause."""

    name: str
    paused: bool = False
    paused_at: datetime | None = None
    pause_reason: str | None = None
    ready: int | None = None
    unacked: int | None = None
    consumers: int | None = None
    scheduled: int = 0
    queued: int = 0
    retrying: int = 0
    running: int = 0
    oldest_waiting_s: float | None = None
    waiting_by_priority: tuple[int, ...] = ()
    waiting_by_band: PriorityBands = field(default_factory=lambda: PriorityBands())
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class PriorityBands:
    """Waiting jobs (queued, or retrying after a backoff) per band: high = priorities 7-9, normal = 4-6, low = 0-3."""

    high: int = 0
    normal: int = 0
    low: int = 0
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Worker:
    """A worker that announced itself: what it consumes and how busy it is."""

    id: str
    alive: bool = False
    queues: tuple[str, ...] = ()
    concurrency: int = 0
    running: int = 0
    started_at: datetime | None = None
    last_seen_at: datetime | None = None
    stopped_at: datetime | None = None
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Workers:
    """`GET /workers`: the workers seen within the hour and the totals of the alive ones."""

    alive: int = 0
    running: int = 0
    capacity: int = 0
    workers: tuple[Worker, ...] = ()
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Kind:
    """A job kind a worker registered: its payload schema, where its jobs go, how many alive workers serve it.

    `workers_alive` 0: jobs of the kind wait until a worker serving it starts.
    """

    name: str
    queue: str | None = None
    queues: tuple[str, ...] = ()
    description: str | None = None
    schema: Json = None
    privileged: bool = False
    workers_alive: int = 0
    registered_at: datetime | None = None
    last_seen_at: datetime | None = None
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class SiteState:
    """A site's live limiter state and counters."""

    tokens_left: float | None = None
    next_allowed_at: datetime | None = None
    running_jobs: int = 0
    slots_held: int = 0
    requests_total: int = 0
    rate_limit_waits: int = 0
    deferrals: int = 0
    backoffs: int = 0
    bytes_saved: int = 0
    robots_blocked: int = 0
    backoff_until: datetime | None = None
    robots_age_s: float | None = None
    crawl_delay_s: float | None = None
    adaptive_delay_s: float | None = None
    effective_delay_s: float | None = None
    effective_requests_per_hour: float | None = None
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Site:
    """A site's politeness policy and its live `state`."""

    name: str
    requests_per_hour: float | None = None
    burst: int | None = None
    min_delay_s: float | None = None
    pause_min_s: float | None = None
    pause_max_s: float | None = None
    respectful_hours: JsonObject | None = None
    max_concurrency: int | None = None
    partial_error_ratio: float | None = None
    timeout_s: float | None = None
    max_bytes: int | None = None
    user_agent: str | None = None
    robots: str | None = None
    adaptive: bool | None = None
    proxies: tuple[str, ...] = ()
    state: SiteState = field(default_factory=SiteState)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class LastJob:
    """The last job a schedule created (`state` None once it was pruned)."""

    id: int
    state: str | None = None
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class ScheduleCounters:
    fired: int = 0
    skipped_overlap: int = 0
    skipped_misfire: int = 0
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Schedule:
    """A schedule: its timing (`type` interval, cron or once), job template, policies and firing state."""

    id: int
    name: str
    type: str
    description: str = ""
    interval_s: float | None = None
    jitter: float | None = None
    cron: str | None = None
    timezone: str | None = None
    at: datetime | None = None
    job: JsonObject = field(default_factory=dict)
    misfire: str | None = None
    overlap: str | None = None
    misfire_grace_s: float | None = None
    enabled: bool = True
    paused: bool = False
    source: str | None = None
    last_job: LastJob | None = None
    counters: ScheduleCounters = field(default_factory=ScheduleCounters)
    next_fire_at: datetime | None = None
    next_slot_at: datetime | None = None
    last_fire_at: datetime | None = None
    last_slot_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class SchedulePreview:
    """The next nominal fire times of a schedule (interval jitter moves each by up to ±jitter·interval)."""

    id: int
    name: str
    fire_times: tuple[datetime, ...] = ()
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    """The scheduler's effective settings: recorded by the leader when it took over (`source: leader`), else the
    gateway's own (`source: gateway`)."""

    source: str
    leader: str | None = None
    recorded_at: datetime | None = None
    fire_interval_s: float = 0.0
    leader_tick_s: float = 0.0
    leader_stale_s: float = 0.0
    standby_retry_s: float = 0.0
    relay_interval_s: float = 0.0
    relay_grace_s: float = 0.0
    relay_stale_s: float = 0.0
    reaper_interval_s: float = 0.0
    lease_s: float = 0.0
    prune_interval_s: float = 0.0
    # the pruning pace; None from a leader that recorded its settings before these existed
    prune_batch: int | None = None
    prune_pause_ratio: float | None = None
    prune_budget_s: float | None = None
    retention_days: float = 0.0
    result_retention_days: float = 0.0
    misfire_default: str = "fire_once"
    misfire_grace_s_default: float = 0.0
    overlap_default: str = "allow"
    jitter_default: float = 0.0
    cron_timezone_default: str = "UTC"
    clock: str = "database"
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class SchedulerStatus:
    """The scheduler: its leader, pause, last tick and backlog; `fired` only after `run`."""

    leader: str | None = None
    leader_since: datetime | None = None
    last_leader: str | None = None
    paused: bool = False
    last_tick_at: datetime | None = None
    due_backlog: int = 0
    last_fire_lag_s: float | None = None
    next_fire_at: datetime | None = None
    schedules: int = 0
    active_schedules: int = 0
    fired: int | None = None
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Durations:
    p50: float | None = None
    p95: float | None = None
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class _Outcomes:
    """What a group of `GET /stats` and of `GET /reports` both show: the jobs of one (site, kind) in the window."""

    kind: str
    site: str | None = None
    jobs: int = 0
    states: dict[str, int] = field(default_factory=dict)
    success_rate: float | None = None
    duration_s: Durations = field(default_factory=Durations)


@dataclass(frozen=True, slots=True)
class StatsGroup(_Outcomes):
    """The jobs of one (site, kind) in the window: counts by state, success rate, durations, pages."""

    pages_fetched: int = 0
    pages_unchanged: int = 0
    deferrals: int = 0
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class WindowCounters:
    requests: int = 0
    rate_limit_waits: int = 0
    deferrals: int = 0
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class SiteCounters:
    """A site's counters since it was created, and `in_window`."""

    name: str
    requests_total: int = 0
    rate_limit_waits: int = 0
    deferrals: int = 0
    in_window: WindowCounters = field(default_factory=WindowCounters)
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Stats:
    """`GET /stats`: the window and its groups by site and kind, and per-site counters."""

    since: datetime | None = None
    until: datetime | None = None
    window_s: float | None = None
    groups: tuple[StatsGroup, ...] = ()
    sites: tuple[SiteCounters, ...] = ()
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class ErrorClassCount:
    """How many failed attempts of the window ended with an error class."""

    error_class: str
    attempts: int = 0
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class ReportGroup(_Outcomes):
    """One (site, kind) of a report: outcomes, success rate, durations, top error classes, dead letters."""

    error_classes: tuple[ErrorClassCount, ...] = ()
    dead_letters: int = 0
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class ReportDeadLetters:
    """Jobs that failed in the window, and poison messages recorded in it (by reason)."""

    failed_jobs: int = 0
    messages: dict[str, int] = field(default_factory=dict)
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Report:
    """`GET /reports` (and a `maintenance.report` job's result): per site and kind over the last `hours`."""

    since: datetime | None = None
    until: datetime | None = None
    hours: float = 0.0
    groups: tuple[ReportGroup, ...] = ()
    error_classes: tuple[ErrorClassCount, ...] = ()
    dead_letters: ReportDeadLetters = field(default_factory=ReportDeadLetters)
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Health:
    """The gateway's `/health`: `ok` when PostgreSQL and RabbitMQ answer; `checks` says what is down."""

    status: str
    ready: bool = False
    checks: JsonObject = field(default_factory=dict)
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True, slots=True)
class Event:
    """One job or schedule event from `GET /events` (`client.events()`); fields that do not apply are None.

    `id` is the stream's id of the event (sent back as `Last-Event-ID` on a reconnect). A `resync` event (no
    job, `detail` says why) means events were missed: catch up with `client.jobs.list(updated_after=...)`
    from the `at` of the last event seen.
    """

    type: str
    at: datetime | None = None
    id: str | None = None
    job_id: int | None = None
    kind: str | None = None
    queue: str | None = None
    state: str | None = None
    attempt: int | None = None
    site: str | None = None
    schedule_id: int | None = None
    created_at: datetime | None = None
    error_class: str | None = None
    error_message: str | None = None
    detail: str | None = None
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Webhook:
    """A webhook as `GET /webhooks` lists it: never its secret."""

    id: int
    url: str
    filter: JsonObject = field(default_factory=dict)
    description: str | None = None
    created_at: datetime | None = None
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)
