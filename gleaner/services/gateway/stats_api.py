"""Handlers for GET /stats (jobs by site and kind over a window, with outcomes, durations and pages fetched) and
GET /reports (the same per site and kind with top error classes and dead letters, over the last hours)."""

from __future__ import annotations

from aiohttp import web

from gleaner.services.gateway.bodies import query_value
from gleaner.services.gateway.context import gateway_of
from gleaner.services.gateway.job_views import json_response, timestamp
from gleaner.shared.field_checks import query_number
from gleaner.shared.stats.report import DEFAULT_HOURS, MAX_HOURS, build_report
from gleaner.shared.stats.rules import merge_groups, parse_stats_query, site_counters
from gleaner.shared.stats.store import fetch_stats


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


async def get_report(request: web.Request) -> web.Response:
    """`hours` back from now (default 24): what `gleaner report` prints and `maintenance.report` stores."""
    hours = query_value(request, "hours", query_number(0, MAX_HOURS, exclusive_low=True)) or DEFAULT_HOURS
    async with gateway_of(request).pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        return json_response(await build_report(conn, hours))
