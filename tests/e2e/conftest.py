"""e2e fixtures: the three real services as processes, and a client for the gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.support.stack import Api, Stack


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_url)
    yield connection
    await connection.close()


@pytest.fixture
async def gateway_api(stack: Stack, api_factory: type[Api]) -> Api:
    gateway = await stack.start("gateway")
    return api_factory(gateway.url)
