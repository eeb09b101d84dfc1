"""The statements behind GET /stats: the window, jobs by site and kind, pages fetched, site counters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import asyncpg

from gleaner.shared.rows import Row
from gleaner.shared.stats.rules import STATES, StatsQuery, rollup_groups

# Both ends by the database clock: the window is `since` (when given) or `window_s` back from now.
WINDOW = "SELECT COALESCE($1::timestamptz, now() - make_interval(secs => $2::float8)) AS since, now() AS until"

_STATE_COUNTS = ",\n       ".join(f"count(*) FILTER (WHERE state = '{s}') AS {s}" for s in STATES)
_FILTERS = "($2::text IS NULL OR site = $2) AND ($3::text IS NULL OR kind = $3)"

# Jobs that finished in the window (by their final state) and jobs not finished yet (by their state now);
# the duration is that of the last attempt of a job that ran to an outcome. Served by the jobs_finished,
# jobs_waiting and jobs_leases indexes (running rows are only in jobs_leases, migration 0043).
JOB_GROUPS = f"""
WITH windowed AS (
    SELECT site, kind, state, deferrals,
           CASE WHEN state IN ('succeeded', 'partial', 'failed')
                THEN EXTRACT(EPOCH FROM (finished_at - attempt_started_at))::float8 END AS duration_s
    FROM jobs WHERE finished_at >= $1 AND state IN ('succeeded', 'partial', 'failed', 'cancelled') AND {_FILTERS}
    UNION ALL
    SELECT site, kind, state, deferrals, NULL FROM jobs
    WHERE state IN ('scheduled', 'queued', 'retrying') AND {_FILTERS}
    UNION ALL
    SELECT site, kind, state, deferrals, NULL FROM jobs WHERE state = 'running' AND {_FILTERS}
)
SELECT site, kind,
       {_STATE_COUNTS},
       percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_s) AS p50_s,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_s) AS p95_s,
       sum(deferrals) AS deferrals
FROM windowed GROUP BY site, kind
"""

# Above this many finished jobs in the window, the window is read from the rollups (job_minutes, job_hours) and
# the duration percentiles come from their buckets; up to it, from the jobs themselves, exactly.
EXACT_LIMIT = 10_000
# The window from its start to the next whole minute is read from jobs, then job_minutes to the next whole hour,
# then job_hours: counts are exact either way, and a week is 168 rows a group.
_MINUTE = "date_trunc('minute', $1::timestamptz) + interval '1 minute'"
_HOUR = "date_trunc('hour', $1::timestamptz) + interval '1 hour'"
_ROLLUP_FILTERS = "($2::text IS NULL OR site = $2) AND ($3::text IS NULL OR kind = $3)"
_ROLLED_UP = f"""
    SELECT site, kind, state, bucket, jobs, deferrals FROM job_minutes
    WHERE minute >= {_MINUTE} AND minute < {_HOUR} AND {_ROLLUP_FILTERS}
    UNION ALL
    SELECT site, kind, state, bucket, jobs, deferrals FROM job_hours WHERE hour >= {_HOUR} AND {_ROLLUP_FILTERS}
"""
FINISHED_IN_ROLLUP = f"SELECT COALESCE(sum(jobs), 0)::bigint FROM ({_ROLLED_UP}) AS r"
ROLLUP_GROUPS = f"""
WITH windowed AS (
    SELECT site, kind, state, job_minutes_bucket(attempt_started_at, finished_at, state) AS bucket,
           1::bigint AS jobs, deferrals::bigint AS deferrals
    FROM jobs
    WHERE finished_at >= $1 AND finished_at < {_MINUTE}
      AND state IN ('succeeded', 'partial', 'failed', 'cancelled') AND {_FILTERS}
    UNION ALL
    SELECT NULLIF(site, ''), kind, state, bucket, jobs, deferrals FROM ({_ROLLED_UP}) AS r
    UNION ALL
    SELECT site, kind, state, -32768, 1, deferrals FROM jobs
    WHERE state IN ('scheduled', 'queued', 'retrying') AND {_FILTERS}
    UNION ALL
    SELECT site, kind, state, -32768, 1, deferrals FROM jobs WHERE state = 'running' AND {_FILTERS}
)
SELECT site, kind, state, bucket, sum(jobs) AS jobs, sum(deferrals) AS deferrals
FROM windowed GROUP BY site, kind, state, bucket
"""

# Pages stored in the window, by the site of the result and the kind of its job.
PAGE_GROUPS = """
SELECT r.site, j.kind, count(*) AS pages, count(*) FILTER (WHERE r.unchanged) AS unchanged
FROM scrape_results AS r JOIN jobs AS j ON j.id = r.job_id
WHERE r.fetched_at >= $1 AND ($2::text IS NULL OR r.site = $2) AND ($3::text IS NULL OR j.kind = $3)
GROUP BY r.site, j.kind
"""

# Each site's counters since it was created, and in the window from its per-minute rows (the minute the
# window starts in counts whole).
SITE_COUNTERS = """
SELECT s.name, s.requests_total, s.rate_limit_waits, s.deferrals,
       COALESCE(sum(m.requests), 0)::bigint AS window_requests,
       COALESCE(sum(m.rate_limit_waits), 0)::bigint AS window_rate_limit_waits,
       COALESCE(sum(m.deferrals), 0)::bigint AS window_deferrals
FROM sites AS s LEFT JOIN site_minutes AS m ON m.site = s.name AND m.minute >= date_trunc('minute', $2::timestamptz)
WHERE $1::text IS NULL OR s.name = $1
GROUP BY s.name ORDER BY s.name
"""


@dataclass(frozen=True, slots=True)
class StatsRows:
    """What the statements returned for one request."""

    since: datetime
    until: datetime
    jobs: Sequence[Row]
    pages: Sequence[Row]
    sites: Sequence[Row]


class Queries(Protocol):
    """A connection or a pool: what the statements run on (the worker's handlers get the pool)."""

    async def fetch(self, query: str, *args: Any) -> Sequence[Any]: ...
    async def fetchrow(self, query: str, *args: Any) -> Any: ...
    async def fetchval(self, query: str, *args: Any) -> Any: ...


async def fetch_stats(pool: asyncpg.Pool, query: StatsQuery) -> StatsRows:
    """The statistics from one snapshot."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        return await stats_on(conn, query)


async def stats_on(conn: Queries, query: StatsQuery) -> StatsRows:
    bounds = await conn.fetchrow(WINDOW, query.since, query.window_s)
    assert bounds is not None
    args = (bounds["since"], query.site, query.kind)
    jobs: Sequence[Row]
    if await conn.fetchval(FINISHED_IN_ROLLUP, *args) > EXACT_LIMIT:
        jobs = rollup_groups(await conn.fetch(ROLLUP_GROUPS, *args))
    else:
        jobs = await conn.fetch(JOB_GROUPS, *args)
    pages = await conn.fetch(PAGE_GROUPS, *args)
    sites = await conn.fetch(SITE_COUNTERS, query.site, bounds["since"])
    return StatsRows(bounds["since"], bounds["until"], jobs, pages, sites)
