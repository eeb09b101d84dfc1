"""`python -m bench.statements [JOBS]`: what PostgreSQL spends on each job's insert, claim and finish.

Without services or a broker: JOBS noop jobs (default 30,000) are inserted in batches of 1,000 through the gateway's
insert, claimed in groups of 124 and finished in groups of 200 through the worker's JobStore (its session settings),
each side on one connection of its own, in a fresh migrated database (GLEANER_TEST_PG). Prints, per step, the CPU
its backend used a job (from /proc: run it on the database's machine) and the WAL written a job; then, where the
cluster has pg_stat_statements, each top statement's execution and planning time a job.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import asyncpg

from gleaner.services.gateway.job_store import NewJob, insert_jobs
from gleaner.services.worker.app import POINT_LOOKUPS
from gleaner.services.worker.claims import Claim, Finish, JobStore
from gleaner.services.worker.retry import Outcome
from gleaner.shared.config import Config
from gleaner.shared.db import create_pool
from gleaner.shared.submission import parse_batch
from tests.support.services import create_database, drop_database, dsn_for

INSERT_BATCH = 1000
CLAIM_GROUP = 124
FINISH_GROUP = 200
T = TypeVar("T")
C = TypeVar("C")

TOP_STATEMENTS = """
SELECT calls, total_exec_time, total_plan_time, left(regexp_replace(query, '\\s+', ' ', 'g'), 80) AS query
FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1)
ORDER BY total_exec_time + total_plan_time DESC LIMIT 10
"""


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    wall_s: float
    cpu_s: float
    wal_bytes: float

    def line(self, jobs: int) -> str:
        per = 1e6 / jobs
        return (
            f"{self.name:<7} {self.cpu_s * per:6.1f} µs backend CPU a job  {self.wal_bytes / jobs:5.0f} B WAL a job"
            f"  ({self.wall_s * per:.1f} µs wall)"
        )


def backend_cpu_s(pid: int) -> float:
    """User and system CPU a process has used, from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _step(
    name: str, admin: asyncpg.Connection, pid: int, run: Callable[[C], Awaitable[T]], chunks: Sequence[C]
) -> tuple[Step, list[T]]:
    wal_start = await admin.fetchval("SELECT pg_current_wal_lsn()")
    cpu_start, started = backend_cpu_s(pid), time.perf_counter()
    out = [await run(chunk) for chunk in chunks]
    wall_s, cpu_s = time.perf_counter() - started, backend_cpu_s(pid) - cpu_start
    wal = await admin.fetchval("SELECT pg_current_wal_lsn() - $1::pg_lsn", wal_start)
    return Step(name, wall_s, cpu_s, float(wal)), out


def _finishes(claims: Sequence[Sequence[Claim | None]]) -> list[Finish]:
    done = Outcome("succeeded", None)
    return [Finish(c.job.id, c.job.attempt, done) for group in claims for c in group if c is not None]


def _groups(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[k : k + size] for k in range(0, len(items), size)]


async def _top_statements(database: str, jobs: int) -> list[str]:
    try:
        stats = await asyncpg.connect(dsn_for("postgres"))
    except (OSError, asyncpg.PostgresError):
        return []
    try:
        rows = await stats.fetch(TOP_STATEMENTS, database)
    except asyncpg.PostgresError:  # no pg_stat_statements in this cluster
        return []
    finally:
        await stats.close()
    per = 1000 / jobs  # ms in all -> µs a job
    return [
        f"{r['total_exec_time'] * per:7.1f} µs exec {r['total_plan_time'] * per:5.1f} µs plan a job"
        f" {r['calls']:6} calls  {r['query']}"
        for r in rows
    ]


async def measure(jobs: int) -> list[str]:
    database = await create_database()
    dsn = dsn_for(database)
    config = Config(database_url=dsn)
    pools: list[asyncpg.Pool] = []
    try:
        gateway = await create_pool(config, name="bench-gateway", min_size=1, max_size=1)
        pools.append(gateway)
        worker = await create_pool(
            config, name="bench-worker", settings=POINT_LOOKUPS, reset_session=False, min_size=1, max_size=1
        )
        pools.append(worker)
        store = JobStore(worker, "bench-statements", 30.0)
        specs = parse_batch({"jobs": [{"kind": "noop", "payload": {"n": n}} for n in range(INSERT_BATCH)]}, config)
        batch = [NewJob(spec, "bench") for spec in specs]
        pids = [await pool.fetchval("SELECT pg_backend_pid()") for pool in pools]
        admin = await asyncpg.connect(dsn)
        try:
            # one round first: plans, caches and the rollup rows exist before anything is counted
            warm = [r["id"] for r in await insert_jobs(gateway, batch) if r is not None]
            await store.finish(_finishes([await store.claim([(i, 1, 0) for i in warm])]))
            await admin.execute("CHECKPOINT")
            await _reset_statements()
            inserted, rows = await _step(
                "insert", admin, pids[0], lambda c: insert_jobs(gateway, c), [batch] * (jobs // INSERT_BATCH)
            )
            ids = sorted(r["id"] for group in rows for r in group if r is not None)
            claimed, claims = await _step(
                "claim", admin, pids[1], lambda c: store.claim([(i, 1, 0) for i in c]), _groups(ids, CLAIM_GROUP)
            )
            finishes = _finishes(claims)
            finished, _ = await _step("finish", admin, pids[1], store.finish, _groups(finishes, FINISH_GROUP))
        finally:
            await admin.close()
        counted = len(ids)
        return [step.line(counted) for step in (inserted, claimed, finished)] + await _top_statements(database, counted)
    finally:
        for pool in pools:
            await pool.close()
        await drop_database(database)


async def _reset_statements() -> None:
    try:
        stats = await asyncpg.connect(dsn_for("postgres"))
    except (OSError, asyncpg.PostgresError):
        return
    try:
        await stats.execute("SELECT pg_stat_statements_reset()")
    except asyncpg.PostgresError:
        pass  # no pg_stat_statements in this cluster: the per-statement lines are left out
    finally:
        await stats.close()


def main(argv: Sequence[str]) -> int:
    jobs = int(argv[0]) if argv else 30_000
    if jobs < INSERT_BATCH:
        print(f"JOBS: at least {INSERT_BATCH}", file=sys.stderr)
        return 2
    for line in asyncio.run(measure(jobs)):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
