"""Polite crawling across real worker processes (issue 16): robots.txt, Retry-After, 304s and proxies.

The assertions read the page server's log: which paths it saw, and the spacing of their arrivals."""

from __future__ import annotations

import itertools

import asyncpg
import pytest
from aiohttp import web

from gleaner.shared.amqp import Broker
from tests.integration.test_sites_support import LOCAL_WORKER_ENV, Hit, PageServer, add_site, pages
from tests.integration.test_worker_lifecycle import submit, wait_final
from tests.support.contract import checked_session
from tests.support.stack import Api, Stack

ROBOTS = "User-agent: *\nDisallow: /private\nCrawl-delay: 2\n"
# arrivals are logged by the server after the event loop picks them up: a few ms of jitter either way
JITTER_S = 0.1


@pytest.fixture
async def gateway(stack: Stack, api_factory: type[Api]) -> Api:
    return api_factory((await stack.start("gateway", GLEANER_FETCH_ALLOW_PRIVATE="1")).url)


async def with_robots(request: web.Request) -> web.StreamResponse:
    if request.path == "/robots.txt":
        return web.Response(text=ROBOTS)
    return await pages(request)


def gaps(hits: list[Hit]) -> list[float]:
    arrivals = sorted(h.started for h in hits)
    return [b - a for a, b in itertools.pairwise(arrivals)]


async def test_a_disallowed_path_is_never_requested_and_crawl_delay_spaces_two_workers(
    stack: Stack, db: asyncpg.Pool, broker: Broker, gateway: Api
) -> None:
    await add_site(db, "robotic", requests_per_hour=1e6, burst=100, min_delay_s=0.5)
    async with PageServer(with_robots) as server:
        await stack.start("worker", **LOCAL_WORKER_ENV)
        await stack.start("worker", **LOCAL_WORKER_ENV)
        urls = [f"{server.url}/ok/a", f"{server.url}/private/secret", f"{server.url}/ok/b"]
        [scrape] = await submit(db, broker, 1, "scrape.pages", {"urls": urls}, site="robotic")
        fetches = await submit(db, broker, 1, "http.fetch", {"url": f"{server.url}/private/x"}, site="robotic")
        for n in range(3):
            fetches += await submit(db, broker, 1, "http.fetch", {"url": f"{server.url}/ok/{n}"}, site="robotic")
        jobs = await wait_final(db, [scrape, *fetches], timeout_s=60)
    assert {j["state"] for j in jobs.values()} == {"succeeded"}, [j["error"] for j in jobs.values()]
    assert not [h.path for h in server.hits if h.path.startswith("/private")]
    assert len(server.hits) == 5
    # Crawl-delay 2 governs over min_delay_s 0.5, for both workers together
    assert min(gaps(server.hits)) >= 2.0 - JITTER_S, gaps(server.hits)
    result = jobs[scrape]["result"]
    assert (result["completed"], result["failed"], result["blocked_by_robots"]) == (2, 0, 1)
    assert jobs[fetches[0]]["result"]["blocked_by_robots"] is True
    status, listing = await gateway.request("GET", f"/jobs/{scrape}/results")
    assert status == 200
    blocked = [r for r in listing["results"] if r["blocked_by_robots"]]
    assert [(r["url"], r["status"], r["body_stored"]) for r in blocked] == [(urls[1], 0, False)]
    status, site = await gateway.request("GET", "/sites/robotic")
    assert status == 200
    state = site["state"]
    assert (state["crawl_delay_s"], state["effective_delay_s"], state["robots_blocked"]) == (2.0, 2.0, 2)
    assert state["effective_requests_per_hour"] == 1800.0
    assert 0 <= state["robots_age_s"] < 120


async def test_a_429_with_retry_after_pauses_the_site_on_every_worker(
    stack: Stack, db: asyncpg.Pool, broker: Broker
) -> None:
    answered: list[int] = []

    async def busy_once(request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/ok/") and not answered:
            answered.append(429)
            return web.Response(status=429, headers={"Retry-After": "3"})
        return await pages(request)

    # spaced by 0.5 s, so no request is on its way when the 429 comes back
    await add_site(db, "touchy", requests_per_hour=1e6, burst=100, min_delay_s=0.5)
    async with PageServer(busy_once) as server:
        await stack.start("worker", **LOCAL_WORKER_ENV)
        await stack.start("worker", **LOCAL_WORKER_ENV)
        ids = []
        for n in range(4):
            ids += await submit(db, broker, 1, "http.fetch", {"url": f"{server.url}/ok/{n}"}, site="touchy")
        jobs = await wait_final(db, ids, timeout_s=40)
    assert {j["state"] for j in jobs.values()} == {"succeeded"}, [j["error"] for j in jobs.values()]
    first, *rest = sorted(server.hits, key=lambda h: h.started)
    assert len(rest) == 4  # the page answered 429 was asked again
    assert min(h.started for h in rest) - first.ended >= 3.0, [h.started - first.ended for h in rest]
    site = await db.fetchrow("SELECT backoffs, backoff_until, backoff_failures FROM sites WHERE name = 'touchy'")
    assert site is not None and (site["backoffs"], site["backoff_failures"]) == (1, 0)
    assert site["backoff_until"] is not None


async def test_a_304_round_trip_stores_an_unchanged_page_without_a_body_and_adaptive_spacing_follows_latency(
    stack: Stack, db: asyncpg.Pool, broker: Broker
) -> None:
    body = b"<p>" + b"x" * 5000 + b"</p>"
    asked_with: list[str | None] = []

    async def etagged(request: web.Request) -> web.StreamResponse:
        if request.path == "/robots.txt":
            return web.Response(status=404)
        asked_with.append(request.headers.get("If-None-Match"))
        if request.headers.get("If-None-Match") == '"v1"':
            return web.Response(status=304, headers={"ETag": '"v1"'})
        return web.Response(
            body=body,
            content_type="text/html",
            headers={"ETag": '"v1"', "Last-Modified": "Mon, 30 Nov 2026 10:00:00 GMT"},
        )

    await add_site(db, "cached", requests_per_hour=1e6, burst=100, adaptive=True)
    async with PageServer(etagged) as server:
        await stack.start("worker", **LOCAL_WORKER_ENV)
        runs = []
        for _ in range(2):
            [job_id] = await submit(db, broker, 1, "http.fetch", {"url": f"{server.url}/page"}, site="cached")
            runs.append((await wait_final(db, [job_id]))[job_id])
    assert asked_with == [None, '"v1"']
    first, second = (r["result"] for r in runs)
    assert (first["status"], first["unchanged"], second["status"], second["unchanged"]) == (200, False, 304, True)
    rows = await db.fetch("SELECT status, unchanged, body_hash, content_hash, etag FROM scrape_results ORDER BY id")
    assert [(r["status"], r["unchanged"], r["body_hash"] is None, r["etag"]) for r in rows] == [
        (200, False, False, '"v1"'),
        (304, True, True, '"v1"'),
    ]
    assert rows[0]["content_hash"] == rows[1]["content_hash"]
    site = await db.fetchrow("SELECT bytes_saved, adaptive_delay_s FROM sites WHERE name = 'cached'")
    assert site is not None and site["bytes_saved"] == len(body)
    # adaptive: from the 1 s start, halfway towards the fast answers' latency twice
    assert 0 < site["adaptive_delay_s"] < 0.5


async def test_a_site_s_proxy_sees_its_requests_and_no_other_site_s(
    stack: Stack, db: asyncpg.Pool, broker: Broker, gateway: Api
) -> None:
    async def forward(request: web.Request) -> web.StreamResponse:
        async with checked_session() as session, session.get(str(request.url)) as answer:
            return web.Response(status=answer.status, body=await answer.read(), content_type=answer.content_type)

    async with PageServer(pages) as target, PageServer(forward) as proxy:
        status, via = await gateway.request("PUT", "/sites/via", json={"proxies": ["env:POLITE_TEST_PROXY"]})
        assert status == 201 and via["proxies"] == ["env:POLITE_TEST_PROXY"], via
        assert (await gateway.request("PUT", "/sites/direct", json={}))[0] == 201
        await stack.start("worker", POLITE_TEST_PROXY=proxy.url, **LOCAL_WORKER_ENV)
        ids = await submit(db, broker, 1, "http.fetch", {"url": f"{target.url}/ok/via"}, site="via")
        ids += await submit(db, broker, 1, "http.fetch", {"url": f"{target.url}/ok/direct"}, site="direct")
        jobs = await wait_final(db, ids, timeout_s=30)
        status, listing = await gateway.request("GET", "/sites")
    assert {j["state"] for j in jobs.values()} == {"succeeded"}, [j["error"] for j in jobs.values()]
    assert [h.path for h in proxy.hits] == ["/ok/via"] and [h.path for h in proxy.robots_hits] == ["/robots.txt"]
    assert sorted(h.path for h in target.hits) == ["/ok/direct", "/ok/via"]
    assert status == 200 and proxy.url not in str(listing)
