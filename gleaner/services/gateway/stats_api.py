"""Handler for GET /stats: jobs by site and kind over a window, with outcomes, durations and pages fetched."""

from __future__ import annotations

from aiohttp import web

from gleaner.services.gateway.context import gateway_of
from gleaner.services.gateway.job_views import json_response, timestamp
from gleaner.services.gateway.stats_rules import merge_groups, parse_stats_query, site_counters
from gleaner.services.gateway.stats_store import fetch_stats


async def get_stats(request: web.Request) -> web.Response:
    query = parse_stats_query(request.query)
    rows = await fetch_stats(gateway_of(request).pool, query)
    return json_response(
        {
            "since": timestamp(rows.since),
            "until": timestamp(rows.until),
            "window_s": (rows.until - rows.since).total_seconds(),
            "groups": merge_groups(rows.jobs, rows.pages),
            "sites": [site_counters(r) for r in rows.sites],
        }
    )
