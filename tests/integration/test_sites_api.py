"""/sites, /jobs/{id}/results and /stats on a real gateway process over real PostgreSQL (and a worker once)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from gleaner.services.gateway.auth import hash_key
from tests.integration.test_sites_support import LOCAL_WORKER_ENV, PageServer, pages
from tests.support.stack import Api, Stack

OFFICE = {"timezone": "America/New_York", "start": "09:00", "end": "17:00", "factor": 2.0}


@pytest.fixture
async def gateway(stack: Stack, api_factory: type[Api]) -> Api:
    # private addresses allowed: the fetch test submits URLs of a local page server
    service = await stack.start("gateway", GLEANER_FETCH_ALLOW_PRIVATE="1")
    return api_factory(service.url)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def test_a_site_is_created_then_replaced_keeping_its_live_state_and_is_listed(
    gateway: Api, db: asyncpg.Pool
) -> None:
    assert await gateway.request("GET", "/sites") == (200, {"sites": []})
    policy = {"requests_per_hour": 60, "burst": 2, "respectful_hours": OFFICE, "user_agent": "Polite/1"}
    status, created = await gateway.request("PUT", "/sites/shop", json=policy)
    assert status == 201, created
    assert {k: created[k] for k in policy} == {**policy, "requests_per_hour": 60.0}
    assert (created["name"], created["max_concurrency"], created["partial_error_ratio"]) == ("shop", None, 0.3)
    assert created["state"] == {
        "tokens_left": 2.0,
        "next_allowed_at": created["state"]["next_allowed_at"],
        "running_jobs": 0,
        "slots_held": 0,
        "requests_total": 0,
        "rate_limit_waits": 0,
        "deferrals": 0,
        "backoffs": 0,
        "bytes_saved": 0,
        "robots_blocked": 0,
        "backoff_until": None,
        "robots_age_s": None,
        "crawl_delay_s": None,
        "adaptive_delay_s": None,
        "effective_delay_s": 0.0,
        "effective_requests_per_hour": 60.0,
    }
    assert (created["robots"], created["adaptive"], created["proxies"]) == ("obey", False, [])
    # as workers would leave it: a request reserved ahead, the next one 30 s away, one job running in a slot
    await db.execute(
        "UPDATE sites SET tokens = -1, refilled_at = now(), next_request_at = now() + interval '30 s', "
        "requests_total = 7 WHERE name = 'shop'"
    )
    job_id = await db.fetchval(
        "INSERT INTO jobs (kind, queue, state, site) VALUES ('x', 'default', 'running', 'shop') RETURNING id"
    )
    await db.execute("INSERT INTO site_slots VALUES ('shop', $1, 1, 'w', now() + interval '1 min')", job_id)
    status, replaced = await gateway.request(
        "PUT", "/sites/shop", json={**created, "burst": 5, "respectful_hours": None}
    )
    assert status == 200, replaced
    assert (replaced["burst"], replaced["requests_per_hour"], replaced["respectful_hours"]) == (5, 60.0, None)
    state = replaced["state"]
    assert -1.0 <= state["tokens_left"] < 0 and (state["running_jobs"], state["slots_held"]) == (1, 1)
    assert utc(state["next_allowed_at"]) > datetime.now(UTC) + timedelta(seconds=20)
    assert state["requests_total"] == 7 and replaced["created_at"] == created["created_at"]
    status, listing = await gateway.request("GET", "/sites")
    assert status == 200 and [s["name"] for s in listing["sites"]] == ["shop"]
    status, fetched = await gateway.request("GET", "/sites/shop")
    assert status == 200 and {**fetched, "state": None} == {**replaced, "state": None}


async def test_bad_site_policies_are_422_problems_naming_each_field_and_store_nothing(
    gateway: Api, db: asyncpg.Pool
) -> None:
    body = {"burst": 0, "pause_min_s": 2, "pause_max_s": 1, "respectful_hours": {**OFFICE, "timezone": "Mars/Base"}}
    status, problem = await gateway.request("PUT", "/sites/shop", json={**body, "colour": "red"})
    assert status == 422, problem
    fields = {e["field"] for e in problem["errors"]}
    assert fields == {"burst", "pause_max_s", "respectful_hours.timezone", "colour"}
    status, problem = await gateway.request("PUT", "/sites/Not%20A%20Name", json={})
    assert status == 422 and [e["field"] for e in problem["errors"]] == ["name"]
    status, _ = await gateway.request("PUT", "/sites/shop", data=b"{", headers={"Content-Type": "application/json"})
    assert status == 400
    assert (await gateway.request("GET", "/sites/shop"))[0] == 404
    assert (await gateway.request("GET", "/sites/Not%20A%20Name"))[0] == 404
    assert await db.fetchval("SELECT count(*) FROM sites") == 0


async def test_only_an_admin_key_may_change_a_site_while_readers_may_look(gateway: Api, db: asyncpg.Pool) -> None:
    clients = {}
    for scopes in (["jobs:read"], ["jobs:read", "jobs:write"]):
        key = f"glk_test_{'_'.join(scopes)}"
        await db.execute("INSERT INTO api_keys (name, key_hash, scopes) VALUES ('t', $1, $2)", hash_key(key), scopes)
        clients[scopes[-1]] = Api(gateway.base_url.removesuffix("/api/v1"), token=key)
    try:
        for client in clients.values():
            assert (await client.request("PUT", "/sites/shop", json={}))[0] == 403
        assert (await gateway.request("PUT", "/sites/shop", json={}))[0] == 201
        for path in ("/sites", "/sites/shop", "/stats"):
            assert (await clients["jobs:read"].request("GET", path))[0] == 200
    finally:
        for client in clients.values():
            await client.close()


async def insert_result(db: asyncpg.Pool, job_id: int, url: str, **columns: Any) -> int:
    row = {"status": 200, "size": 3, "content_hash": "h1", "site": None, **columns}
    names = ", ".join(["job_id", "url", *row])
    marks = ", ".join(f"${n}" for n in range(1, len(row) + 3))
    return int(
        await db.fetchval(
            f"INSERT INTO scrape_results ({names}) VALUES ({marks}) RETURNING id", job_id, url, *row.values()
        )
    )


async def test_a_jobs_results_are_listed_oldest_first_in_pages_and_an_unknown_job_is_404(
    gateway: Api, db: asyncpg.Pool
) -> None:
    job = await gateway.submit(kind="noop", delay_s=3600)
    other = await gateway.submit(kind="noop", delay_s=3600)
    assert await gateway.request("GET", f"/jobs/{job['id']}/results") == (200, {"results": [], "next_page_token": None})
    ids = [await insert_result(db, job["id"], f"https://example.com/{n}", data={"n": n}) for n in range(5)]
    await insert_result(db, other["id"], "https://example.com/other")
    seen: list[dict[str, Any]] = []
    params: dict[str, Any] = {"page_size": 2}
    while True:
        status, page = await gateway.request("GET", f"/jobs/{job['id']}/results", params=params)
        assert status == 200, page
        seen += page["results"]
        if page["next_page_token"] is None:
            break
        params["page_token"] = page["next_page_token"]
    assert [r["id"] for r in seen] == ids and [r["data"] for r in seen] == [{"n": n} for n in range(5)]
    assert seen[0]["url"] == "https://example.com/0" and seen[0]["body_stored"] is False
    assert seen[0]["fetched_at"].endswith("Z") and seen[0]["unchanged"] is False
    status, problem = await gateway.request(
        "GET", f"/jobs/{other['id']}/results", params={"page_token": params["page_token"]}
    )
    assert status == 422 and problem["errors"][0]["field"] == "page_token"
    assert (await gateway.request("GET", "/jobs/999999/results"))[0] == 404
    assert (await gateway.request("GET", f"/jobs/{job['id']}/results", params={"page_size": 0}))[0] == 422


async def add_job(db: asyncpg.Pool, kind: str, state: str, site: str | None = None, **ago_s: float) -> int:
    """A job row; `finished=s` and `started=s` put those instants s seconds before now."""
    started, finished = ago_s.get("started"), ago_s.get("finished")
    return int(
        await db.fetchval(
            "INSERT INTO jobs (kind, queue, state, site, attempt_started_at, finished_at, deferrals) "
            "VALUES ($1, 'default', $2, $3, now() - make_interval(secs => $4), now() - make_interval(secs => $5), 1) "
            "RETURNING id",
            kind,
            state,
            site,
            started,
            finished,
        )
    )


async def test_stats_count_jobs_by_site_and_kind_over_the_window(gateway: Api, db: asyncpg.Pool) -> None:
    assert (await gateway.request("PUT", "/sites/shop", json={}))[0] == 201
    await db.execute("UPDATE sites SET requests_total = 9, rate_limit_waits = 4, deferrals = 2")
    runs = [await add_job(db, "scrape.pages", "succeeded", "shop", started=s, finished=0) for s in (1, 2, 3)]
    await add_job(db, "scrape.pages", "failed", "shop", started=4, finished=0)
    old = await add_job(db, "scrape.pages", "succeeded", "shop", started=7201, finished=7200)
    for state in ("queued", "queued", "running"):
        await add_job(db, "noop", state)
    await add_job(db, "noop", "cancelled", finished=10)
    for n in range(4):
        await insert_result(db, runs[0], f"https://shop.example/{n}", site="shop", unchanged=n == 0)
    await insert_result(
        db, old, "https://shop.example/old", site="shop", fetched_at=datetime.now(UTC) - timedelta(hours=2)
    )

    status, stats = await gateway.request("GET", "/stats")
    assert status == 200, stats
    assert stats["window_s"] == 3600 and utc(stats["until"]) - utc(stats["since"]) == timedelta(hours=1)
    noop, shop = stats["groups"]
    assert (noop["site"], noop["kind"], noop["jobs"], noop["success_rate"]) == (None, "noop", 4, None)
    assert {s: n for s, n in noop["states"].items() if n} == {"queued": 2, "running": 1, "cancelled": 1}
    assert (shop["site"], shop["kind"], shop["jobs"], shop["success_rate"]) == ("shop", "scrape.pages", 4, 0.75)
    assert {s: n for s, n in shop["states"].items() if n} == {"succeeded": 3, "failed": 1}
    assert shop["duration_s"] == {"p50": pytest.approx(2.5), "p95": pytest.approx(3.85)}
    assert (shop["pages_fetched"], shop["pages_unchanged"], shop["deferrals"]) == (4, 1, 4)
    # the totals are since the site was created; nothing was counted per minute yet
    assert stats["sites"] == [
        {
            "name": "shop",
            "requests_total": 9,
            "rate_limit_waits": 4,
            "deferrals": 2,
            "in_window": {"requests": 0, "rate_limit_waits": 0, "deferrals": 0},
        }
    ]

    _, wider = await gateway.request("GET", "/stats", params={"window_s": 3 * 3600, "site": "shop"})
    [shop] = wider["groups"]
    assert (shop["jobs"], shop["states"]["succeeded"], shop["pages_fetched"]) == (5, 4, 5)
    since = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    _, recent = await gateway.request("GET", "/stats", params={"since": since, "kind": "noop"})
    assert [(g["kind"], g["jobs"]) for g in recent["groups"]] == [("noop", 4)] and recent["since"].endswith("Z")
    status, problem = await gateway.request("GET", "/stats", params={"window_s": "0", "since": "soon"})
    assert status == 422 and {e["field"] for e in problem["errors"]} == {"window_s", "since"}


# 15,000 finished jobs over the last 50 minutes (more than the stats read exactly), durations 0.1 s to 1.0 s
MANY_FINISHED = """
INSERT INTO jobs (kind, queue, state, attempt_started_at, finished_at, deferrals)
SELECT 'bulk', 'default', CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'succeeded' END,
       t - make_interval(secs => 0.1 + (i % 10) / 10.0), t, i % 3
FROM generate_series(1, 15000) AS i, LATERAL (SELECT now() - make_interval(secs => i * 0.2)) AS s(t)
"""
EXACT_BULK = """
SELECT count(*) FILTER (WHERE state = 'succeeded') AS succeeded, count(*) FILTER (WHERE state = 'failed') AS failed,
       count(*) FILTER (WHERE state = 'queued') AS queued, sum(deferrals) AS deferrals,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM (finished_at - attempt_started_at))) AS p50,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM (finished_at - attempt_started_at))) AS p95
FROM jobs WHERE kind = 'bulk' AND (finished_at >= $1 OR state = 'queued')
"""


async def test_stats_over_many_jobs_come_from_the_per_minute_counts_and_agree_with_the_jobs(
    gateway: Api, db: asyncpg.Pool
) -> None:
    await db.execute(MANY_FINISHED)
    # a requeue and a prune take jobs out of the minutes they finished in
    await db.execute("UPDATE jobs SET state = 'queued', finished_at = NULL WHERE kind = 'bulk' AND id % 7 = 0")
    await db.execute("DELETE FROM jobs WHERE kind = 'bulk' AND id % 11 = 0")
    finished = await db.fetchval("SELECT count(*) FROM jobs WHERE kind = 'bulk' AND finished_at IS NOT NULL")
    assert finished > 10_000 and await db.fetchval("SELECT sum(jobs) FROM job_minutes") == finished
    assert await db.fetchval("SELECT sum(jobs) FROM job_hours") == finished

    status, stats = await gateway.request("GET", "/stats", params={"kind": "bulk"})
    assert status == 200, stats
    [group] = stats["groups"]
    exact = await db.fetchrow(EXACT_BULK, utc(stats["since"]))
    assert exact is not None
    assert {s: n for s, n in group["states"].items() if n} == {
        "succeeded": exact["succeeded"],
        "failed": exact["failed"],
        "queued": exact["queued"],
    }
    assert group["deferrals"] == exact["deferrals"]
    # percentiles from the 2^(1/8)-wide duration buckets
    assert group["duration_s"] == {
        "p50": pytest.approx(exact["p50"], rel=0.05),
        "p95": pytest.approx(exact["p95"], rel=0.05),
    }


async def test_a_policy_put_through_the_api_governs_the_next_job_whose_pages_show_in_results_and_stats(
    stack: Stack, gateway: Api
) -> None:
    async with PageServer(pages) as server:
        await stack.start("worker", **LOCAL_WORKER_ENV)
        finished = []
        for agent in ("Polite/1", "Polite/2"):
            assert (await gateway.request("PUT", "/sites/web", json={"burst": 5, "user_agent": agent}))[0] in (200, 201)
            job = await gateway.submit(kind="http.fetch", payload={"url": f"{server.url}/static"}, site="web")
            finished.append(await gateway.job(job["id"], wait=15))
        assert [h.user_agent for h in server.hits] == ["Polite/1", "Polite/2"]
    assert [j["state"] for j in finished] == ["succeeded", "succeeded"]
    results = [(await gateway.request("GET", f"/jobs/{j['id']}/results"))[1]["results"] for j in finished]
    assert [[r["unchanged"] for r in page] for page in results] == [[False], [True]]
    assert results[0][0]["url"] == f"{server.url}/static" and results[0][0]["body_stored"] is True
    _, stats = await gateway.request("GET", "/stats", params={"site": "web"})
    [group] = stats["groups"]
    assert (group["kind"], group["states"]["succeeded"], group["success_rate"]) == ("http.fetch", 2, 1.0)
    assert (group["pages_fetched"], group["pages_unchanged"]) == (2, 1) and group["duration_s"]["p95"] is not None
    assert stats["sites"][0]["in_window"] == {"requests": 2, "rate_limit_waits": 0, "deferrals": 0}
    _, site = await gateway.request("GET", "/sites/web")
    assert site["state"]["requests_total"] == 2 and site["user_agent"] == "Polite/2"


async def test_site_counters_in_stats_count_only_the_minutes_inside_the_window(gateway: Api, db: asyncpg.Pool) -> None:
    for name in ("shop", "news"):
        assert (await gateway.request("PUT", f"/sites/{name}", json={}))[0] == 201
    minutes = [(0, 5, 2, 1), (30, 7, 3, 0), (90, 11, 5, 4)]  # minutes ago, requests, waits, deferrals
    for ago, requests, waits, deferrals in minutes:
        await db.execute(
            "INSERT INTO site_minutes (site, minute, requests, rate_limit_waits, deferrals) "
            "VALUES ('shop', date_trunc('minute', now()) - make_interval(mins => $1), $2, $3, $4)",
            ago,
            requests,
            waits,
            deferrals,
        )

    _, hour = await gateway.request("GET", "/stats")
    _, day = await gateway.request("GET", "/stats", params={"window_s": 86_400, "site": "shop"})
    since = (datetime.now(UTC) - timedelta(minutes=45)).isoformat()
    _, recent = await gateway.request("GET", "/stats", params={"since": since, "site": "shop"})

    by_name = {s["name"]: s["in_window"] for s in hour["sites"]}
    assert by_name == {
        "news": {"requests": 0, "rate_limit_waits": 0, "deferrals": 0},
        "shop": {"requests": 12, "rate_limit_waits": 5, "deferrals": 1},
    }
    assert [s["in_window"] for s in day["sites"]] == [{"requests": 23, "rate_limit_waits": 10, "deferrals": 5}]
    assert [s["in_window"] for s in recent["sites"]] == [{"requests": 12, "rate_limit_waits": 5, "deferrals": 1}]
