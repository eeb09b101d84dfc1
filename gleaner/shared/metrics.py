"""Every Prometheus metric Gleaner exports, on a registry owned by the running service.

A service served from several processes (GLEANER_GATEWAY_PROCESSES) keeps its values in prometheus_client's
multiprocess files (`shared_by_processes`): /metrics at any of them answers the sums over all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path

import asyncpg
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

# 10 ms to 30 min, in seconds
DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800)
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
OUTCOMES = ("succeeded", "partial", "failed", "cancelled", "retrying", "lost")
MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
# how often each process of a multi-process service writes its pool's connection counts (a function gauge reads
# them at scrape time, but only in the process that answers the scrape)
POOL_SAMPLE_S = 1.0


class Metrics:
    """One instance per process; labels come from closed sets (kinds and queues are configured).

    `shared_dir`: the multiprocess directory of a service served from several processes (`shared_by_processes`);
    gauges then say how the processes' values combine (`multiprocess_mode`: a count per process is summed over the
    live ones, a state shows the largest)."""

    def __init__(self, service: str, shared_dir: str | None = None) -> None:
        self.shared_dir = shared_dir
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # process_resident_memory_bytes, process_cpu_seconds_total, open fds: the memory alert and dashboards
        ProcessCollector(registry=r)
        self.build = Info("gleaner_build", "Gleaner version and service", registry=r)
        self.build.info({"version": _version(), "service": service})
        self.http_requests = Counter(
            "gleaner_http_requests", "HTTP requests served", ["method", "route", "code"], registry=r
        )
        self.http_duration = Histogram(
            "gleaner_http_request_duration_seconds",
            "HTTP request duration",
            ["method", "route"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self.submitted = Counter("gleaner_jobs_submitted", "Jobs accepted", ["kind", "queue"], registry=r)
        self.enqueued = Counter(
            "gleaner_jobs_enqueued", "Jobs whose message the broker confirmed", ["queue"], registry=r
        )
        self.job_messages = Counter(
            "gleaner_job_messages_published",
            "Job messages the broker confirmed (one carries up to GLEANER_GROUP_MAX_JOBS jobs)",
            ["queue"],
            registry=r,
        )
        self.started = Counter("gleaner_jobs_started", "Attempts started", ["kind", "queue"], registry=r)
        self.completed = Counter(
            "gleaner_jobs_completed", "Attempts finished, by outcome", ["kind", "queue", "outcome"], registry=r
        )
        self.duration = Histogram(
            "gleaner_job_duration_seconds", "Attempt run time", ["kind", "queue"], buckets=DURATION_BUCKETS, registry=r
        )
        self.queue_wait = Histogram(
            "gleaner_job_queue_wait_seconds", "Time from due to start", ["queue"], buckets=DURATION_BUCKETS, registry=r
        )
        self.retries = Counter("gleaner_job_retries", "Retries scheduled", ["kind", "queue"], registry=r)
        self.in_progress = Gauge(
            "gleaner_jobs_in_progress",
            "Attempts running in this process",
            ["queue"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.stale_claims = Counter(
            "gleaner_claims_stale",
            "Messages dropped because their attempt was stale or duplicate",
            ["queue"],
            registry=r,
        )
        self.jobs_handed_on = Counter(
            "gleaner_jobs_handed_on",
            "Jobs of a group a worker held no room for, published again for any worker",
            registry=r,
        )
        self.dead_letters = Counter(
            "gleaner_dead_letters", "Messages and jobs sent to the dead-letter set", ["reason"], registry=r
        )
        self.publish_failures = Counter(
            "gleaner_publish_failures", "Publishes the broker did not confirm (the relay retries)", registry=r
        )
        self.relay_published = Counter(
            "gleaner_relay_published", "Messages published by the outbox relay", ["reason"], registry=r
        )
        self.relay_backlog = Gauge(
            "gleaner_relay_backlog", "Due rows without a confirmed message", registry=r, multiprocess_mode="livemax"
        )
        self.relay_oldest = Gauge(
            "gleaner_relay_oldest_unpublished_seconds",
            "Age of the oldest due unpublished row",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.lease_recoveries = Counter(
            "gleaner_lease_recoveries", "Running jobs recovered after their lease expired", registry=r
        )
        self.pruned = Counter("gleaner_pruned_rows", "Rows removed by pruning", ["table"], registry=r)
        self.event_streams = Gauge(
            "gleaner_event_streams", "Open GET /events streams at this gateway", registry=r, multiprocess_mode="livesum"
        )
        self.event_streams_dropped = Counter(
            "gleaner_event_streams_dropped", "Event streams ended because the client fell behind", registry=r
        )
        self.leader = Gauge(
            "gleaner_scheduler_leader",
            "1 while this scheduler holds leadership",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.jobs_by_state = Gauge(
            "gleaner_jobs",
            "Jobs in PostgreSQL by state and queue (exported by the scheduler leader only)",
            ["state", "queue"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.jobs_ready = Gauge(
            "gleaner_jobs_ready",
            "Jobs due now and not running, by queue: what the workers have to do (exported by the scheduler leader)",
            ["queue"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.schedule_fires = Counter(
            "gleaner_schedule_fires",
            "Schedule slots handled, by outcome (fired, skipped_overlap, misfire_skipped)",
            ["outcome"],
            registry=r,
        )
        self.schedule_fire_lag = Histogram(
            "gleaner_schedule_fire_lag_seconds",
            "From a slot's due time to its job's insert",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.scheduler_last_tick = Gauge(
            "gleaner_scheduler_last_tick_timestamp_seconds",
            "When the leader last ran its loop",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.site_requests = Counter(
            "gleaner_site_requests", "Requests made to sites, by outcome", ["site", "outcome"], registry=r
        )
        self.site_rate_limit_waits = Counter(
            "gleaner_site_rate_limit_waits", "Requests that had to wait for a site's rate limit", ["site"], registry=r
        )
        self.site_failures = Counter("gleaner_site_failures", "Failed requests to sites", ["site"], registry=r)
        self.site_wait = Histogram(
            "gleaner_site_wait_seconds",
            "Time waited for a site's rate limit",
            ["site"],
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.site_backoffs = Counter(
            "gleaner_site_backoffs",
            "Pauses of a site after a 429/503, by reason (retry_after, exponential)",
            ["site", "reason"],
            registry=r,
        )
        self.site_robots_blocked = Counter(
            "gleaner_site_robots_blocked", "URLs not requested because robots.txt disallows them", ["site"], registry=r
        )
        self.site_rate_limit = Gauge(
            "gleaner_site_rate_limit_per_hour",
            "The requests per hour a site's policy allows now (min_delay_s and respectful hours applied), as the"
            " worker read it when a job of the site last started",
            ["site"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.site_effective_rate = Gauge(
            "gleaner_site_effective_requests_per_hour",
            "The rate an adaptive site runs at (its policy's rate, lowered by the adaptive spacing)",
            ["site"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.amqp_reconnects = Counter("gleaner_amqp_reconnects", "AMQP reconnections", registry=r)
        self.pool_connections = Gauge(
            "gleaner_db_pool_connections",
            "PostgreSQL pool connections",
            ["state"],
            registry=r,
            multiprocess_mode="livesum",
        )

    def watch_pool(self, pool: asyncpg.Pool) -> None:
        """Report the pool's connections at scrape time: in use, idle and the configured maximum (with several
        processes, each writes its own every POOL_SAMPLE_S and /metrics sums them)."""
        if self.shared_dir is not None:
            self._sample_pool(pool)
            return
        self.pool_connections.labels("in_use").set_function(lambda: pool.get_size() - pool.get_idle_size())
        self.pool_connections.labels("idle").set_function(pool.get_idle_size)
        self.pool_connections.labels("max").set_function(pool.get_max_size)

    def _sample_pool(self, pool: asyncpg.Pool) -> None:
        self.pool_connections.labels("in_use").set(pool.get_size() - pool.get_idle_size())
        self.pool_connections.labels("idle").set(pool.get_idle_size())
        self.pool_connections.labels("max").set(pool.get_max_size())
        asyncio.get_running_loop().call_later(POOL_SAMPLE_S, self._sample_pool, pool)

    def exposition(self) -> bytes:
        """The text /metrics answers: this process's registry, or with several processes the sums over all."""
        if self.shared_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self.shared_dir)  # type: ignore[no-untyped-call]
        registry.register(self.build)
        registry.register(ProcessTotals(self.shared_dir))
        return generate_latest(registry)


class ProcessTotals(Collector):
    """process_* of every live process writing to a multiprocess directory, added up (memory, CPU, open files), so
    the memory alert and the CPU panels see the service, not whichever process answered."""

    def __init__(self, shared_dir: str) -> None:
        self._dir = Path(shared_dir)

    def collect(self) -> Iterable[Metric]:
        totals: dict[str, Metric] = {}
        for pid in sorted(_writers(self._dir)):
            for family in ProcessCollector(pid=functools.partial(int, pid), registry=None).collect():
                _fold(totals, family)
        return list(totals.values())


def _fold(totals: dict[str, Metric], family: Metric) -> None:
    """Add one process's family into `totals`: sums, except the start time (the earliest) and the fd limit."""
    known = totals.get(family.name)
    if known is None:
        totals[family.name] = family
        return
    [mine], [theirs] = known.samples, family.samples
    if family.name == "process_start_time_seconds":
        value = min(mine.value, theirs.value)
    elif family.name == "process_max_fds":
        value = mine.value
    else:
        value = mine.value + theirs.value
    known.samples[0] = mine._replace(value=value)


def _writers(shared_dir: Path) -> set[int]:
    """The live processes that keep values in `shared_dir` (its files are named `<kind>_<pid>.db`)."""
    pids = {int(m.group(1)) for f in shared_dir.glob("*.db") if (m := re.search(r"_(\d+)\.db$", f.name))}
    return {pid for pid in pids if Path(f"/proc/{pid}").exists()}


@contextlib.contextmanager
def shared_by_processes() -> Iterator[str]:
    """In the supervisor, before its processes fork: metrics created from here on keep their values in a new
    multiprocess directory (removed at the end). prometheus_client picks its value class at import from
    PROMETHEUS_MULTIPROC_DIR, so it is picked again once the variable is set."""
    shared_dir = tempfile.mkdtemp(prefix="gleaner-metrics-")
    saved = os.environ.get(MULTIPROC_DIR)
    os.environ[MULTIPROC_DIR] = shared_dir
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    try:
        yield shared_dir
    finally:
        if saved is None:
            del os.environ[MULTIPROC_DIR]
        else:
            os.environ[MULTIPROC_DIR] = saved
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
        shutil.rmtree(shared_dir, ignore_errors=True)


def process_ended(shared_dir: str, pid: int) -> None:
    """A process of the set exited: its live gauges (streams open, jobs in progress) no longer count."""
    multiprocess.mark_process_dead(pid, shared_dir)  # type: ignore[no-untyped-call]


def _version() -> str:
    try:
        return metadata.version("gleaner")
    except metadata.PackageNotFoundError:
        return "unknown"
