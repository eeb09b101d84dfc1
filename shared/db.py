"""asyncpg pool with orjson codecs for json and jsonb."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson
from asyncpg.pool import PoolConnectionProxy

from shared.config import Config

Pool = asyncpg.Pool
Record = asyncpg.Record
# what `pool.acquire()` and `asyncpg.connect()` give: both run queries
Connection = asyncpg.Connection | PoolConnectionProxy


# Plan every execution with its parameters. The worker's statements join `unnest($n)` arrays to `jobs`; a cached
# generic plan (PostgreSQL switches after five runs) guesses the arrays' sizes and keeps whatever it chose while
# the table was small or unanalyzed (0.3-0.7 ms a row instead of 0.02 in the e2e benchmark). Not for the
# gateway's request path: planning each group-committed insert added 10-20 ms to its p99.
CUSTOM_PLANS = {"plan_cache_mode": "force_custom_plan"}


async def keep_session(connection: asyncpg.Connection) -> None:
    """Release a pooled connection without asyncpg's reset query (advisory unlock, CLOSE ALL, UNLISTEN, RESET ALL).

    For pools whose statements leave no session state behind (no LISTEN, advisory locks or SET; transactions
    are still rolled back by asyncpg): the reset was a round trip per acquire, 1,600 of them in a 20,000-job
    e2e run.
    """


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


async def init_connection(connection: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await connection.set_type_codec(name, encoder=_dumps, decoder=orjson.loads, schema="pg_catalog")


async def create_pool(
    config: Config,
    *,
    min_size: int = 2,
    max_size: int = 10,
    name: str = "gleaner",
    settings: dict[str, str] | None = None,
    reset_session: bool = True,
) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        config.database_url,
        min_size=min_size,
        max_size=max_size,
        init=init_connection,
        reset=None if reset_session else keep_session,
        server_settings={"application_name": name, **(settings or {})},
    )
    assert pool is not None
    return pool
