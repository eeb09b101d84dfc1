"""GET /health on every service: PostgreSQL and RabbitMQ checked, and named when they are down."""

from __future__ import annotations

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestServer

from gleaner.shared.amqp import Broker
from gleaner.shared.config import Config
from gleaner.shared.metrics import Metrics
from gleaner.shared.ops import BROKER_KEY, CONFIG_KEY, METRICS_KEY, POOL_KEY, READY_KEY, add_ops_routes
from tests.support.contract import checked_session
from tests.support.stack import Stack


async def get_json(url: str) -> tuple[int, dict[str, object]]:
    async with checked_session() as session, session.get(url) as response:
        return response.status, await response.json()


async def test_every_service_reports_its_database_and_broker_up(stack: Stack) -> None:
    services = [await stack.start(command) for command in ("gateway", "scheduler", "worker")]

    for service in services:
        status, body = await get_json(f"{service.url}/health")
        assert status == 200, (service.name, body)
        assert body["status"] == "ok" and body["ready"] is True
        checks = body["checks"]
        assert isinstance(checks, dict)
        assert checks["database"]["ok"] is True and checks["database"]["latency_ms"] >= 0
        assert checks["broker"]["ok"] is True


async def test_health_names_a_database_that_is_gone_and_a_broker_that_is_not_connected(
    config: Config, database_url: str
) -> None:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    assert pool is not None
    await pool.close()  # what a service sees when PostgreSQL went away: every statement fails
    app = web.Application()
    app[CONFIG_KEY], app[METRICS_KEY] = config, Metrics("gateway")
    app[READY_KEY] = lambda: True
    app[POOL_KEY], app[BROKER_KEY] = pool, Broker(config, name="test")
    add_ops_routes(app)

    async with TestServer(app) as server:
        status, body = await get_json(str(server.make_url("/health")))
        ready_status, _ = await get_json(str(server.make_url("/readyz")))

    assert status == 503 and body["status"] == "degraded"
    checks = body["checks"]
    assert isinstance(checks, dict)
    assert checks["database"]["ok"] is False and "InterfaceError" in checks["database"]["error"]
    assert checks["broker"] == {"ok": False, "error": "disconnected; reconnecting"}
    assert ready_status == 200, "/readyz answers for the process, not for what it depends on"
