"""The console's pages: each asks the API what it shows (in parallel) and renders a template."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gleaner.services.gateway.console import forms
from gleaner.services.gateway.console.charts import per_minute
from gleaner.services.gateway.console.core import Visitor, guarded, page_context, render, visitor_of
from gleaner.services.gateway.context import gateway_of
from gleaner.services.gateway.job_views import timestamp

Context = dict[str, Any]
Builder = Callable[[Visitor], Awaitable[Context]]

# the rollup the stats read: finished jobs per minute by state. The window is a closed range of its primary key's
# first column written with now() itself: an index range scan even when the table's statistics are stale (with
# only a lower bound the planner guessed a third of the table and read all of it: 90 ms at 143,000 rows)
JOB_MINUTES = """
SELECT date_trunc('minute', now()) AS now, m.minute, m.state, m.jobs
FROM (SELECT 1) AS one LEFT JOIN LATERAL (
    SELECT minute, state, sum(jobs)::bigint AS jobs FROM job_minutes
    WHERE minute > date_trunc('minute', now()) - interval '60 minutes' AND minute <= date_trunc('minute', now())
    GROUP BY minute, state
) AS m ON true
"""
# the schedules that fire next, by the scheduler's own index of due schedules (no API lists them by time)
DUE_NEXT_SQL = """
SELECT id, name, next_fire_at FROM schedules WHERE enabled AND NOT paused AND next_fire_at IS NOT NULL
ORDER BY next_fire_at LIMIT $1
"""
SCHEDULE_EDITABLE = forms.SCHEDULE_FIELDS
SITE_LIVE = ("state", "created_at", "updated_at", "name")
DUE_NEXT = 8
EVENT_FILTERS = ("kind", "queue", "site", "schedule_id")
FINAL = ("succeeded", "partial", "failed", "cancelled")


async def _minutes(visitor: Visitor) -> Any:
    rows = await gateway_of(visitor.request).pool.fetch(JOB_MINUTES)
    now = rows[0]["now"]
    return per_minute(now, [(r["minute"], r["state"], r["jobs"]) for r in rows if r["minute"] is not None])


async def _due_next(visitor: Visitor) -> list[dict[str, Any]]:
    rows = await gateway_of(visitor.request).pool.fetch(DUE_NEXT_SQL, DUE_NEXT)
    return [{"id": r["id"], "name": r["name"], "next_fire_at": timestamp(r["next_fire_at"])} for r in rows]


async def overview(visitor: Visitor) -> Context:
    calls = visitor.get_all(
        ("/queues", None), ("/workers", None), ("/dead-letters", {"limit": "25"}), ("/scheduler", None)
    )
    (queues, workers, letters, scheduler), chart, due = await asyncio.gather(
        calls, _minutes(visitor), _due_next(visitor)
    )
    return page_context(
        visitor,
        queues=queues["queues"],
        workers=workers,
        letters=letters["dead_letters"],
        due=due,
        scheduler=scheduler,
        chart=chart,
    )


async def jobs(visitor: Visitor) -> Context:
    filters = forms.job_filters(visitor.request.query)
    page = await visitor.get("/jobs", filters)
    base = {k: v for k, v in filters.items() if k != "page_token"}
    # the events that can change what the list shows (a state filter is left out: a job leaving the state counts)
    events = {k: v for k, v in base.items() if k in EVENT_FILTERS}
    return page_context(
        visitor, jobs=page["jobs"], next_token=page["next_page_token"], filters=base, events=events, states=forms.STATES
    )


async def job(visitor: Visitor) -> Context:
    job_id = visitor.request.match_info["id"]
    found, attempts, results, children, dependencies = await visitor.get_all(
        (f"/jobs/{job_id}", None),
        (f"/jobs/{job_id}/attempts", None),
        (f"/jobs/{job_id}/results", {"page_size": "100"}),
        (f"/jobs/{job_id}/children", {"page_size": "100"}),
        (f"/jobs/{job_id}/dependencies", {"page_size": "100"}),
    )
    return page_context(
        visitor,
        job=found,
        attempts=attempts["attempts"],
        results=results["results"],
        children=children["jobs"],
        dependencies=dependencies["jobs"],
        final=found["state"] in FINAL,
    )


async def dead_letters(visitor: Visitor) -> Context:
    read = forms.read(visitor.request.query, forms.LETTER_FILTERS)
    filters = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in read.items()}
    found = await visitor.get("/dead-letters", filters)
    return page_context(visitor, letters=found["dead_letters"], filters=filters)


async def schedules(visitor: Visitor) -> Context:
    params = {k: str(v) for k, v in forms.read(visitor.request.query, forms.SCHEDULE_PAGE).items()}
    found, scheduler = await visitor.get_all(("/schedules", {"page_size": "200", **params}), ("/scheduler", None))
    return page_context(visitor, schedules=found["schedules"], next_after=found["next_after_id"], scheduler=scheduler)


async def schedule(visitor: Visitor) -> Context:
    schedule_id = visitor.request.match_info["id"]
    count = forms.read(visitor.request.query, forms.PREVIEW).get("count", 5)
    found, preview = await visitor.get_all(
        (f"/schedules/{schedule_id}", None), (f"/schedules/{schedule_id}/preview", {"count": str(count)})
    )
    editable = {k: found[k] for k in SCHEDULE_EDITABLE if found.get(k) is not None}
    return page_context(visitor, schedule=found, preview=preview["fire_times"], count=count, editable=editable)


async def sites(visitor: Visitor) -> Context:
    found = await visitor.get("/sites")
    return page_context(visitor, sites=found["sites"])


async def site(visitor: Visitor) -> Context:
    found = await visitor.get(f"/sites/{visitor.request.match_info['name']}")
    editable = {k: v for k, v in found.items() if k not in SITE_LIVE}
    return page_context(visitor, site=found, editable=editable)


async def queues(visitor: Visitor) -> Context:
    return page_context(visitor, queues=(await visitor.get("/queues"))["queues"])


async def workers(visitor: Visitor) -> Context:
    return page_context(visitor, workers=await visitor.get("/workers"))


async def kinds(visitor: Visitor) -> Context:
    return page_context(visitor, kinds=(await visitor.get("/kinds"))["kinds"])


PAGES: dict[str, Builder] = {
    "overview": overview,
    "jobs": jobs,
    "job": job,
    "dead_letters": dead_letters,
    "schedules": schedules,
    "schedule": schedule,
    "sites": sites,
    "site": site,
    "queues": queues,
    "workers": workers,
    "kinds": kinds,
}


def page(name: str, *, live: bool = False) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A page, or (`live`) only its changing part, which the browser fetches again on an event or a timer."""
    build = PAGES[name]
    template = f"{name}_live.html" if live else f"{name}.html"

    async def serve(request: web.Request) -> web.StreamResponse:
        context = await build(await visitor_of(request))
        return render(request, template, context | {"page": name})

    return guarded(serve)
