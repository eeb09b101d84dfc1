"""Integration fixtures: a pool on the test's own database (JSON codecs as the services set them)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from shared.db import init_connection


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4, init=init_connection)
    assert pool is not None
    yield pool
    await pool.close()
