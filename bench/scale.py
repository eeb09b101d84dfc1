"""The `scale` case: N finished jobs loaded by SQL, then the end-to-end probe and the API reads against them.

The rows are made by generate_series in chunks (no service writes them), finished over the last
`scale_history_days` with ids rising with time as real history would; one in a hundred failed, one in fifty
cancelled, one in ten a `fetch` of one of a few sites, one in a hundred fired by a schedule, each with its
attempt row. The tables are then vacuumed and analyzed once, as autovacuum would have left them: the statistics
say that nothing waits, which is what a busy table with a long history looks like to the planner.
"""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import asyncpg

from bench.stats import summary_ms

LOAD_CHUNK = 500_000
SITES = 5

SCHEDULE = """
INSERT INTO schedules (name, kind, interval_s, jitter, job, anchor, next_slot_at, next_fire_at, enabled)
VALUES ('bench-history', 'interval', 3600, 0, '{"kind": "noop", "queue": "default"}'::jsonb, now(), now(), now(), false)
RETURNING id
"""

LOAD_SITES = """
INSERT INTO sites (name) SELECT 'site-' || s || '.example' FROM generate_series(0, $1 - 1) AS s ON CONFLICT DO NOTHING
"""

# rows $1..$2 of $3, finishing evenly over $4 seconds that ended $7 seconds ago (row $3 finished then)
LOAD_JOBS = """
INSERT INTO jobs (kind, queue, payload, result, error, state, attempt, site, schedule_id, scheduled_for, trigger,
                  run_at, enqueued_at, created_at, updated_at, started_at, attempt_started_at, finished_at)
OVERRIDING SYSTEM VALUE
SELECT CASE WHEN i % 10 = 0 THEN 'fetch' ELSE 'noop' END, 'default',
       jsonb_build_object('i', i, 'group', i % 100),
       CASE WHEN i % 100 <> 0 AND i % 50 <> 0 THEN '{"ok": true}'::jsonb END,
       CASE WHEN i % 100 = 0 THEN '{"class": "RuntimeError", "message": "bench history"}'::jsonb END,
       CASE WHEN i % 100 = 0 THEN 'failed' WHEN i % 50 = 0 THEN 'cancelled' ELSE 'succeeded' END,
       1,
       CASE WHEN i % 10 = 0 THEN 'site-' || (i / 10 % $6) || '.example' END,
       CASE WHEN i % 100 = 1 THEN $5::bigint END,
       CASE WHEN i % 100 = 1 THEN t.at - interval '1 second' END,
       CASE WHEN i % 100 = 1 THEN 'schedule' ELSE 'api' END,
       t.at - interval '1 second', t.at - interval '1 second', t.at - interval '1 second', t.at,
       t.at - interval '20 milliseconds', t.at - interval '20 milliseconds', t.at
FROM generate_series($1::bigint, $2::bigint) AS i,
     LATERAL (SELECT now() - make_interval(secs => $7 + $4 * ($3 - i)::float8 / $3)) AS t(at)
"""

LOAD_ATTEMPTS = """
INSERT INTO job_attempts (job_id, attempt, worker, started_at, finished_at, outcome, error_class, error_message, site,
                          kind)
SELECT id, 1, 'bench-history', attempt_started_at, finished_at, state, error->>'class', error->>'message', site, kind
FROM jobs WHERE id BETWEEN $1 AND $2
"""


# the indexes that back no constraint: dropped during the load and built again after it (three times faster)
PLAIN_INDEXES = """
SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS definition
FROM pg_index AS i LEFT JOIN pg_constraint AS c ON c.conindid = i.indexrelid
WHERE i.indrelid IN ('jobs'::regclass, 'job_attempts'::regclass) AND c.oid IS NULL
"""


async def load_history(
    pool: asyncpg.Pool, rows: int, history_days: float, ended_days_ago: float = 0.0
) -> dict[str, Any]:
    """Loads `rows` finished jobs (and their attempts) finished over `history_days` up to `ended_days_ago`, then
    VACUUM ANALYZE; returns what it took."""
    started = time.perf_counter()
    async with pool.acquire() as conn:
        schedule_id = await conn.fetchval(SCHEDULE)
        await conn.execute(LOAD_SITES, SITES)
        indexes = await conn.fetch(PLAIN_INDEXES)
        for index in indexes:
            await conn.execute(f"DROP INDEX {index['name']}")
        # the attempts' foreign key is known to hold: skip its per-row checks (the loader is a superuser); the
        # triggers on jobs (and whatever they keep) run as they would for any insert
        await conn.execute("ALTER TABLE job_attempts DISABLE TRIGGER ALL")
        for first in range(1, rows + 1, LOAD_CHUNK):
            last = min(rows, first + LOAD_CHUNK - 1)
            await conn.execute(
                LOAD_JOBS, first, last, rows, history_days * 86_400, schedule_id, SITES, ended_days_ago * 86_400
            )
            await conn.execute(LOAD_ATTEMPTS, first, last)
        await conn.execute("ALTER TABLE job_attempts ENABLE TRIGGER ALL")
        await conn.execute("SET maintenance_work_mem = '256MB'")
        for index in indexes:
            await conn.execute(index["definition"])
        # the loaded ids were given explicitly: new jobs continue after them
        await conn.execute("SELECT setval(pg_get_serial_sequence('jobs', 'id'), (SELECT max(id) FROM jobs))")
        loaded = time.perf_counter()
        await conn.execute("VACUUM (ANALYZE) jobs")
        await conn.execute("VACUUM (ANALYZE) job_attempts")
    return {
        "rows": rows,
        "schedule_id": schedule_id,
        "load_s": round(loaded - started, 1),
        "vacuum_s": round(time.perf_counter() - loaded, 1),
    }


async def history_of(pool: asyncpg.Pool, template: str) -> dict[str, Any]:
    """What a copied database holds: its rows and the history's schedule."""
    return {
        "rows": await pool.fetchval("SELECT count(*) FROM jobs"),
        "schedule_id": await pool.fetchval("SELECT id FROM schedules WHERE name = 'bench-history'"),
        "template": template,
    }


def read_probes(rows: int, newest_id: int, schedule_id: int) -> dict[str, str]:
    """name → path of each API read measured; ids point into the loaded history."""
    middle = max(1, rows // 2)
    return {
        "list": "/jobs",
        "list_state": "/jobs?state=failed",
        "list_kind": "/jobs?kind=fetch",
        "list_queue": "/jobs?queue=default",
        "list_site": "/jobs?site=site-1.example",
        "list_schedule": f"/jobs?schedule_id={schedule_id}",
        "list_created": "/jobs?created_after=2000-01-01T00:00:00Z&created_before=2100-01-01T00:00:00Z",
        "list_payload": '/jobs?payload={"group":7}',
        "job": f"/jobs/{middle}",
        "job_newest": f"/jobs/{newest_id}",
        "attempts": f"/jobs/{middle}/attempts",
        "dead_letters": "/dead-letters",
        "queues": "/queues",
        "stats_1h": "/stats?window_s=3600",
        "stats_1d": "/stats?window_s=86400",
        "stats_7d": "/stats?window_s=604800",
        "report_1d": "/reports?hours=24",
        "report_7d": "/reports?hours=168",
    }


async def measure_reads(
    base_url: str, headers: dict[str, str], probes: dict[str, str], repeats: int, prefix: str = "/api/v1"
) -> dict[str, Any]:
    """Each probe `repeats` times in turn (one request at a time): p50/p99/max per probe, and the worst p99."""
    timings: dict[str, list[float]] = {name: [] for name in probes}
    async with aiohttp.ClientSession(headers=headers) as session:
        for _ in range(repeats):
            for name, path in probes.items():
                sent = time.perf_counter()
                async with session.get(f"{base_url}{prefix}{path}", allow_redirects=False) as response:
                    body = await response.read()
                    assert response.status == 200, (name, response.status, body[:500])
                timings[name].append(time.perf_counter() - sent)
    figures = {name: summary_ms(values) for name, values in timings.items()}
    worst = max(figures, key=lambda name: figures[name]["p99_ms"])
    return {"worst": {"probe": worst, "p99_ms": figures[worst]["p99_ms"]}, **figures}


def console_probes(rows: int, schedule_id: int) -> dict[str, str]:
    """name → path of each console page measured (and the live parts the browser fetches again)."""
    middle = max(1, rows // 2)
    return {
        "overview": "/console/",
        "overview_live": "/console/live/overview",
        "jobs": "/console/jobs",
        "jobs_live": "/console/live/jobs",
        "jobs_failed": "/console/jobs?state=failed",
        "jobs_kind": "/console/jobs?kind=fetch",
        "jobs_site": "/console/jobs?site=site-1.example",
        "jobs_schedule": f"/console/jobs?schedule_id={schedule_id}",
        "jobs_payload": '/console/jobs?payload={"group":7}',
        "job": f"/console/jobs/{middle}",
        "dead_letters": "/console/dead-letters",
        "schedules": "/console/schedules",
        "schedule": f"/console/schedules/{schedule_id}",
        "sites": "/console/sites",
        "site": "/console/sites/site-1.example",
        "queues": "/console/queues",
        "workers": "/console/workers",
        "kinds": "/console/kinds",
    }


async def console_session(base_url: str, key: str) -> dict[str, str]:
    """Sign in to the console as a browser would; the headers that carry its session cookie."""
    async with aiohttp.ClientSession() as session:
        form = {"key": key, "next": "/console/"}
        async with session.post(f"{base_url}/console/sign-in", data=form, allow_redirects=False) as response:
            assert response.status == 303, (response.status, await response.text())
            morsel = response.cookies["gleaner_console"]
    return {"Cookie": f"gleaner_console={morsel.coded_value}"}
