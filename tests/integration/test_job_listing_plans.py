"""GET /jobs' statement reads a page's worth of rows whatever lies above it, in custom and in generic plans, and
finds every row its filters ask for wherever the row is indexed.

asyncpg prepares each statement; after five executions PostgreSQL may switch to a generic plan, which cannot see
which kind is asked for. Walking the primary key backwards through newer jobs of other kinds then cost the whole
stretch above the first match (114-512 ms at 10,000,000 rows). Since migration 0041 running rows are only in
jobs_leases and finished rows unchanged since they finished are not in jobs_updated_at: a listing reads those parts
apart (job_store.list_query).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import asyncpg
import orjson
import pytest

from gleaner.services.gateway.job_store import ListFilters, list_query

OTHERS = 50_000
# a page of 51 rows found by key: a few index pages and a heap page each
PAGE_BUFFERS = 300


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_url)
    yield connection
    await connection.close()


async def buffers_of(db: asyncpg.Connection, filters: ListFilters, mode: str) -> int:
    """Shared buffers the list statement touches, run as the gateway runs it (prepared, `mode` plans)."""
    sql, args = list_query(filters, None, 51)
    literals = ", ".join(str(a) if isinstance(a, int) else "'" + str(a).replace("'", "''") + "'" for a in args)
    types = ", ".join(
        "bigint" if isinstance(a, int) else "timestamptz" if isinstance(a, datetime) else "text" for a in args
    )
    await db.execute(f"SET plan_cache_mode = {mode}; PREPARE listing({types}) AS {sql}")
    try:
        [plan] = orjson.loads(await db.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE listing({literals})"))
    finally:
        await db.execute("DEALLOCATE listing; RESET plan_cache_mode")
    top: dict[str, Any] = plan["Plan"]
    return int(top["Shared Hit Blocks"]) + int(top["Shared Read Blocks"])


@pytest.mark.parametrize("mode", ["force_custom_plan", "force_generic_plan"])
async def test_a_kind_listing_does_not_walk_newer_jobs_of_other_kinds(db: asyncpg.Connection, mode: str) -> None:
    insert = (
        "INSERT INTO jobs (kind, queue, payload, state, finished_at) "
        "SELECT $1, 'default', '{}'::jsonb, 'succeeded', now() FROM generate_series(1, $2)"
    )
    await db.execute(insert, "fetch", 100)
    await db.execute(insert, "noop", OTHERS)
    await db.execute("VACUUM (ANALYZE) jobs")

    touched = await buffers_of(db, ListFilters(kind="fetch"), mode)
    walked = await buffers_of(db, ListFilters(queue="default", payload='{"nowhere": 1}'), mode)

    assert walked > 3 * PAGE_BUFFERS, f"a walk over every row touches {walked} buffers: enough rows to tell"
    assert touched < PAGE_BUFFERS, f"51 rows of 'fetch' below {OTHERS} others cost {touched} buffers"


# $4 rows of kind $1 in state $2, finished (when final) $3 ago and last changed $5 ago
INSERT_AGED = """
INSERT INTO jobs (kind, queue, payload, state, lease_expires_at, created_at, updated_at, finished_at)
SELECT $1, 'default', '{}'::jsonb, $2, CASE WHEN $2 = 'running' THEN now() END, now() - $3::text::interval,
       now() - $5::text::interval, CASE WHEN $2 IN ('succeeded', 'failed') THEN now() - $3::text::interval END
FROM generate_series(1, $4)
"""


async def since_an_hour_ago(db: asyncpg.Connection) -> datetime:
    value: datetime = await db.fetchval("SELECT now() - interval '1 hour'")
    return value


@pytest.mark.parametrize("mode", ["force_custom_plan", "force_generic_plan"])
async def test_listings_by_state_and_by_change_read_a_page_below_many_older_matches(
    db: asyncpg.Connection, mode: str
) -> None:
    # a hundred rows of each sought kind lie below 50,000 newer rows that match none of the filters
    await db.execute(INSERT_AGED, "noop", "failed", "2 days", 100, "0 seconds")  # dead letters resolved just now
    await db.execute(INSERT_AGED, "noop", "succeeded", "0 seconds", 100, "0 seconds")
    await db.execute(INSERT_AGED, "noop", "running", "2 days", 100, "2 days")
    await db.execute(INSERT_AGED, "noop", "succeeded", "1 day", OTHERS, "1 day")
    await db.execute("VACUUM (ANALYZE) jobs")
    listings = [ListFilters(state="failed"), ListFilters(state="running")]
    # A generic plan cannot see how recent the instant is: it walks the primary key down to the changed rows, as it
    # did when jobs_updated_at held every row. The gateway plans such a listing for its instant (job_store.list_page).
    listings += [ListFilters(updated_after=await since_an_hour_ago(db))] if mode == "force_custom_plan" else []

    for filters in listings:
        touched = await buffers_of(db, filters, mode)
        assert touched < PAGE_BUFFERS, f"51 rows of {filters} below {OTHERS} others cost {touched} buffers"


NAIVE = "SELECT id FROM jobs WHERE {where} ORDER BY id DESC"


async def test_a_listing_finds_waiting_running_finished_and_later_changed_rows_alike(
    db: asyncpg.Connection,
) -> None:
    for kind in ("fetch", "noop"):
        await db.execute(INSERT_AGED, kind, "queued", "0 seconds", 7, "0 seconds")
        await db.execute(INSERT_AGED, kind, "running", "2 hours", 7, "1 minute")
        await db.execute(INSERT_AGED, kind, "succeeded", "2 hours", 7, "2 hours")
        await db.execute(INSERT_AGED, kind, "succeeded", "1 minute", 7, "1 minute")
        await db.execute(INSERT_AGED, kind, "failed", "2 hours", 7, "2 hours")
        await db.execute(INSERT_AGED, kind, "failed", "2 hours", 7, "1 minute")  # resolved since
    hour = await since_an_hour_ago(db)
    cases = [
        (ListFilters(kind="fetch"), "kind = 'fetch'"),
        (ListFilters(state="running"), "state = 'running'"),
        (ListFilters(state="queued"), "state = 'queued'"),
        (ListFilters(state="failed", kind="noop"), "state = 'failed' AND kind = 'noop'"),
        (ListFilters(updated_after=hour), "updated_at > now() - interval '1 hour'"),
        (ListFilters(kind="noop", updated_after=hour), "kind = 'noop' AND updated_at > now() - interval '1 hour'"),
        (
            ListFilters(state="failed", updated_after=hour),
            "state = 'failed' AND updated_at > now() - interval '1 hour'",
        ),
    ]
    for filters, where in cases:
        expected = [r["id"] for r in await db.fetch(NAIVE.format(where=where))]
        assert expected, where
        listed: list[int] = []
        after = None
        while True:  # pages of 4, as a client follows next_page_token
            sql, args = list_query(filters, after, 5)
            rows = [r["id"] for r in await db.fetch(sql, *args)]
            listed += rows[:4]
            if len(rows) <= 4:
                break
            after = rows[3]
        assert listed == expected, where
