"""Seed 000's correlated JSON logs: a worker logs one INFO line when a job starts and one when it ends, keeps the
fields a handler passes in `extra`, and GLEANER_LOG_LEVEL=DEBUG adds detail."""

from __future__ import annotations

from typing import Any

import orjson

from tests.e2e.test_lifecycle import wait_state
from tests.support.stack import Api, Stack


def lines_of(log: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in log.splitlines() if line.startswith("{")]


async def run_one(stack: Stack, api: Api, level: str, **job: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    worker = await stack.start(
        "worker", name=f"worker-{level}", args=["--handlers", "tests.support.log_fields"], GLEANER_LOG_LEVEL=level
    )
    submitted = await api.submit(**job)
    done = await wait_state(api, submitted["id"])
    worker.stop()
    return done, [line for line in lines_of(worker.log()) if line.get("job_id") == submitted["id"]]


async def test_a_job_logs_a_start_and_an_end_line_with_its_fields_and_the_handlers_extra(
    stack: Stack, gateway_api: Api
) -> None:
    status, _ = await gateway_api.request("PUT", "/sites/example", json={"requests_per_hour": 3600})
    assert status == 201
    done, lines = await run_one(stack, gateway_api, "INFO", kind="log.fields", site="example")
    assert done["state"] == "succeeded"
    start = next(line for line in lines if line["msg"] == "job started")
    end = next(line for line in lines if line["msg"] == "job ended")
    for line in (start, end):
        assert line["level"] == "info" and line["service"] == "worker"
        assert (line["kind"], line["site"], line["attempt"], line["queue"]) == ("log.fields", "example", 1, "default")
    assert (end["outcome"], end["error_class"]) == ("succeeded", None) and end["duration_s"] >= 0
    scraped = next(line for line in lines if line["msg"] == "page scraped")
    assert {k: scraped[k] for k in ("site_name", "run_id", "event", "status")} == {
        "site_name": "indeed",
        "run_id": "r-1",
        "event": "page",
        "status": 200,
    }
    assert (scraped["kind"], scraped["site"], scraped["logger"]) == ("log.fields", "example", "gleaner.job.log.fields")
    assert next(line for line in lines if line["msg"] == "renamed")["extra_name"] == "kept as extra_name"
    assert not [line for line in lines if line["level"] == "debug"]
    assert "payload" not in start


async def test_debug_adds_the_claim_and_outcome_details_and_a_failure_names_its_error_class(
    stack: Stack, gateway_api: Api
) -> None:
    _, lines = await run_one(stack, gateway_api, "DEBUG", kind="log.fields", payload={"q": "python"})
    start = next(line for line in lines if line["msg"] == "job started")
    assert start["payload"] == '{"q":"python"}' and start["queue_wait_s"] >= 0 and start["timeout_s"] == 300
    assert next(line for line in lines if line["msg"] == "parser detail")["selector"] == "h2.job-title"
    end = next(line for line in lines if line["msg"] == "job ended")
    assert "result_bytes" in end and end["result_bytes"] == len('{"ok":true}')

    failed, lines = await run_one(
        stack, gateway_api, "INFO", kind="fail", payload={"mode": "permanent"}, max_attempts=1
    )
    end = next(line for line in lines if line["msg"] == "job ended")
    assert failed["state"] == "failed"
    assert (end["outcome"], end["error_class"]) == ("failed", "fail_permanent")
