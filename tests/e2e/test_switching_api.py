"""What teams switching from the seed systems asked of the API: schedules by name with descriptions and seconds,
named priorities, the scheduler's settings, waiting jobs per priority band (issue 17)."""

from __future__ import annotations

import itertools
from datetime import datetime

from tests.support.stack import Api, Stack, eventually


async def test_every_schedule_route_takes_the_name_and_a_schedule_keeps_its_description(
    stack: Stack, api_factory: type[Api]
) -> None:
    api = api_factory((await stack.start("gateway")).url)
    body = {
        "name": "b3-quotes",
        "description": "market data every 10 s",
        "cron": "*/10 * * * * *",
        "job": {"kind": "noop", "priority": "high"},
    }
    status, created = await api.request("POST", "/schedules", json=body)
    assert status == 201, created
    assert created["description"] == "market data every 10 s" and created["job"]["priority"] == 9

    status, shown = await api.request("GET", "/schedules/b3-quotes")
    assert status == 200 and shown["id"] == created["id"]
    status, preview = await api.request("GET", "/schedules/b3-quotes/preview", params={"count": "3"})
    times = [datetime.fromisoformat(t) for t in preview["fire_times"]]
    assert status == 200 and [(b - a).total_seconds() for a, b in itertools.pairwise(times)] == [10, 10]
    assert all(t.second % 10 == 0 for t in times)
    status, edited = await api.request("PATCH", "/schedules/b3-quotes", json={"description": "", "enabled": False})
    assert status == 200 and edited["description"] == "" and edited["enabled"] is False
    for action in ("pause", "resume"):
        status, _ = await api.request("POST", f"/schedules/b3-quotes/{action}")
        assert status == 200
    status, job = await api.request("POST", "/schedules/b3-quotes/trigger")
    assert status == 202 and job["schedule_id"] == created["id"] and job["priority"] == 9
    status, replaced = await api.request("PUT", "/schedules/b3-quotes", json=body | {"cron": "0 * * * *"})
    assert status == 200 and replaced["cron"] == "0 * * * *"
    status, problem = await api.request("GET", "/schedules/no-such-schedule")
    assert status == 404 and "no schedule is named 'no-such-schedule'" in problem["detail"]
    status, problem = await api.request("POST", "/schedules", json=body | {"name": "2024"})
    assert status == 422 and problem["errors"][0]["field"] == "name"
    status, _ = await api.request("DELETE", "/schedules/b3-quotes")
    assert status == 204
    status, _ = await api.request("GET", f"/schedules/{created['id']}")
    assert status == 404


async def test_the_scheduler_config_is_the_gateways_until_a_leader_records_its_own(
    stack: Stack, api_factory: type[Api]
) -> None:
    api = api_factory((await stack.start("gateway")).url)
    status, before = await api.request("GET", "/scheduler/config")
    assert status == 200 and before["source"] == "gateway" and before["leader"] is None
    assert before["misfire_default"] == "fire_once" and before["cron_timezone_default"] == "UTC"
    assert before["clock"] == "database" and before["fire_interval_s"] == 1.0

    await stack.start(
        "scheduler", GLEANER_RELAY_INTERVAL_S="2.5", GLEANER_RETENTION_DAYS="9", GLEANER_PRUNE_BATCH="250"
    )

    async def recorded() -> dict[str, object] | None:
        _, body = await api.request("GET", "/scheduler/config")
        return dict(body) if body["source"] == "leader" else None

    after = await eventually(recorded, timeout_s=10, what="the leader to record its settings")
    assert after["relay_interval_s"] == 2.5 and after["retention_days"] == 9
    assert after["prune_batch"] == 250 and after["prune_pause_ratio"] == before["prune_pause_ratio"] == 4
    assert isinstance(after["leader"], str) and after["recorded_at"] is not None


async def test_waiting_jobs_are_counted_per_priority_level_and_band(stack: Stack, api_factory: type[Api]) -> None:
    api = api_factory((await stack.start("gateway")).url)  # no worker: every job waits
    for priority in ("high", "high", "normal", "low", 3, 7, 6):
        await api.submit(kind="noop", priority=priority)
    await api.submit(kind="noop", delay_s=3600)  # scheduled, not waiting yet

    status, body = await api.request("GET", "/queues")
    assert status == 200
    [queue] = [q for q in body["queues"] if q["name"] == "default"]
    assert queue["waiting_by_priority"] == [1, 0, 0, 1, 0, 1, 1, 1, 0, 2]
    assert queue["waiting_by_band"] == {"high": 3, "normal": 2, "low": 2}
    assert body["waiting_by_band"] == {"high": 3, "normal": 2, "low": 2, "total": 7}
    shown = await stack.run_cli("queues", env={"GLEANER_API_URL": f"{api.base_url}"})
    header, row = shown.splitlines()[:2]
    assert header.split()[-3:] == ["HIGH", "NORMAL", "LOW"] and row.split()[-3:] == ["3", "2", "2"]
