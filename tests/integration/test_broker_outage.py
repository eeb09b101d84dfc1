"""RabbitMQ out of reach (through a proxy the test takes down): every service says so, work goes on into PostgreSQL,
and everything committed meanwhile starts within seconds of the broker's return."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import aiohttp
import asyncpg
import pytest

from tests.integration.tcp_proxy import TcpProxy
from tests.support.contract import checked_session
from tests.support.stack import Api, Service, Stack, eventually

OUTAGE_REPORTED_S = 2.0
STARTED_AFTER_RETURN_S = 5.0


@pytest.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy("127.0.0.1", 5672)
    await proxy.start()
    yield proxy
    await proxy.close()


@pytest.fixture
def extra_env(proxy: TcpProxy) -> dict[str, str]:
    # a long relay grace: rows whose publish failed must not wait for it
    return {"GLEANER_AMQP_URL": f"amqp://guest:guest@127.0.0.1:{proxy.port}/", "GLEANER_RELAY_GRACE_S": "30"}


async def status(service: Service, path: str) -> int:
    try:
        async with checked_session() as session, session.get(service.url + path) as response:
            return response.status
    except aiohttp.ClientError:
        return 0


async def degraded(services: list[Service]) -> bool:
    return all([await status(s, "/health") == 503 for s in services])


async def healthy(services: list[Service]) -> bool:
    return all([await status(s, "/health") == 200 for s in services])


async def interval_schedule(db: asyncpg.Pool) -> int:
    return int(
        await db.fetchval(
            "INSERT INTO schedules (name, kind, interval_s, jitter, job, anchor, next_slot_at, next_fire_at) "
            # the first slot a little ahead: the firing loop (not woken by this insert) has seen it by then
            "VALUES ('every-second', 'interval', 1, 0, '{\"kind\": \"noop\"}', now() + interval '2 seconds', "
            "now() + interval '2 seconds', now() + interval '2 seconds') RETURNING id"
        )
    )


async def fired(db: asyncpg.Pool, schedule_id: int) -> int:
    return int(await db.fetchval("SELECT count(*) FROM jobs WHERE schedule_id = $1", schedule_id))


async def test_while_rabbitmq_is_down_services_say_degraded_and_jobs_wait_in_postgres_until_it_returns(
    stack: Stack, db: asyncpg.Pool, proxy: TcpProxy, api_factory: type[Api]
) -> None:
    gateway = await stack.start("gateway")
    worker = await stack.start("worker")
    scheduler = await stack.start("scheduler")
    services = [gateway, worker, scheduler]
    api = api_factory(gateway.url)
    schedule_id = await interval_schedule(db)
    await eventually(lambda: healthy(services), what="every service healthy")

    await proxy.stop()
    await eventually(lambda: degraded(services), timeout_s=OUTAGE_REPORTED_S, what="/health 503 on every service")
    assert await status(worker, "/readyz") == 503
    during = [(await api.submit(kind="noop"))["id"] for _ in range(20)]  # 202 each: committed, published later
    before = await fired(db, schedule_id)

    async def firing_on() -> bool:
        return await fired(db, schedule_id) >= before + 3

    await eventually(firing_on, timeout_s=6, what="the schedule firing into PostgreSQL while RabbitMQ is down")
    waiting = [r["id"] for r in await db.fetch("SELECT id FROM jobs WHERE started_at IS NULL")]
    assert set(during) <= set(waiting)

    await proxy.start()
    returned = time.monotonic()

    async def all_started() -> bool:
        count = await db.fetchval("SELECT count(*) FROM jobs WHERE id = ANY($1) AND started_at IS NULL", waiting)
        return count == 0

    await eventually(all_started, timeout_s=STARTED_AFTER_RETURN_S, what="jobs of the outage started")
    assert time.monotonic() - returned <= STARTED_AFTER_RETURN_S
    schedule = await db.fetchrow("SELECT misfire_skipped_count FROM schedules WHERE id = $1", schedule_id)
    assert schedule["misfire_skipped_count"] == 0
    await eventually(lambda: healthy(services), what="every service healthy again")
