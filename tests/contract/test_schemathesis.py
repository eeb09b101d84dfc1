"""Schemathesis against a live gateway: every operation, positive and negative data, every check, no failure.

The gateway runs on its own database and namespace (nothing else sees the jobs, schedules and pauses the run
creates), with the admin token, so every operation is exercised, side effects included: scheduler pause and run,
bulk requeues, deletes, key revocations. A few failed jobs, poison messages and API keys are seeded so the
operations on them have something to act on. The size is bounded (GLEANER_SCHEMATHESIS_EXAMPLES cases per
operation and phase, default 20) and the seed fixed (GLEANER_SCHEMATHESIS_SEED), so a run takes about a minute
and a failure can be replayed.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.support.services import ADMIN_TOKEN
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = os.environ.get("GLEANER_SCHEMATHESIS_EXAMPLES", "20")
SEED = os.environ.get("GLEANER_SCHEMATHESIS_SEED", "20261130")
RUN_TIMEOUT_S = 600

# failed jobs, half of them resolved (which bulk requeues skip), poison messages, API keys to revoke
SEED_ROWS = """
INSERT INTO jobs (kind, queue, state, attempt, max_attempts, finished_at, error, resolved_at)
SELECT 'noop', 'default', 'failed', 1, 1, now(), jsonb_build_object('class', 'boom', 'message', 'seeded'),
       CASE WHEN n % 2 = 0 THEN now() END
FROM generate_series(1, 6) AS n;
INSERT INTO dead_letters (queue, reason, detail, body, headers)
VALUES ('default', 'undecodable', 'seeded', '\\x7b', '{}'), ('default', 'unknown_kind', 'seeded', '\\x7b7d', '{}');
INSERT INTO api_keys (name, key_hash, scopes) VALUES ('one', 'seeded-1', '{jobs:read}'), ('two', 'seeded-2', '{admin}');
"""


@pytest.fixture
def extra_env() -> dict[str, str]:
    return {"GLEANER_QUEUES": "default,idle"}


async def seed_rows(database_url: str) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(SEED_ROWS)
    finally:
        await connection.close()


async def run_schemathesis(base_url: str, report: Path) -> str:
    command = [
        SCHEMATHESIS,
        "run",
        f"{base_url}/openapi.json",
        "--url",
        base_url,
        "--header",
        f"Authorization: Bearer {ADMIN_TOKEN}",
        "--checks",
        "all",
        "--mode",
        "all",
        "--max-examples",
        EXAMPLES,
        "--seed",
        SEED,
        "--generation-database",
        "none",
        "--no-color",
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.contract.schemathesis_hooks", "PYTHONPATH": str(ROOT)}
    process = await asyncio.create_subprocess_exec(
        *command, env=env, cwd=report.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        raise AssertionError(f"schemathesis ran past {RUN_TIMEOUT_S}s") from None
    return out.decode(errors="replace")


def figures(report: dict[str, Any]) -> str:
    operations, cases = report["operations"], report["test_cases"]
    failures = sum(f["count"] for f in report["failures"])
    errors = sum(e["count"] for e in report["errors"])
    return (
        f"schemathesis {report['schemathesis_version']}: {operations['tested']}/{operations['total']} operations, "
        f"{cases['generated']} cases, {failures} failures, {errors} errors, {report['running_time']:.0f}s "
        f"(seed {report['seed']})"
    )


async def test_schemathesis_finds_no_failure_in_any_operation(stack: Stack, database_url: str, tmp_path: Path) -> None:
    await seed_rows(database_url)
    gateway = await stack.start("gateway")
    report_path = tmp_path / "schemathesis.json"
    output = await run_schemathesis(f"{gateway.url}/api/v1", report_path)
    assert report_path.exists(), output[-5000:]
    report = json.loads(report_path.read_text())
    print(figures(report))
    assert report["operations"]["tested"] == report["operations"]["total"], output[-5000:]
    assert report["failures"] == [] and report["errors"] == [], f"{figures(report)}\n{output[-30000:]}"
