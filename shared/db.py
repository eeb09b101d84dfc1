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
) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        config.database_url,
        min_size=min_size,
        max_size=max_size,
        init=init_connection,
        server_settings={"application_name": name, **(settings or {})},
    )
    assert pool is not None
    return pool
