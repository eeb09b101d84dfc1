"""The benchmark cases of the performance issue; each returns a dict of figures."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg

from bench.harness import Harness, cpu_s, process_cpu_s, rss_mb
from bench.http_load import Connection, connections, request_bytes
from bench.scale import console_probes, console_session, history_of, load_history, measure_reads, read_probes
from bench.stats import percentile, rate, summary_ms
from tests.support.services import ADMIN_TOKEN
from tests.support.stack import Api, Service, eventually

HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass(frozen=True, slots=True)
class Sizes:
    batch_jobs: int = 100_000
    batch_size: int = 1000
    batch_concurrency: int = 4
    single_seconds: float = 20.0
    single_concurrency: int = 32
    e2e_jobs: int = 20_000
    # one worker process per two cores: a second one on this box only adds overhead (measured: 1,540 vs 1,950/s)
    workers: int = 1
    # a slot is held from a job's claim to its written outcome (about 33 ms a noop job at full load: gathering, the
    # claim's statement, the finish's): 128 slots kept the box half idle (6,220 jobs/s, e2e 50,000). With 64-job
    # groups (e2e 100,000, alternated): 512 slots 17,264-17,458 jobs/s, 1,024 20,931-21,128, 1,536 22,022, 2,048
    # 21,240, at the same CPU a job; two claim and finish lanes instead of one cost CPU (19,360 / 17,909 at 2 / 3)
    worker_concurrency: int = 1024
    latency_rate: float = 200.0
    latency_seconds: float = 30.0
    retry_jobs: int = 2000
    retry_unit_ms: int = 1000
    schedules: int = 10_000
    schedule_interval_s: float = 30.0
    schedule_seconds: float = 40.0
    # finished rows loaded before the scale case's probes; finished over the last `scale_history_days`
    scale_rows: int = 10_000_000
    scale_history_days: float = 30.0
    scale_read_repeats: int = 50
    # the name of a database already holding a loaded history: copied (and migrated) instead of loading again
    scale_template: str = ""
    # the console case: its pages timed with this many finished rows (or those of `scale_template`)
    console_rows: int = 1_000_000
    console_repeats: int = 20
    # the prune case: finished rows past retention, pruned while the e2e probe runs; the pruner's pass period
    prune_rows: int = 1_000_000
    prune_interval_s: float = 5.0
    timeout_s: float = 600.0

    @classmethod
    def smoke(cls) -> Sizes:
        return cls(
            batch_jobs=200,
            batch_size=50,
            single_seconds=1.0,
            single_concurrency=4,
            e2e_jobs=200,
            workers=1,
            latency_rate=20.0,
            latency_seconds=1.0,
            retry_jobs=20,
            retry_unit_ms=100,
            schedules=20,
            schedule_interval_s=1.0,
            schedule_seconds=3.0,
            scale_rows=2000,
            scale_read_repeats=2,
            console_rows=2000,
            console_repeats=2,
            prune_rows=2000,
            timeout_s=120.0,
        )


async def _post_batches(url: str, total: int, size: int, concurrency: int) -> float:
    """Submit `total` noop jobs in batches from `concurrency` connections (bench/http_load.py); returns the elapsed
    seconds."""
    jobs = [{"kind": "noop", "payload": {"i": i}} for i in range(size)]
    queue = list(range(0, total, size))
    async with connections(url, concurrency) as (host, opened):

        def batch(count: int) -> bytes:
            return request_bytes(host, "POST", "/api/v1/jobs/batch", {"jobs": jobs[:count]}, HEADERS)

        full = batch(size)

        async def sender(connection: Connection) -> None:
            while queue:
                start = queue.pop()
                response = await connection.send(full if total - start >= size else batch(total - start))
                assert response.status == 202, response.body.decode(errors="replace")

        started = time.perf_counter()
        await asyncio.gather(*(sender(connection) for connection in opened))
        return time.perf_counter() - started


async def batch_submit(sizes: Sizes) -> dict[str, Any]:
    async with Harness("batch") as h:
        gateway = await h.start("gateway")
        cpu_before = cpu_s(gateway)
        elapsed = await _post_batches(gateway.url, sizes.batch_jobs, sizes.batch_size, sizes.batch_concurrency)
        cpu_us = (cpu_s(gateway) - cpu_before) * 1e6
        assert h.db is not None
        stored = await h.db.fetchval("SELECT count(*) FROM jobs")
        return {
            "jobs": stored,
            "seconds": round(elapsed, 3),
            "jobs_per_s": round(rate(stored, elapsed)),
            "gateway_cpu_us_per_job": round(cpu_us / stored),
        }


async def single_submit(sizes: Sizes) -> dict[str, Any]:
    """`single_concurrency` clients each POST one `noop` job at a time for `single_seconds` (bench/http_load.py: a
    client light enough not to take the gateway's core); every 202 must have stored its job."""
    async with Harness("single") as h:
        gateway = await h.start("gateway")
        latencies: list[float] = []
        errors = 0
        async with connections(gateway.url, sizes.single_concurrency) as (host, opened):
            request = request_bytes(host, "POST", "/api/v1/jobs", {"kind": "noop"}, HEADERS)
            deadline = time.perf_counter() + sizes.single_seconds

            async def client(connection: Connection) -> None:
                nonlocal errors
                while time.perf_counter() < deadline:
                    sent = time.perf_counter()
                    response = await connection.send(request)
                    errors += response.status != 202
                    latencies.append(time.perf_counter() - sent)

            started = time.perf_counter()
            cpu_before = cpu_s(gateway)
            await asyncio.gather(*(client(connection) for connection in opened))
            elapsed = time.perf_counter() - started
            cpu_us = (cpu_s(gateway) - cpu_before) * 1e6
        assert h.db is not None
        stored = await h.db.fetchval("SELECT count(*) FROM jobs")
        assert stored == len(latencies) - errors, f"{stored} jobs stored for {len(latencies) - errors} answers 202"
        return {
            "requests": len(latencies),
            "errors": errors,
            "req_per_s": round(rate(len(latencies), elapsed)),
            "gateway_cpu_us_per_req": round(cpu_us / max(1, len(latencies))),
        } | summary_ms(latencies)


async def end_to_end(sizes: Sizes) -> dict[str, Any]:
    async with Harness("e2e") as h:
        return await _e2e_probe(h, sizes)


# all submitted jobs are inserted before the wait starts: done once no row waits or runs (a read of the small
# partial index of waiting rows, whatever the table's size; counting finished rows would read all of history)
# the waiting rows are in jobs_waiting, the running ones in jobs_leases (migration 0043)
UNFINISHED = """
SELECT EXISTS (SELECT 1 FROM jobs WHERE state IN ('scheduled', 'queued', 'retrying'))
    OR EXISTS (SELECT 1 FROM jobs WHERE state = 'running')
"""
# row versions written into `jobs` (pg_stat_user_tables, this database only); a backend's counts may reach the
# statistics up to 10 s late (PGSTAT_IDLE_INTERVAL), so they are read once that long has passed
JOB_UPDATES = "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relid = 'jobs'::regclass"
STATS_LATE_S = 11.0
# a job that succeeded at its first attempt keeps the enqueued_at its marker wrote: the marker's writes, exactly (a
# submission recorded in job_outbox goes in with enqueued_at = created_at: no marker write)
MARKED = "SELECT count(*) FROM jobs WHERE id > $1 AND enqueued_at > created_at"
# outbox rows left behind once every job finished (each would cost the relay a pass)
OUTBOX_LEFT = "SELECT count(*) FROM job_outbox"


async def _e2e_probe(h: Harness, sizes: Sizes) -> dict[str, Any]:
    """`e2e_jobs` noop jobs submitted in batches and run by the workers: the rate from first submit to last finish."""
    gateway = await h.start("gateway")
    scheduler = await h.start("scheduler")
    workers = await _workers(h, sizes)
    return await _e2e_run(h, sizes, gateway, workers, scheduler)


async def _workers(h: Harness, sizes: Sizes) -> list[Service]:
    concurrency = str(sizes.worker_concurrency)
    return [await h.start("worker", GLEANER_WORKER_CONCURRENCY=concurrency) for _ in range(sizes.workers)]


async def _e2e_run(
    h: Harness, sizes: Sizes, gateway: Service, workers: list[Service], scheduler: Service | None = None
) -> dict[str, Any]:
    """One run of the e2e probe on services already started. The gateway's and the scheduler's CPU are counted from
    the first submit to the last finish (their start-up and the idle wait for the statistics left out)."""
    idle = {"gateway_rss_mb": rss_mb(gateway), "worker_rss_mb": max(rss_mb(w) for w in workers)}
    assert h.db is not None
    db = h.db
    floor = await db.fetchval("SELECT COALESCE(max(id), 0) FROM jobs")
    cpu_before = sum(cpu_s(w) for w in workers)
    others = {"gateway": gateway} | ({"scheduler": scheduler} if scheduler is not None else {})
    others_before = {name: cpu_s(service) for name, service in others.items()}
    updates_before = await db.fetchrow(JOB_UPDATES)
    started = time.perf_counter()
    await _post_batches(gateway.url, sizes.e2e_jobs, min(1000, sizes.e2e_jobs), 2)

    async def done() -> bool:
        return not await db.fetchval(UNFINISHED)

    await eventually(done, timeout_s=sizes.timeout_s, interval_s=0.05, what="all jobs finished")
    elapsed = time.perf_counter() - started
    succeeded = await db.fetchval("SELECT count(*) FROM jobs WHERE id > $1 AND state = 'succeeded'", floor)
    attempts = await db.fetchval("SELECT count(*) FROM job_attempts WHERE job_id > $1", floor)
    assert succeeded == sizes.e2e_jobs, f"{succeeded} of {sizes.e2e_jobs} jobs succeeded"
    worker_cpu_s = sum(cpu_s(w) for w in workers) - cpu_before
    others_us = {
        f"{name}_cpu_us_per_job": round((cpu_s(service) - others_before[name]) / sizes.e2e_jobs * 1e6, 1)
        for name, service in others.items()
    }
    marked = await db.fetchval(MARKED, floor)
    await asyncio.sleep(STATS_LATE_S)
    outbox_left = await db.fetchval(OUTBOX_LEFT)
    updates = await db.fetchrow(JOB_UPDATES)
    return {
        "jobs": sizes.e2e_jobs,
        "seconds": round(elapsed, 3),
        "jobs_per_s": round(rate(sizes.e2e_jobs, elapsed)),
        "attempt_rows": attempts,
        "worker_cpu_us_per_job": round(worker_cpu_s / sizes.e2e_jobs * 1e6),
        **others_us,
        "marked_per_job": round(marked / sizes.e2e_jobs, 3),
        "outbox_rows_left": outbox_left,
        "job_updates_per_job": round((updates["n_tup_upd"] - updates_before["n_tup_upd"]) / sizes.e2e_jobs, 3),
        "job_hot_updates_per_job": round(
            (updates["n_tup_hot_upd"] - updates_before["n_tup_hot_upd"]) / sizes.e2e_jobs, 3
        ),
        "idle": idle,
        "after": {"gateway_rss_mb": rss_mb(gateway), "worker_rss_mb": max(rss_mb(w) for w in workers)},
    }


async def _history(h: Harness, sizes: Sizes, rows: int) -> dict[str, Any]:
    """`rows` finished jobs loaded into the harness's database, or those its template (`scale_template`) held."""
    assert h.db is not None
    if sizes.scale_template:
        return await history_of(h.db, sizes.scale_template)
    return await load_history(h.db, rows, sizes.scale_history_days)


async def scale(sizes: Sizes) -> dict[str, Any]:
    """The e2e probe and the API reads with `scale_rows` finished jobs already in the table."""
    async with Harness("scale", template=sizes.scale_template) as h:
        loaded = await _history(h, sizes, sizes.scale_rows)
        assert h.db is not None
        e2e = await _e2e_probe(h, sizes)
        assert h.stack is not None
        [gateway] = [service for service in h.stack.services if service.command == "gateway"]
        newest = await h.db.fetchval("SELECT max(id) FROM jobs")
        probes = read_probes(loaded["rows"], newest, loaded["schedule_id"])
        reads = await measure_reads(gateway.url, HEADERS, probes, sizes.scale_read_repeats)
        return {"loaded": loaded, "e2e": e2e, "reads": reads}


# the prune case's retention; its history ends a day past it
PRUNE_RETENTION_DAYS = 30.0
PRUNE_HISTORY_DAYS = 30.0
# the loaded rows are ids 1..N (and only they are past retention): counted on the primary key, whatever is dead
LOADED_LEFT = "SELECT count(*) FROM jobs WHERE id <= $1"


async def prune(sizes: Sizes) -> dict[str, Any]:
    """The e2e probe twice over `prune_rows` finished jobs past retention (or those of `scale_template`, all finished
    31 days ago or more): with pruning idle (a leader that keeps jobs forever), then while a leader prunes them; and
    how long that pruning took from the new leader's start."""
    template = sizes.scale_template
    async with Harness("prune", template, GLEANER_PRUNE_INTERVAL_S=str(sizes.prune_interval_s)) as h:
        assert h.db is not None
        db = h.db
        days = PRUNE_RETENTION_DAYS + 1
        if template:  # one that this case's own load made (or one as old)
            loaded = await history_of(db, template)
            sizes = dataclasses.replace(sizes, prune_rows=loaded["rows"])
        else:
            loaded = await load_history(db, sizes.prune_rows, PRUNE_HISTORY_DAYS, ended_days_ago=days)
        gateway = await h.start("gateway")
        workers = await _workers(h, sizes)
        keeper = await h.start("scheduler", GLEANER_RETENTION_DAYS="0")
        idle = await _e2e_run(h, sizes, gateway, workers)
        keeper.stop()
        started = time.perf_counter()
        leader = await h.start("scheduler", GLEANER_RETENTION_DAYS=str(PRUNE_RETENTION_DAYS))
        backends = await _backend_cpu_s(db, {})
        pruning = await _e2e_run(h, sizes, gateway, workers)
        at_end = await db.fetchval(LOADED_LEFT, sizes.prune_rows)
        left, prune_s = await _pruned(db, sizes.prune_rows, started, sizes.timeout_s)
        db_cpu_s = sum((await _backend_cpu_s(db, backends)).values()) - sum(backends.values())
        pruned = sizes.prune_rows - left
        return {
            "loaded": loaded,
            "idle": idle,
            "pruning": pruning | {"history_rows_left_at_end": at_end},
            "ratio": round(pruning["jobs_per_s"] / idle["jobs_per_s"], 3),
            "prune_s": round(prune_s, 1),
            "history_rows_left": left,
            "pruned_rows_per_s": round(rate(pruned, prune_s)),
            "scheduler_cpu_s": round(cpu_s(leader), 2),
            # PostgreSQL's CPU for the scheduler's statements (pruning, mostly): per row and as a share of one core
            "scheduler_db_cpu_us_per_row": round(db_cpu_s / max(1, pruned) * 1e6),
            "scheduler_db_cores": round(db_cpu_s / prune_s, 3),
        }


# the scheduler's PostgreSQL backends in the benchmark's database (their CPU read from /proc, on this machine)
SCHEDULER_BACKENDS = """
SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'gleaner-scheduler'
"""


async def _backend_cpu_s(db: asyncpg.Pool, seen: dict[int, float]) -> dict[int, float]:
    """CPU seconds of each scheduler backend now, and of those in `seen` that have gone since (as last seen)."""
    now = dict(seen)
    for row in await db.fetch(SCHEDULER_BACKENDS):
        with contextlib.suppress(OSError):
            now[row["pid"]] = process_cpu_s(row["pid"])
    return now


async def _pruned(db: asyncpg.Pool, rows: int, started: float, timeout_s: float) -> tuple[int, float]:
    """Rows of the history left once none is (or `timeout_s` passed), and the seconds since `started`."""
    deadline = time.perf_counter() + timeout_s
    left = await db.fetchval(LOADED_LEFT, rows)
    while left and time.perf_counter() < deadline:
        await asyncio.sleep(0.5)
        left = await db.fetchval(LOADED_LEFT, rows)
    return left, time.perf_counter() - started


async def console(sizes: Sizes) -> dict[str, Any]:
    """Every console page, one request at a time, with `console_rows` finished jobs in the table: what a page
    costs the gateway (rendering and the API calls it makes to itself), seen from the browser's side."""
    async with Harness("console", template=sizes.scale_template) as h:
        loaded = await _history(h, sizes, sizes.console_rows)
        gateway = await h.start("gateway")
        await h.start("worker")
        headers = await console_session(gateway.url, ADMIN_TOKEN)
        probes = console_probes(loaded["rows"], loaded["schedule_id"])
        pages = await measure_reads(gateway.url, headers, probes, sizes.console_repeats, prefix="")
        return {"loaded": loaded, "pages": pages}


async def latency(sizes: Sizes) -> dict[str, Any]:
    async with Harness("latency") as h:
        gateway = await h.start("gateway")
        await h.start("scheduler")
        await h.start("worker", GLEANER_WORKER_CONCURRENCY=str(sizes.worker_concurrency))
        api = h.api(gateway)
        sent_at: dict[int, float] = {}
        count = int(sizes.latency_rate * sizes.latency_seconds)
        t0 = time.perf_counter()
        wall0 = time.time()

        async def submit(i: int) -> None:
            await asyncio.sleep(max(0.0, t0 + i / sizes.latency_rate - time.perf_counter()))
            sent = wall0 + (time.perf_counter() - t0)
            job = await api.submit(kind="noop")
            sent_at[job["id"]] = sent

        await asyncio.gather(*(submit(i) for i in range(count)))
        return await _latencies(h, api, sent_at, sizes.timeout_s)


async def _latencies(h: Harness, api: Api, sent_at: dict[int, float], timeout_s: float) -> dict[str, Any]:
    assert h.db is not None
    db = h.db
    ids = list(sent_at)

    async def done() -> bool:
        return bool(await db.fetchval("SELECT bool_and(state = 'succeeded') FROM jobs WHERE id = ANY($1)", ids))

    await eventually(done, timeout_s=timeout_s, what="latency jobs finished")
    rows = await db.fetch(
        "SELECT id, EXTRACT(EPOCH FROM started_at)::float8 AS s, EXTRACT(EPOCH FROM finished_at)::float8 AS f "
        "FROM jobs WHERE id = ANY($1)",
        ids,
    )
    marked = await db.fetchval("SELECT count(*) FROM jobs WHERE id = ANY($1) AND enqueued_at > created_at", ids)
    to_start = [r["s"] - sent_at[r["id"]] for r in rows]
    to_finish = [r["f"] - sent_at[r["id"]] for r in rows]
    return {
        "jobs": len(rows),
        "marked_per_job": round(marked / len(rows), 3),
        "submit_to_start": summary_ms(to_start),
        "submit_to_finish": summary_ms(to_finish),
    }


async def retries(sizes: Sizes) -> dict[str, Any]:
    async with Harness("retries", GLEANER_DELAY_UNIT_MS=str(sizes.retry_unit_ms)) as h:
        gateway = await h.start("gateway")
        await h.start("scheduler")
        await h.start("worker", GLEANER_WORKER_CONCURRENCY=str(sizes.worker_concurrency))
        unit = h.config.delay_unit_s
        job = {"kind": "fail", "payload": {"times": 2}, "max_attempts": 3, "retry_base_s": unit, "retry_cap_s": unit}
        async with aiohttp.ClientSession(headers=HEADERS) as session:
            for start in range(0, sizes.retry_jobs, 1000):
                jobs = [job] * min(1000, sizes.retry_jobs - start)
                async with session.post(f"{gateway.url}/api/v1/jobs/batch", json={"jobs": jobs}) as response:
                    assert response.status == 202, await response.text()
        assert h.db is not None
        db = h.db

        async def done() -> bool:
            return bool(await db.fetchval("SELECT count(*) = $1 FROM jobs WHERE state = 'succeeded'", sizes.retry_jobs))

        await eventually(done, timeout_s=sizes.timeout_s, interval_s=0.1, what="retried jobs succeeded")
        errors = await db.fetch(
            """SELECT EXTRACT(EPOCH FROM (b.started_at - a.finished_at))::float8 - a.retry_delay_s AS err
               FROM job_attempts a JOIN job_attempts b ON b.job_id = a.job_id AND b.attempt = a.attempt + 1
               WHERE a.retry_delay_s IS NOT NULL"""
        )
        values = [r["err"] for r in errors]
        return {
            "jobs": sizes.retry_jobs,
            "retries": len(values),
            "unit_ms": h.config.delay_unit_ms,
            "delay_error_p50_units": round(percentile(values, 50) / unit, 3),
            "delay_error_p99_units": round(percentile(values, 99) / unit, 3),
        }


# schedules with anchors spread over one interval, so fires arrive evenly rather than all at once
INSERT_SCHEDULES = """
INSERT INTO schedules (name, kind, interval_s, jitter, job, anchor, next_slot_at, next_fire_at)
SELECT 'bench-' || i, 'interval', $2, 0, '{"kind": "noop", "queue": "default"}'::jsonb, a, a, a
FROM generate_series(1, $1) AS i,
     LATERAL (SELECT now() + make_interval(secs => 2 + $2 * i / $1)) AS t(a)
"""


async def scheduler(sizes: Sizes) -> dict[str, Any]:
    """Fire lag (job insert time minus slot time) with many active interval schedules."""
    async with Harness("scheduler") as h:
        await h.start("scheduler")
        assert h.db is not None
        await h.db.execute(INSERT_SCHEDULES, sizes.schedules, sizes.schedule_interval_s)
        await asyncio.sleep(sizes.schedule_seconds)
        await h.db.execute("UPDATE schedules SET enabled = false")
        lags = await h.db.fetch(
            "SELECT EXTRACT(EPOCH FROM (created_at - scheduled_for))::float8 AS lag FROM jobs "
            "WHERE scheduled_for IS NOT NULL"
        )
        values = [r["lag"] for r in lags]
        duplicates = await h.db.fetchval(
            "SELECT count(*) - count(DISTINCT (schedule_id, scheduled_for)) FROM jobs WHERE schedule_id IS NOT NULL"
        )
        return {
            "schedules": sizes.schedules,
            "interval_s": sizes.schedule_interval_s,
            "fires": len(values),
            "fires_per_s": round(rate(len(values), sizes.schedule_seconds)),
            "duplicates": duplicates,
            "fire_lag": summary_ms(values),
        }


CASES = {
    "batch": batch_submit,
    "single": single_submit,
    "e2e": end_to_end,
    "latency": latency,
    "retries": retries,
    "scheduler": scheduler,
    "scale": scale,
    "console": console,
    "prune": prune,
}
