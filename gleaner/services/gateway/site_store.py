"""The gateway's statements on `sites` (through the `site_status` view) and `scrape_results`, and their JSON."""

from __future__ import annotations

from dataclasses import astuple
from datetime import UTC, datetime
from typing import Any

import asyncpg

from gleaner.services.gateway.job_views import Row, timestamp
from gleaner.shared.site_rules import SitePolicy, effective_delay_s, effective_requests_per_hour
from gleaner.shared.site_writes import POLICY_FIELDS, UPSERT_SITE

COUNTER_FIELDS = ("requests_total", "rate_limit_waits", "deferrals", "backoffs", "bytes_saved", "robots_blocked")

LIST_SITES = "SELECT * FROM site_status ORDER BY name"
GET_SITE = "SELECT * FROM site_status WHERE name = $1"

RESULTS = """
SELECT id, url, final_url, status, content_type, size, content_hash, fetched_at, data, unchanged,
       body_hash IS NOT NULL AS body_stored, blocked_by_robots, etag, last_modified
FROM scrape_results WHERE job_id = $1 AND id > $2 ORDER BY id LIMIT $3
"""
RESULT_FIELDS = (
    "id",
    "url",
    "final_url",
    "status",
    "content_type",
    "size",
    "content_hash",
    "data",
    "unchanged",
    "body_stored",
    "blocked_by_robots",
    "etag",
    "last_modified",
)


async def upsert(pool: asyncpg.Pool, name: str, policy: SitePolicy) -> tuple[bool, asyncpg.Record]:
    """(created, the site's row with its live state) after writing `policy`."""
    async with pool.acquire() as conn:
        created = await conn.fetchval(UPSERT_SITE, name, *astuple(policy))
        row = await conn.fetchrow(GET_SITE, name)
    assert row is not None
    return bool(created), row


def site_view(row: Row) -> dict[str, Any]:
    """The policy at the top level (what a PUT takes) and the live state under `state`."""
    state = {
        "tokens_left": row["tokens_left"],
        "next_allowed_at": timestamp(row["next_allowed_at"]),
        "running_jobs": row["running_jobs"],
        "slots_held": row["slots_held"],
        **{name: row[name] for name in COUNTER_FIELDS},
        **_pace(row),
    }
    return {
        "name": row["name"],
        **{name: row[name] for name in POLICY_FIELDS},
        "state": state,
        "created_at": timestamp(row["created_at"]),
        "updated_at": timestamp(row["updated_at"]),
    }


def _pace(row: Row) -> dict[str, Any]:
    """What sets the site's pace now: a pause the server asked for, robots.txt's Crawl-delay and its age, the
    adaptive spacing, and the spacing and rate that result (before respectful hours stretch them)."""
    adaptive_s = row["adaptive_delay_s"] if row["adaptive"] else None
    delay_s = effective_delay_s(row["min_delay_s"], row["crawl_delay_s"], adaptive_s)
    fetched_at, backoff_until, now = row["robots_fetched_at"], row["backoff_until"], datetime.now(UTC)
    return {
        "backoff_until": timestamp(backoff_until) if backoff_until is not None and backoff_until > now else None,
        "robots_age_s": None if fetched_at is None else max(0.0, (now - fetched_at).total_seconds()),
        "crawl_delay_s": row["crawl_delay_s"],
        "adaptive_delay_s": adaptive_s,
        "effective_delay_s": delay_s,
        "effective_requests_per_hour": effective_requests_per_hour(row["requests_per_hour"], delay_s),
    }


def result_view(row: Row) -> dict[str, Any]:
    return {**{name: row[name] for name in RESULT_FIELDS}, "fetched_at": timestamp(row["fetched_at"])}
