"""GET /jobs' statement reads a page's worth of rows whatever lies above it, in custom and in generic plans.

asyncpg prepares each statement; after five executions PostgreSQL may switch to a generic plan, which cannot see
which kind is asked for. Walking the primary key backwards through newer jobs of other kinds then cost the whole
stretch above the first match (114-512 ms at 10,000,000 rows).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
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
    types = ", ".join("bigint" if isinstance(a, int) else "text" for a in args)
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
