"""`gleaner report` and the `maintenance.report` kind: per site and kind the outcomes, success rate, durations, top
error classes and dead letters (seed 003's generate-report)."""

from __future__ import annotations

import asyncpg

from tests.support.stack import Api, Stack, eventually


async def test_a_report_shows_outcomes_error_classes_and_dead_letters_and_the_kind_stores_the_same(
    stack: Stack, api_factory: type[Api], db: asyncpg.Connection
) -> None:
    gateway = await stack.start("gateway")
    api = api_factory(gateway.url)
    await stack.start("worker")
    status, _ = await api.request("PUT", "/sites/b3", json={"requests_per_hour": 3600})
    assert status == 201
    jobs = [
        *[{"kind": "noop", "site": "b3"}] * 3,
        *[{"kind": "fail", "site": "b3", "payload": {"mode": "permanent"}}] * 2,
        {"kind": "fail", "payload": {"mode": "retryable"}, "max_attempts": 2, "retry_base_s": 0.1},
    ]
    for job in jobs:
        await api.submit(**job)
    await db.execute("INSERT INTO dead_letters (queue, reason, body) VALUES ('default', 'undecodable', '\\x00')")

    async def finished() -> bool:
        return bool(await db.fetchval("SELECT count(*) = 6 FROM jobs WHERE finished_at IS NOT NULL"))

    await eventually(finished, timeout_s=20, interval_s=0.1, what="the six jobs to finish")
    status, report = await api.request("GET", "/reports", params={"hours": "1"})
    assert status == 200 and report["hours"] == 1
    groups = {(g["site"], g["kind"]): g for g in report["groups"]}
    noop, failing, retried = groups[("b3", "noop")], groups[("b3", "fail")], groups[(None, "fail")]
    assert noop["states"]["succeeded"] == 3 and noop["success_rate"] == 1 and noop["duration_s"]["p50"] is not None
    assert failing["success_rate"] == 0 and failing["dead_letters"] == 2
    assert failing["error_classes"] == [{"error_class": "fail_permanent", "attempts": 2}]
    assert retried["error_classes"] == [{"error_class": "fail_retryable", "attempts": 2}]
    assert report["error_classes"] == [
        {"error_class": "fail_permanent", "attempts": 2},
        {"error_class": "fail_retryable", "attempts": 2},
    ]
    assert report["dead_letters"] == {"failed_jobs": 3, "messages": {"undecodable": 1}}

    env = {"GLEANER_API_URL": api.base_url}
    printed = await stack.run_cli("report", "--hours", "1", env=env)
    assert "error classes: fail_permanent (2), fail_retryable (2)" in printed
    assert "dead letters: 3 failed job(s); poison messages: undecodable 1" in printed
    header, *rows = printed.splitlines()[1:5]
    assert header.split()[:3] == ["SITE", "KIND", "JOBS"] and "DEAD" in header and "TOP ERRORS" in header
    assert any(row.split()[:3] == ["b3", "noop", "3"] for row in rows), rows

    stored = await api.submit(kind="maintenance.report", payload={"hours": 1})
    done = await api.job(stored["id"], wait="15")
    assert done["state"] == "succeeded", done
    result = done["result"]
    assert result["dead_letters"] == report["dead_letters"] and result["error_classes"] == report["error_classes"]
    assert {(g["site"], g["kind"]) for g in result["groups"]} >= set(groups)


async def test_the_six_hourly_report_schedule_is_installed_disabled(stack: Stack, api_factory: type[Api]) -> None:
    api = api_factory((await stack.start("gateway")).url)
    status, schedule = await api.request("GET", "/schedules/maintenance.report")
    assert status == 200 and schedule["enabled"] is False and schedule["cron"] == "0 */6 * * *"
    assert schedule["job"]["kind"] == "maintenance.report" and schedule["job"]["payload"] == {"hours": 6}
    status, enabled = await api.request("PATCH", "/schedules/maintenance.report", json={"enabled": True})
    assert status == 200 and enabled["enabled"] is True and enabled["next_fire_at"][14:19] == "00:00"
    assert int(enabled["next_fire_at"][11:13]) % 6 == 0
