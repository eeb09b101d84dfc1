"""Integration fixtures: a pool on the test's own database (JSON codecs as the services set them), a broker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from gleaner.shared.amqp import Broker
from gleaner.shared.config import Config
from gleaner.shared.db import init_connection


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4, init=init_connection)
    assert pool is not None
    yield pool
    await pool.close()


@pytest.fixture
async def broker(config: Config) -> AsyncIterator[Broker]:
    broker = Broker(config, name="test")
    await broker.connect()
    yield broker
    await broker.close()
