"""Scrape handlers against a local page server: page counts, unchanged re-fetches, the example plugin."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from gleaner.shared.amqp import Broker
from tests.integration.test_sites_support import LOCAL_WORKER_ENV, PageServer, add_site, pages
from tests.integration.test_worker_lifecycle import insert_jobs, publish, submit, wait_final
from tests.support.stack import Stack


def page_list(base: str, failing: int) -> list[str]:
    return [f"{base}/{'fail' if n < failing else 'ok'}/{n}" for n in range(10)]


async def test_scrape_pages_is_partial_with_two_of_ten_failed_and_failed_with_five(
    stack: Stack, db: asyncpg.Pool, broker: Broker
) -> None:
    await add_site(db, "shop", requests_per_hour=1e6, burst=50, pause_min_s=0.01, pause_max_s=0.02, user_agent="Polite")
    async with PageServer(pages) as server:
        await stack.start("worker", **LOCAL_WORKER_ENV)
        [two] = await submit(db, broker, 1, "scrape.pages", {"urls": page_list(server.url, 2)}, site="shop")
        [five] = await submit(db, broker, 1, "scrape.pages", {"urls": page_list(server.url, 5)}, site="shop")
        jobs = await wait_final(db, [two, five], timeout_s=20)
        assert {h.user_agent for h in server.hits} == {"Polite"}
    partial, failed = jobs[two], jobs[five]
    assert partial["state"] == "partial"
    counts = {k: partial["result"][k] for k in ("requested", "completed", "failed")}
    assert counts == {"requested": 10, "completed": 8, "failed": 2}
    assert {e["class"] for e in partial["result"]["errors"]} == {"http_404"}
    assert (failed["state"], failed["error"]["class"]) == ("failed", "too_many_page_failures")
    assert {k: failed["progress"][k] for k in ("requested", "completed", "failed")} == {
        "requested": 10,
        "completed": 5,
        "failed": 5,
    }
    assert await db.fetchval("SELECT count(*) FROM scrape_results WHERE job_id = $1", two) == 8


async def test_an_unchanged_refetch_is_marked_unchanged_and_stores_no_second_body(
    stack: Stack, db: asyncpg.Pool, broker: Broker
) -> None:
    async with PageServer(pages) as server:
        await stack.start("worker", **LOCAL_WORKER_ENV)
        runs = []
        for path in ("/static", "/static", "/changing"):
            [job_id] = await submit(db, broker, 1, "http.fetch", {"url": server.url + path})
            runs.append((await wait_final(db, [job_id]))[job_id])
    first, second, other = (r["result"] for r in runs)
    assert (first["unchanged"], second["unchanged"], other["unchanged"]) == (False, True, False)
    assert first["content_hash"] == second["content_hash"] != other["content_hash"]
    assert first["status"] == 200 and first["size"] == len(b"<p>always the same</p>")
    assert await db.fetchval("SELECT count(*) FROM scrape_results") == 3
    assert await db.fetchval("SELECT count(*) FROM scrape_bodies") == 2
    rows = await db.fetch("SELECT unchanged, body_hash FROM scrape_results WHERE url LIKE '%/static' ORDER BY id")
    assert [r["unchanged"] for r in rows] == [False, True]
    assert rows[0]["body_hash"] == rows[1]["body_hash"] == first["content_hash"]


async def board(request: web.Request) -> web.StreamResponse:
    page = int(request.query.get("page", "1"))
    titles = "".join(f'<li><h2 class="job-title">Job {page}.{n}</h2></li>' for n in range(3))
    more = f'<a rel="next" href="/jobs?page={page + 1}">next</a>' if page < 3 else ""
    return web.Response(text=f"<html><body><ul>{titles}</ul>{more}</body></html>", content_type="text/html")


async def test_the_example_job_board_plugin_loads_from_configuration_and_follows_pagination(
    stack: Stack, db: asyncpg.Pool, broker: Broker
) -> None:
    await add_site(db, "board", requests_per_hour=1e6, burst=10)
    async with PageServer(board) as server:
        await stack.start("worker", GLEANER_HANDLER_MODULES="examples.jobboard.scraper", **LOCAL_WORKER_ENV)
        [job_id] = await submit(db, broker, 1, "jobboard.scrape", {"start_url": f"{server.url}/jobs"}, site="board")
        job = (await wait_final(db, [job_id]))[job_id]
    assert job["state"] == "succeeded", job["error"]
    assert job["result"]["pages"] == 3
    assert job["result"]["titles"] == [f"Job {p}.{n}" for p in (1, 2, 3) for n in range(3)]
    rows = await db.fetch("SELECT url, data, body_hash FROM scrape_results WHERE job_id = $1 ORDER BY id", job_id)
    assert [r["data"]["titles"][0] for r in rows] == ["Job 1.0", "Job 2.0", "Job 3.0"]
    assert all(r["body_hash"] is None for r in rows)


async def test_a_rerun_of_scrape_pages_skips_the_pages_it_stored_before(
    stack: Stack, db: asyncpg.Pool, broker: Broker
) -> None:
    async with PageServer(pages) as server:
        urls = page_list(server.url, 0)
        [job_id] = await insert_jobs(db, 1, "scrape.pages", {"urls": urls})
        # as a deferred or retried earlier attempt would have left them
        for url in urls[:4]:
            await db.execute(
                "INSERT INTO scrape_results (job_id, url, status, size, content_hash) VALUES ($1, $2, 200, 1, 'h')",
                job_id,
                url,
            )
        await stack.start("worker", **LOCAL_WORKER_ENV)
        await publish(db, broker, [job_id])
        job = (await wait_final(db, [job_id]))[job_id]
    assert job["state"] == "succeeded"
    assert (job["result"]["requested"], job["result"]["completed"]) == (10, 10)
    assert sorted(h.path for h in server.hits) == sorted(f"/ok/{n}" for n in range(4, 10))


async def test_a_job_naming_an_unknown_site_fails_at_once_without_a_request(
    stack: Stack, db: asyncpg.Pool, broker: Broker
) -> None:
    async with PageServer(pages) as server:
        await stack.start("worker", **LOCAL_WORKER_ENV)
        [job_id] = await submit(db, broker, 1, "http.fetch", {"url": f"{server.url}/ok/1"}, site="nosuch")
        job = (await wait_final(db, [job_id]))[job_id]
        assert server.hits == []
    assert (job["state"], job["attempt"], job["error"]["class"]) == ("failed", 1, "unknown_site")
