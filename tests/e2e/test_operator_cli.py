"""The operator commands against the real gateway and worker: what a person at a terminal sees."""

from __future__ import annotations

import re

import orjson
import pytest

from tests.support.stack import Api, Service, Stack


@pytest.fixture
async def gateway(stack: Stack) -> Service:
    return await stack.start("gateway")


def api_env(gateway: Service) -> dict[str, str]:
    return {"GLEANER_API_URL": f"{gateway.url}/api/v1"}


async def test_submit_show_and_list_a_job_from_the_command_line(stack: Stack, gateway: Service) -> None:
    await stack.start("worker")
    env = api_env(gateway)

    submitted = await stack.run_cli("jobs", "submit", "noop", "--payload", '{"n": 1}', "--wait", "15", env=env)
    job_id = int(submitted.split()[1])
    shown = await stack.run_cli("jobs", "show", str(job_id), env=env)
    listed = await stack.run_cli("jobs", "list", "--kind", "noop", env=env)
    as_json = orjson.loads(await stack.run_cli("jobs", "list", "--json", env=env))

    assert submitted.strip() == f"job {job_id} succeeded"
    details, attempts = shown.split("attempts:")
    assert {line.split()[0]: line.split()[1] for line in details.strip().splitlines()}["state"] == "succeeded"
    assert attempts.splitlines()[2].split()[:2] == ["1", "succeeded"]
    header, row = listed.splitlines()[:2]
    assert header.split()[:3] == ["ID", "KIND", "STATE"] and row.split()[:3] == [str(job_id), "noop", "succeeded"]
    assert [j["id"] for j in as_json["jobs"]] == [job_id]


async def test_a_failed_job_shows_its_traceback_and_is_requeued_from_the_dead_letters(
    stack: Stack, gateway: Service
) -> None:
    await stack.start("worker")
    env = api_env(gateway)
    submitted = await stack.run_cli(  # exits 1: the job failed
        "jobs", "submit", "fail", "--payload", '{"mode": "permanent"}', "--wait", "15", env=env, check=False
    )
    job_id = int(submitted.split()[2])

    shown = await stack.run_cli("jobs", "show", str(job_id), env=env)
    letters = await stack.run_cli("dead-letters", "list", env=env)
    requeued = await stack.run_cli("dead-letters", "requeue", "--kind", "fail", env=env)

    assert submitted.startswith(f"gleaner: job {job_id} failed: fail_permanent: ")
    assert "last traceback:" in shown and "fails as asked (permanent)" in shown
    assert f"job-{job_id}" in letters and "fail_permanent" in letters
    assert requeued.strip() == "requeued 1 failed job(s)"


async def test_a_dead_letter_is_resolved_from_the_command_line(stack: Stack, gateway: Service) -> None:
    await stack.start("worker")
    env = api_env(gateway)
    submitted = await stack.run_cli(  # exits 1: the job failed
        "jobs", "submit", "fail", "--payload", '{"mode": "permanent"}', "--wait", "15", env=env, check=False
    )
    letter = f"job-{submitted.split()[2]}"

    resolved = await stack.run_cli("dead-letters", "resolve", letter, "--note", "retired", env=env)
    listed = await stack.run_cli("dead-letters", "list", env=env)

    assert resolved.strip() == f"{letter} resolved"
    assert listed.strip() == "(none)"


async def test_health_stats_sites_schedules_and_cleanup_answer(stack: Stack, gateway: Service) -> None:
    await stack.start("worker")
    env = api_env(gateway)

    health = await stack.run_cli("health", env=env)
    stats = await stack.run_cli("stats", "--hours", "24", env=env)
    sites = await stack.run_cli("sites", env=env)
    schedules = await stack.run_cli("schedules", "list", env=env)
    cleanup = await stack.run_cli("cleanup", "--days", "30", env=env)

    assert health.splitlines() == ["gateway: ok", "  database: ok", "  broker: ok"]
    assert " to " in stats.splitlines()[0]
    assert sites.strip() == "(none)"
    assert "maintenance.prune" in schedules and "maintenance.requeue_failed" in schedules
    assert cleanup.startswith("removed ") and "jobs" in cleanup


async def test_a_refused_request_prints_the_problem_and_exits_1(stack: Stack, gateway: Service) -> None:
    env = api_env(gateway)

    unknown = await stack.run_cli("jobs", "submit", "no.such.kind", check=False, env=env)
    missing = await stack.run_cli("jobs", "show", "999999", check=False, env=env)
    no_key = await stack.run_cli("jobs", "list", check=False, env={**env, "GLEANER_API_TOKEN": "wrong-key-0123456789"})
    nowhere = await stack.run_cli("jobs", "list", check=False, env={"GLEANER_API_URL": "http://127.0.0.1:9/api/v1"})

    assert "gleaner: HTTP 422" in unknown and "kind: unknown kind 'no.such.kind'" in unknown
    assert "gleaner: HTTP 404" in missing
    assert "gleaner: HTTP 401" in no_key and "sent GLEANER_API_TOKEN" in no_key
    assert "export GLEANER_API_TOKEN=" in no_key
    assert "cannot reach the gateway at http://127.0.0.1:9/api/v1" in nowhere


async def test_a_401_in_a_new_terminal_names_the_variables_the_cli_read(stack: Stack, gateway: Service) -> None:
    # a new terminal: the stack's GLEANER_ADMIN_TOKEN is not exported there, nor is GLEANER_API_TOKEN
    env = {**api_env(gateway), "GLEANER_ADMIN_TOKEN": "", "GLEANER_API_TOKEN": ""}

    out = await stack.run_cli("jobs", "list", check=False, env=env)

    assert "gleaner: HTTP 401" in out
    assert "GLEANER_API_TOKEN and GLEANER_ADMIN_TOKEN are both unset, sent no key" in out
    assert len(out.strip().splitlines()) == 1


async def test_schedules_and_the_scheduler_are_operated_by_name_from_the_command_line(
    stack: Stack, gateway: Service, api_factory: type[Api]
) -> None:
    api, env = api_factory(gateway.url), api_env(gateway)
    body = {"name": "b3-hourly", "cron": "0 * * * *", "description": "B3 quotes", "job": {"kind": "noop"}}
    status, _ = await api.request("POST", "/schedules", json=body)
    assert status == 201

    triggered = await stack.run_cli("schedules", "trigger", "b3-hourly", env=env)
    paused = await stack.run_cli("schedules", "pause", "b3-hourly", env=env)
    resumed = await stack.run_cli("schedules", "resume", "b3-hourly", env=env)
    preview = await stack.run_cli("schedules", "preview", "b3-hourly", "--count", "3", env=env)
    listed = await stack.run_cli("schedules", "list", env=env)
    missing = await stack.run_cli("schedules", "pause", "no-such", env=env, check=False)

    assert triggered.startswith("job ") and "(schedule b3-hourly)" in triggered
    assert paused.strip() == "schedule b3-hourly paused" and resumed.strip() == "schedule b3-hourly resumed"
    assert [line.endswith(":00:00+00:00") for line in preview.splitlines()] == [True, True, True]
    assert "B3 quotes" in listed
    assert "404" in missing and "no schedule is named 'no-such'" in missing

    status_text = await stack.run_cli("scheduler", "status", env=env)
    lines = {line.split()[0]: line.split()[-1] for line in status_text.splitlines() if line.strip()}
    assert "due_backlog" in lines and lines["cron_timezone_default"] == "UTC" and lines["paused"] == "False"
    assert re.search(r"^paused +True$", await stack.run_cli("scheduler", "pause", env=env), re.M)
    assert re.search(r"^paused +False$", await stack.run_cli("scheduler", "resume", env=env), re.M)
    assert orjson.loads(await stack.run_cli("scheduler", "run", "--json", env=env))["fired"] == 0


async def test_jobs_list_follows_pages_past_the_first_and_a_failed_wait_exits_1_with_the_error(
    stack: Stack, gateway: Service, api_factory: type[Api]
) -> None:
    api, env = api_factory(gateway.url), api_env(gateway)
    for _ in range(2):
        status, _ = await api.request("POST", "/jobs/batch", json={"jobs": [{"kind": "noop"}] * 300})
        assert status == 202
    listed = orjson.loads(await stack.run_cli("jobs", "list", "--limit", "550", "--json", env=env))
    ids = [job["id"] for job in listed["jobs"]]
    assert len(ids) == 550 and len(set(ids)) == 550 and ids == sorted(ids, reverse=True)

    await stack.start("worker")
    payload = '{"mode": "permanent", "message": "the site is gone"}'
    with pytest.raises(AssertionError, match="exited 1") as caught:
        await stack.run_cli("jobs", "submit", "fail", "--payload", payload, "--wait", "20", env=env)
    assert "failed: " in str(caught.value) and "the site is gone" in str(caught.value)


async def test_sites_show_when_the_next_request_is_allowed(
    stack: Stack, gateway: Service, api_factory: type[Api]
) -> None:
    api, env = api_factory(gateway.url), api_env(gateway)
    status, _ = await api.request("PUT", "/sites/indeed", json={"requests_per_hour": 60})
    assert status == 201
    header, row = (await stack.run_cli("sites", env=env)).splitlines()[:2]
    column = header.index("NEXT REQUEST")
    assert row[column:].strip()[:4].isdigit(), row  # a timestamp, not "-"
