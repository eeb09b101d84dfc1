"""Every Prometheus metric Gleaner exports, on a registry owned by the running service."""

from __future__ import annotations

from importlib import metadata

import asyncpg
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, ProcessCollector

# 10 ms to 30 min, in seconds
DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800)
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
OUTCOMES = ("succeeded", "partial", "failed", "cancelled", "retrying", "lost")


class Metrics:
    """One instance per process; labels come from closed sets (kinds and queues are configured)."""

    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # process_resident_memory_bytes, process_cpu_seconds_total, open fds: the memory alert and dashboards
        ProcessCollector(registry=r)
        Info("gleaner_build", "Gleaner version and service", registry=r).info(
            {"version": _version(), "service": service}
        )
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
        self.in_progress = Gauge("gleaner_jobs_in_progress", "Attempts running in this process", ["queue"], registry=r)
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
        self.relay_backlog = Gauge("gleaner_relay_backlog", "Due rows without a confirmed message", registry=r)
        self.relay_oldest = Gauge(
            "gleaner_relay_oldest_unpublished_seconds", "Age of the oldest due unpublished row", registry=r
        )
        self.lease_recoveries = Counter(
            "gleaner_lease_recoveries", "Running jobs recovered after their lease expired", registry=r
        )
        self.pruned = Counter("gleaner_pruned_rows", "Rows removed by pruning", ["table"], registry=r)
        self.event_streams = Gauge("gleaner_event_streams", "Open GET /events streams at this gateway", registry=r)
        self.event_streams_dropped = Counter(
            "gleaner_event_streams_dropped", "Event streams ended because the client fell behind", registry=r
        )
        self.leader = Gauge("gleaner_scheduler_leader", "1 while this scheduler holds leadership", registry=r)
        self.jobs_by_state = Gauge(
            "gleaner_jobs",
            "Jobs in PostgreSQL by state and queue (exported by the scheduler leader only)",
            ["state", "queue"],
            registry=r,
        )
        self.jobs_ready = Gauge(
            "gleaner_jobs_ready",
            "Jobs due now and not running, by queue: what the workers have to do (exported by the scheduler leader)",
            ["queue"],
            registry=r,
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
            "gleaner_scheduler_last_tick_timestamp_seconds", "When the leader last ran its loop", registry=r
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
        )
        self.site_effective_rate = Gauge(
            "gleaner_site_effective_requests_per_hour",
            "The rate an adaptive site runs at (its policy's rate, lowered by the adaptive spacing)",
            ["site"],
            registry=r,
        )
        self.amqp_reconnects = Counter("gleaner_amqp_reconnects", "AMQP reconnections", registry=r)
        self.pool_connections = Gauge(
            "gleaner_db_pool_connections", "PostgreSQL pool connections", ["state"], registry=r
        )

    def watch_pool(self, pool: asyncpg.Pool) -> None:
        """Report the pool's connections at scrape time: in use, idle and the configured maximum."""
        self.pool_connections.labels("in_use").set_function(lambda: pool.get_size() - pool.get_idle_size())
        self.pool_connections.labels("idle").set_function(pool.get_idle_size)
        self.pool_connections.labels("max").set_function(pool.get_max_size)


def _version() -> str:
    try:
        return metadata.version("gleaner")
    except metadata.PackageNotFoundError:
        return "unknown"
