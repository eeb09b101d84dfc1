"""Handlers that record every execution in their own table, so a test counts re-executions exactly.

A worker loads them through `GLEANER_HANDLER_MODULES=tests.support.recording` (see `SERVICE_ENV`): kinds
`record.noop` (result = payload) and `record.sleep` (`{"seconds": x}`). Each execution first inserts a row
(job id, attempt, lease owner, process id, start time) into `recorded_executions`, then does its work, so a
job that ran twice has two rows even when the first run was abandoned half-way.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from gleaner.services.worker.context import JobContext

REPO_ROOT = Path(__file__).resolve().parents[2]
MODULE = "tests.support.recording"
# Every service gets this: the worker runs the kinds, and the gateway still loads the handler registry to
# accept a submission's kind (and a schedule template's), so it must know them too. The services run from
# the virtualenv's console script, whose import path does not include the repository.
SERVICE_ENV = {"GLEANER_HANDLER_MODULES": MODULE, "PYTHONPATH": str(REPO_ROOT)}

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS recorded_executions (
    job_id     bigint      NOT NULL,
    attempt    integer     NOT NULL,
    worker     text,
    pid        integer     NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now()
)
"""

# the lease owner as the claim wrote it: which worker (and, where owners are unique per start, which start)
RECORD = """
INSERT INTO recorded_executions (job_id, attempt, worker, pid)
SELECT $1, $2, (SELECT lease_owner FROM jobs WHERE id = $1), $3
"""

COUNT = "SELECT count(*) AS runs, count(DISTINCT job_id) AS jobs FROM recorded_executions"


@dataclass(frozen=True, slots=True)
class Executions:
    """What the table holds: executions in all, distinct jobs executed, and the extra runs."""

    runs: int
    jobs: int

    @property
    def repeated(self) -> int:
        return self.runs - self.jobs


async def install(connection: asyncpg.Connection | asyncpg.Pool) -> None:
    """Create the table (once per test database, before a worker starts)."""
    await connection.execute(CREATE_TABLE)


async def executions(connection: asyncpg.Connection | asyncpg.Pool) -> Executions:
    row = await connection.fetchrow(COUNT)
    assert row is not None
    return Executions(runs=row["runs"], jobs=row["jobs"])


async def _record(ctx: JobContext) -> None:
    await ctx.db.execute(RECORD, ctx.job.id, ctx.job.attempt, os.getpid())


async def record_noop(ctx: JobContext) -> Any:
    await _record(ctx)
    return ctx.job.payload


async def record_sleep(ctx: JobContext) -> Any:
    await _record(ctx)
    payload = ctx.job.payload if isinstance(ctx.job.payload, dict) else {}
    seconds = float(payload.get("seconds", 1.0))
    await asyncio.sleep(seconds)
    return {"slept_s": seconds}


def register(registry: Any) -> None:
    registry.add("record.noop", record_noop)
    registry.add("record.sleep", record_sleep)
