"""Seed 003's `task_soft_time_limit`: a job's `soft_timeout_s` raises `gleaner.SoftTimeLimitExceeded` in the
handler, run by a real worker; a handler that ignores it is still stopped at `timeout_s`."""

from __future__ import annotations

from tests.e2e.test_lifecycle import wait_state
from tests.support.stack import Api, Stack


async def test_a_soft_time_limit_lets_the_handler_save_its_work_and_the_hard_one_still_stops_it(
    stack: Stack, gateway_api: Api
) -> None:
    await stack.start("worker", args=["--handlers", "tests.support.soft_limits"])

    status, problem = await gateway_api.request(
        "POST", "/jobs", json={"kind": "soft.save", "timeout_s": 5, "soft_timeout_s": 5}
    )
    assert (status, [e["field"] for e in problem["errors"]]) == (422, ["soft_timeout_s"])

    saved = await gateway_api.submit(kind="soft.save", timeout_s=30, soft_timeout_s=0.5)
    assert saved["soft_timeout_s"] == 0.5
    ignored = await gateway_api.submit(kind="soft.ignore", timeout_s=1.5, soft_timeout_s=0.3, max_attempts=1)
    by_kind = await gateway_api.submit(kind="soft.kind_default", timeout_s=30)

    done = await wait_state(gateway_api, saved["id"])
    assert done["state"] == "partial"
    assert done["result"]["stopped_by"] == "soft_time_limit" and done["result"]["ticks"] >= 1

    stopped = await wait_state(gateway_api, ignored["id"])
    assert (stopped["state"], stopped["progress"]) == ("failed", {"soft_limit_seen": True})
    _, attempts = await gateway_api.request("GET", f"/jobs/{ignored['id']}/attempts")
    assert attempts["attempts"][0]["error_class"] == "timeout"

    default = await wait_state(gateway_api, by_kind["id"])
    assert (default["state"], default["result"], default["soft_timeout_s"]) == (
        "succeeded",
        {"soft_timeout_s": 0.5},
        None,
    )


async def test_a_schedule_template_carries_its_soft_time_limit_to_the_jobs_it_fires(
    stack: Stack, gateway_api: Api
) -> None:
    await stack.start("worker", args=["--handlers", "tests.support.soft_limits"])
    template = {"kind": "soft.save", "timeout_s": 30, "soft_timeout_s": 0.3}
    status, schedule = await gateway_api.request(
        "POST", "/schedules", json={"name": "soft", "interval_s": 3600, "job": template}
    )
    assert status == 201, schedule
    status, fired = await gateway_api.request("POST", f"/schedules/{schedule['id']}/trigger")
    assert status < 300 and fired["trigger"] == "manual", fired

    done = await wait_state(gateway_api, fired["id"])
    assert (done["state"], done["soft_timeout_s"]) == ("partial", 0.3)
