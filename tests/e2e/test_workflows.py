"""Workflows end to end (issue 14): dependencies, their release, batch `then` callbacks and cancelling a tree."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson
from aiohttp import web

from gleaner import AsyncClient
from tests.e2e.test_lifecycle import wait_state
from tests.integration.test_sites_support import LOCAL_WORKER_ENV, PageServer
from tests.support.contract import CheckedAsyncTransport
from tests.support.services import ADMIN_TOKEN
from tests.support.stack import Api, Stack, eventually


async def submit(api: Api, **job: Any) -> dict[str, Any]:
    status, body = await api.request("POST", "/jobs", json=job)
    assert status == 202, body
    return dict(body)


async def attempts_of(db: asyncpg.Connection, ids: list[int]) -> dict[int, int]:
    rows = await db.fetch(
        "SELECT j.id, count(a.job_id) AS n FROM jobs AS j LEFT JOIN job_attempts AS a ON a.job_id = j.id "
        "WHERE j.id = ANY($1::bigint[]) GROUP BY j.id",
        ids,
    )
    return {r["id"]: r["n"] for r in rows}


async def test_a_chain_a_b_c_runs_in_order_each_once(stack: Stack, gateway_api: Api, db: asyncpg.Connection) -> None:
    a = await submit(gateway_api, kind="sleep", payload={"seconds": 0.3})
    b = await submit(gateway_api, kind="sleep", payload={"seconds": 0.1}, depends_on=[a["id"]])
    c = await submit(gateway_api, kind="noop", depends_on=[b["id"]])
    assert (b["state"], b["blocked_on"], b["depends_on"]) == ("blocked", 1, [a["id"]])
    assert c["state"] == "blocked"
    status, listed = await gateway_api.request("GET", "/jobs", params={"state": "blocked"})
    assert status == 200
    assert {j["id"] for j in listed["jobs"]} == {b["id"], c["id"]}
    await stack.start("worker")
    await stack.start("scheduler")
    done = [await wait_state(gateway_api, job["id"]) for job in (a, b, c)]
    assert [j["state"] for j in done] == ["succeeded"] * 3
    assert done[0]["finished_at"] <= done[1]["started_at"]
    assert done[1]["finished_at"] <= done[2]["started_at"]
    assert set((await attempts_of(db, [j["id"] for j in done])).values()) == {1}
    status, deps = await gateway_api.request("GET", f"/jobs/{c['id']}/dependencies")
    assert status == 200
    assert [(j["id"], j["dependency_outcome"]) for j in deps["jobs"]] == [(b["id"], "succeeded")]


async def test_a_failed_dependency_cancels_the_chain_unless_it_runs_anyway(stack: Stack, gateway_api: Api) -> None:
    a = await submit(gateway_api, kind="fail", payload={"mode": "permanent"}, max_attempts=1)
    b = await submit(gateway_api, kind="noop", depends_on=[a["id"]])
    c = await submit(gateway_api, kind="noop", depends_on=[b["id"]])
    b_run = await submit(gateway_api, kind="noop", depends_on=[a["id"]], on_dependency_failure="run")
    c_run = await submit(gateway_api, kind="noop", depends_on=[b_run["id"]])
    await stack.start("worker")
    await stack.start("scheduler")
    assert (await wait_state(gateway_api, a["id"]))["state"] == "failed"
    cancelled_b, cancelled_c = await wait_state(gateway_api, b["id"]), await wait_state(gateway_api, c["id"])
    assert (cancelled_b["state"], cancelled_b["attempt"]) == ("cancelled", 0)
    assert cancelled_b["error"] == {"class": "DependencyFailed", "message": f"dependency {a['id']} ended failed"}
    assert cancelled_c["error"]["message"] == f"dependency {b['id']} ended cancelled"
    assert (await wait_state(gateway_api, b_run["id"]))["state"] == "succeeded"
    assert (await wait_state(gateway_api, c_run["id"]))["state"] == "succeeded"
    late = await submit(gateway_api, kind="noop", depends_on=[a["id"]])
    assert (late["state"], late["error"]["class"]) == ("cancelled", "DependencyFailed")


async def test_a_thousand_jobs_waiting_for_one_are_each_released_once(
    stack: Stack, gateway_api: Api, db: asyncpg.Connection
) -> None:
    gate = await submit(gateway_api, kind="sleep", payload={"seconds": 0.5})
    status, batch = await gateway_api.request(
        "POST", "/jobs/batch", json={"jobs": [{"kind": "noop", "depends_on": [gate["id"]]}] * 1000}
    )
    assert status == 202
    ids = [j["id"] for j in batch["jobs"]]
    assert {j["state"] for j in batch["jobs"]} == {"blocked"}
    await stack.start("worker", GLEANER_WORKER_CONCURRENCY="32")
    await stack.start("scheduler")

    async def all_done() -> bool:
        count = await db.fetchval("SELECT count(*) FROM jobs WHERE id = ANY($1::bigint[]) AND state = 'succeeded'", ids)
        return count == len(ids)

    await eventually(all_done, timeout_s=90, interval_s=0.5, what="1,000 dependents succeeded")
    assert set((await attempts_of(db, ids)).values()) == {1}
    assert await db.fetchval("SELECT max(attempt) FROM jobs WHERE id = ANY($1::bigint[])", ids) == 1


async def test_unknown_dependencies_are_a_422_naming_them(gateway_api: Api) -> None:
    status, body = await gateway_api.request("POST", "/jobs", json={"kind": "noop", "depends_on": [987654321]})
    assert status == 422
    assert body["errors"] == [{"field": "depends_on", "message": "job 987654321 does not exist"}]
    status, body = await gateway_api.request(
        "POST", "/jobs/batch", json={"jobs": [{"kind": "noop"}, {"kind": "noop", "depends_on": [1, 1]}]}
    )
    assert status == 422
    assert body["errors"][0]["field"] == "jobs[1].depends_on"
    status, listed = await gateway_api.request("GET", "/jobs")
    assert listed["jobs"] == []


async def test_a_batch_then_callback_gets_the_ids_and_outcome_counts(stack: Stack, gateway_api: Api) -> None:
    jobs = [{"kind": "noop"}] * 3 + [{"kind": "fail", "payload": {"mode": "permanent"}, "max_attempts": 1}]
    status, batch = await gateway_api.request("POST", "/jobs/batch", json={"jobs": jobs, "then": {"kind": "noop"}})
    assert status == 202, batch
    then = batch["then"]
    ids = sorted(j["id"] for j in batch["jobs"])
    assert (then["state"], then["depends_on"], then["blocked_on"]) == ("blocked", ids, 4)
    await stack.start("worker")
    await stack.start("scheduler")
    done = await wait_state(gateway_api, then["id"])
    assert done["state"] == "succeeded"
    assert done["result"]["dependencies"] == {
        "job_ids": ids,
        "outcomes": {"succeeded": 3, "failed": 1},
        "kinds": {"noop": {"succeeded": 3}, "fail": {"failed": 1}},
    }


async def test_cancelling_a_tree_cancels_the_blocked_dependents_too(gateway_api: Api) -> None:
    a = await submit(gateway_api, kind="noop", delay_s=3600)
    b = await submit(gateway_api, kind="noop", depends_on=[a["id"]], on_dependency_failure="run")
    c = await submit(gateway_api, kind="noop", depends_on=[b["id"]], on_dependency_failure="run")
    status, body = await gateway_api.request("POST", f"/jobs/{a['id']}/cancel", params={"tree": "true"})
    assert (status, body["state"]) == (200, "cancelled")
    states = [(await gateway_api.job(j["id"]))["state"] for j in (b, c)]
    assert states == ["cancelled", "cancelled"]
    status, body = await gateway_api.request("POST", f"/jobs/{a['id']}/cancel", params={"tree": "maybe"})
    assert status == 422


def shop(request: web.Request) -> web.Response:
    """A shop of 10 categories of 10 products each, at /, /c/<n> and /p/<n>/<m>."""
    parts = request.path.strip("/").split("/")
    if parts == [""]:
        body = "".join(f'<a class="category" href="/c/{n}">c{n}</a>' for n in range(10))
    elif parts[0] == "c":
        body = "".join(f'<a class="product" href="/p/{parts[1]}/{m}">p</a>' for m in range(10))
    elif parts[0] == "p":
        body = f'<h1 class="name">product {parts[1]}.{parts[2]}</h1>'
    else:
        return web.Response(status=404)
    return web.Response(text=body, content_type="text/html")


async def serve_shop(request: web.Request) -> web.StreamResponse:
    return shop(request)


async def test_a_three_level_crawl_ends_with_a_callback_counting_100_products_and_no_duplicates(
    stack: Stack, api_factory: type[Api], db: asyncpg.Connection
) -> None:
    gateway = await stack.start("gateway", GLEANER_FETCH_ALLOW_PRIVATE="1")
    gateway_api = api_factory(gateway.url)
    async with PageServer(serve_shop) as server:
        await stack.start("worker", **LOCAL_WORKER_ENV, GLEANER_HANDLER_MODULES="examples.jobboard.crawl")
        await stack.start("scheduler")
        navigation = {
            "kind": "crawl.navigation",
            "payload": {"start_url": f"{server.url}/", "retry_once_after": 5},
            "retry_base_s": 0.1,
        }
        status, batch = await gateway_api.request(
            "POST", "/jobs/batch", json={"jobs": [navigation], "then": {"kind": "crawl.report"}}
        )
        assert status == 202, batch
        report = await wait_state(gateway_api, batch["then"]["id"], timeout_s=90)
    assert report["state"] == "succeeded"
    assert report["result"] == {"succeeded": {"navigation": 1, "category": 10, "product": 100}, "products": 100}
    root = batch["jobs"][0]["id"]
    assert (await gateway_api.job(root))["attempt"] == 2
    kinds = await db.fetch("SELECT kind, count(*) AS n, count(DISTINCT payload) AS d FROM jobs GROUP BY kind")
    assert {r["kind"]: (r["n"], r["d"]) for r in kinds} == {
        "crawl.navigation": (1, 1),
        "crawl.category": (10, 10),
        "crawl.product": (100, 100),
        "crawl.report": (1, 1),
    }
    status, children = await gateway_api.request("GET", f"/jobs/{root}/children", params={"page_size": 6})
    assert status == 200
    assert len(children["jobs"]) == 6 and children["next_page_token"] is not None
    assert {j["parent_id"] for j in children["jobs"]} == {root}
    status, rest = await gateway_api.request(
        "GET", f"/jobs/{root}/children", params={"page_size": 6, "page_token": children["next_page_token"]}
    )
    assert len(rest["jobs"]) == 4 and rest["next_page_token"] is None
    category = children["jobs"][0]["id"]
    status, listed = await gateway_api.request("GET", "/jobs", params={"parent_id": str(category)})
    assert {j["kind"] for j in listed["jobs"]} == {"crawl.product"} and len(listed["jobs"]) == 10
    status, deps = await gateway_api.request(
        "GET", f"/jobs/{batch['then']['id']}/dependencies", params={"page_size": 500}
    )
    assert len(deps["jobs"]) == 111
    shown = await stack.run_cli("jobs", "show", str(root), env={"GLEANER_API_URL": f"{gateway.url}/api/v1"})
    tree = shown.split("tree:\n")[1].splitlines()
    assert tree[0] == f"{root} crawl.navigation succeeded"
    oldest = min(j["id"] for j in children["jobs"] + rest["jobs"])
    assert tree[1] == f"└ {oldest} crawl.category succeeded" and tree[2].startswith("  └ ")
    assert sum(line.startswith("└ ") for line in tree) == 10
    assert sum(line.startswith("  └ ") and "crawl.product succeeded" in line for line in tree) == 100


async def test_the_python_client_submits_a_batch_with_then_and_reads_the_tree(stack: Stack) -> None:
    gateway = await stack.start("gateway")
    async with AsyncClient(f"{gateway.url}/api/v1", ADMIN_TOKEN, transport=CheckedAsyncTransport()) as client:
        first, second, then = await client.jobs.submit_many(
            [{"kind": "noop", "delay_s": 3600}, {"kind": "noop", "delay_s": 3600}], then={"kind": "noop"}
        )
        assert (then.state, then.depends_on, then.blocked_on) == ("blocked", (first.id, second.id), 2)
        waiting = await client.jobs.submit("noop", depends_on=[first.id], on_dependency_failure="run")
        assert [j.id async for j in client.jobs.dependencies(then.id)] == [second.id, first.id]
        assert [j.id async for j in client.jobs.children(first.id)] == []
        assert [j.id async for j in client.jobs.list(state="blocked")] == [waiting.id, then.id]
        cancelled = await client.jobs.cancel(first.id, tree=True)
        assert cancelled.state == "cancelled"
        assert (await client.jobs.get(waiting.id)).state == "cancelled"
        assert (await client.jobs.get(then.id)).state == "cancelled"
        assert (await client.jobs.get(second.id)).state == "scheduled"


async def test_every_source_then_the_report_is_one_schedule(
    stack: Stack, gateway_api: Api, db: asyncpg.Connection
) -> None:
    await stack.start("worker")
    await stack.start("scheduler")
    job = {
        "kind": "noop",
        "fan_out": {"key": "source", "values": ["b3", "binance", "fundamentus"]},
        "then": {"kind": "noop", "payload": {"report": "daily"}},
    }
    body = {"name": "sources-then-report", "interval_s": 1, "jitter": 0, "job": job}
    status, schedule = await gateway_api.request("POST", "/schedules", json=body)
    assert status == 201, schedule
    assert schedule["job"]["then"] == {"kind": "noop", "payload": {"report": "daily"}}

    async def two_reports() -> list[asyncpg.Record] | None:
        rows = await db.fetch(
            "SELECT id, scheduled_for, result FROM jobs WHERE schedule_id = $1 AND fan_index = -1 "
            "AND state = 'succeeded' AND scheduled_for IS NOT NULL",
            schedule["id"],
        )
        return rows if len(rows) >= 2 else None

    reports = await eventually(two_reports, timeout_s=30, interval_s=0.2, what="two slots' reports")
    status, _ = await gateway_api.request("POST", f"/schedules/{schedule['id']}/pause")
    assert status == 200
    for report in reports:
        sources = await db.fetch(
            "SELECT id FROM jobs WHERE schedule_id = $1 AND scheduled_for = $2 AND fan_index >= 0 ORDER BY id",
            schedule["id"],
            report["scheduled_for"],
        )
        result = orjson.loads(report["result"]) if isinstance(report["result"], str) else report["result"]
        assert result["report"] == "daily"
        assert result["dependencies"]["job_ids"] == [r["id"] for r in sources]
        assert result["dependencies"]["outcomes"] == {"succeeded": 3}
    status, bad = await gateway_api.request(
        "POST", "/schedules", json=body | {"name": "nested", "job": job | {"then": {"kind": "noop", "then": {}}}}
    )
    assert (status, bad["errors"][0]["field"]) == (422, "job.then.then")
