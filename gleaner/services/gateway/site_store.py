"""The gateway's statements on `sites` (through the `site_status` view) and `scrape_results`, and their JSON."""

from __future__ import annotations

from dataclasses import astuple
from typing import Any

import asyncpg

from gleaner.services.gateway.job_views import Row, timestamp
from gleaner.shared.site_rules import SitePolicy
from gleaner.shared.site_writes import POLICY_FIELDS, UPSERT_SITE

COUNTER_FIELDS = ("requests_total", "rate_limit_waits", "deferrals")

LIST_SITES = "SELECT * FROM site_status ORDER BY name"
GET_SITE = "SELECT * FROM site_status WHERE name = $1"

RESULTS = """
SELECT id, url, final_url, status, content_type, size, content_hash, fetched_at, data, unchanged,
       body_hash IS NOT NULL AS body_stored
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
    }
    return {
        "name": row["name"],
        **{name: row[name] for name in POLICY_FIELDS},
        "state": state,
        "created_at": timestamp(row["created_at"]),
        "updated_at": timestamp(row["updated_at"]),
    }


def result_view(row: Row) -> dict[str, Any]:
    return {**{name: row[name] for name in RESULT_FIELDS}, "fetched_at": timestamp(row["fetched_at"])}
