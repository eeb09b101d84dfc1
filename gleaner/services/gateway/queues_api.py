"""GET /queues: broker counts (cached briefly: queue_depths) beside PostgreSQL counts per queue."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from aiohttp import web

from gleaner.services.gateway.bodies import checked, read_json
from gleaner.services.gateway.context import Gateway, gateway_of
from gleaner.services.gateway.job_views import Row, json_response, timestamp
from gleaner.shared import events, priorities
from gleaner.shared.errors import Problem
from gleaner.shared.field_checks import members, string

PAUSES = "SELECT queue, paused_at, reason FROM queue_pauses"
PAUSE_OF = PAUSES + " WHERE queue = $1"
PAUSE = """
INSERT INTO queue_pauses (queue, reason) VALUES ($1, $2)
ON CONFLICT (queue) DO UPDATE SET reason = COALESCE(EXCLUDED.reason, queue_pauses.reason)
"""
RESUME = "DELETE FROM queue_pauses WHERE queue = $1"
# the body is empty or {"reason": "<text>"}
PAUSE_BODY = members({"reason": string(1000)})

# The waiting rows from jobs_waiting, the running ones from jobs_leases (migration 0043: each holds its part only).
COUNTS = """
SELECT queue,
    count(*) FILTER (WHERE state = 'scheduled') AS scheduled,
    count(*) FILTER (WHERE state = 'queued') AS queued,
    count(*) FILTER (WHERE state = 'retrying') AS retrying,
    count(*) FILTER (WHERE state = 'running') AS running,
    EXTRACT(EPOCH FROM (now() - min(run_at) FILTER (
        WHERE state IN ('queued', 'retrying') AND run_at <= now())))::float8 AS oldest_waiting_s
FROM (
    SELECT queue, state, run_at FROM jobs
    WHERE state IN ('scheduled', 'queued', 'retrying') AND ($1::text IS NULL OR queue = $1)
    UNION ALL
    SELECT queue, state, run_at FROM jobs WHERE state = 'running' AND ($1::text IS NULL OR queue = $1)
) AS j
GROUP BY queue
"""

# jobs waiting for a worker (queued, or retrying after a backoff) by queue and priority: GET /queues shows them per
# priority level and per band (gleaner.shared.priorities)
WAITING_BY_PRIORITY = """
SELECT queue, priority, count(*) AS jobs FROM jobs
WHERE state IN ('queued', 'retrying') AND ($1::text IS NULL OR queue = $1)
GROUP BY queue, priority
"""


def by_priority(rows: Iterable[Row]) -> dict[str, list[int]]:
    """queue → waiting jobs per priority level (index 0 … 9)."""
    levels: dict[str, list[int]] = {}
    for row in rows:
        levels.setdefault(row["queue"], [0] * (priorities.HIGHEST + 1))[row["priority"]] = row["jobs"]
    return levels


def band_counts(levels: Sequence[int]) -> dict[str, int]:
    return {band: sum(levels[n] for n in numbers) for band, numbers in priorities.BANDS.items()}


def queue_view(
    name: str, broker: dict[str, int | None] | None, counts: Any, pause: Any, levels: Sequence[int] | None
) -> dict[str, Any]:
    levels = list(levels or [0] * (priorities.HIGHEST + 1))
    return {
        "name": name,
        "paused": pause is not None,
        "paused_at": timestamp(pause["paused_at"]) if pause is not None else None,
        "pause_reason": pause["reason"] if pause is not None else None,
        "ready": broker["ready"] if broker is not None else None,
        "unacked": broker["unacked"] if broker is not None else None,
        "consumers": broker["consumers"] if broker is not None else None,
        "scheduled": counts["scheduled"] if counts else 0,
        "queued": counts["queued"] if counts else 0,
        "retrying": counts["retrying"] if counts else 0,
        "running": counts["running"] if counts else 0,
        "oldest_waiting_s": counts["oldest_waiting_s"] if counts else None,
        "waiting_by_priority": levels,
        "waiting_by_band": band_counts(levels),
    }


async def list_queues(request: web.Request) -> web.Response:
    gw = gateway_of(request)
    rows = {r["queue"]: r for r in await gw.pool.fetch(COUNTS, None)}
    pauses = {r["queue"]: r for r in await gw.pool.fetch(PAUSES)}
    levels = by_priority(await gw.pool.fetch(WAITING_BY_PRIORITY, None))
    depths = await gw.depths.get()
    views = [queue_view(q, depths.get(q), rows.get(q), pauses.get(q), levels.get(q)) for q in gw.config.queues]
    every = [sum(level) for level in zip(*(view["waiting_by_priority"] for view in views), strict=True)] or [0] * 10
    return json_response({"queues": views, "waiting_by_band": band_counts(every) | {"total": sum(every)}})


async def pause_queue(request: web.Request) -> web.Response:
    """Workers stop taking this queue's jobs (those already delivered finish); its messages wait."""
    gw, name = gateway_of(request), _queue_name(request)
    _, body = await read_json(request, allow_empty=True)
    reason = checked(body, PAUSE_BODY).get("reason")
    await gw.pool.execute(PAUSE, name, reason)
    return await _changed(gw, name)


async def resume_queue(request: web.Request) -> web.Response:
    gw, name = gateway_of(request), _queue_name(request)
    await gw.pool.execute(RESUME, name)
    return await _changed(gw, name)


def _queue_name(request: web.Request) -> str:
    name = request.match_info["name"]
    if name not in gateway_of(request).config.queues:
        queues = ", ".join(gateway_of(request).config.queues)
        raise Problem(404, "Not Found", f"no queue {name!r}; configured queues: {queues}")
    return name


async def _changed(gw: Gateway, name: str) -> web.Response:
    # workers re-read the pauses on this event, and with every heartbeat if it is lost
    await gw.broker.publish_event(events.QUEUES_CHANGED, events.queues_changed(name))
    pause = await gw.pool.fetchrow(PAUSE_OF, name)
    counts = await gw.pool.fetchrow(COUNTS, name)
    levels = by_priority(await gw.pool.fetch(WAITING_BY_PRIORITY, name)).get(name)
    return json_response(queue_view(name, None, counts, pause, levels))
