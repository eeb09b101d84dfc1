"""Handlers for /sites (policies with their live limiter state) and /jobs/{id}/results (a job's scraped pages)."""

from __future__ import annotations

from aiohttp import web

from gleaner.services.gateway import job_store, site_store
from gleaner.services.gateway.bodies import job_id_param, query_value, read_json
from gleaner.services.gateway.context import gateway_of
from gleaner.services.gateway.job_views import json_response
from gleaner.services.gateway.jobs_api import not_found
from gleaner.shared.errors import Problem
from gleaner.shared.field_checks import query_integer
from gleaner.shared.site_rules import parse_site, valid_name


async def list_sites(request: web.Request) -> web.Response:
    rows = await gateway_of(request).pool.fetch(site_store.LIST_SITES)
    return json_response({"sites": [site_store.site_view(r) for r in rows]})


async def get_site(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    row = await gateway_of(request).pool.fetchrow(site_store.GET_SITE, name) if valid_name(name) else None
    if row is None:
        raise Problem(404, "Not Found", f"site {name!r} does not exist")
    return json_response(site_store.site_view(row))


async def put_site(request: web.Request) -> web.Response:
    """Create (201) or replace (200) a site's policy; workers read it when each job of the site starts."""
    name = request.match_info["name"]
    _, data = await read_json(request)
    policy = parse_site(name, data)
    created, row = await site_store.upsert(gateway_of(request).pool, name, policy)
    headers = {"Location": f"/api/v1/sites/{name}"} if created else None
    return json_response(site_store.site_view(row), 201 if created else 200, headers)


async def list_results(request: web.Request) -> web.Response:
    """A job's stored pages, oldest first, in keyset pages (`page_size`, `page_token` → `next_page_token`)."""
    gw = gateway_of(request)
    job_id = job_id_param(request)
    page_size = query_value(request, "page_size", query_integer(1, 1000)) or 100
    token = request.query.get("page_token") or None
    filters = {"job_id": job_id}
    after_id = gw.page_tokens.decode(token, filters) if token is not None else 0
    rows = await gw.pool.fetch(site_store.RESULTS, job_id, after_id, page_size + 1)
    if not rows and await job_store.get_job(gw.pool, job_id) is None:
        raise not_found(job_id)
    page = rows[:page_size]
    next_token = gw.page_tokens.encode(page[-1]["id"], filters) if len(rows) > page_size else None
    return json_response({"results": [site_store.result_view(r) for r in page], "next_page_token": next_token})
