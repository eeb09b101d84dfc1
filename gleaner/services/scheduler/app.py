"""The scheduler service: leader election, then fire schedules, relay the outbox, reap leases, prune; ops routes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from gleaner.services.scheduler.duties import Duties
from gleaner.services.scheduler.leadership import Leadership, identity
from gleaner.shared import ops
from gleaner.shared.amqp import Broker
from gleaner.shared.config import Config
from gleaner.shared.db import create_pool
from gleaner.shared.metrics import Metrics
from gleaner.shared.ops import BROKER_KEY, CONFIG_KEY, METRICS_KEY, POOL_KEY, READY_KEY, add_ops_routes, run, spawn

LEADERSHIP_KEY = web.AppKey("leadership", Leadership)


async def pool_ctx(app: web.Application) -> AsyncIterator[None]:
    app[POOL_KEY] = await create_pool(app[CONFIG_KEY], min_size=1, max_size=6, name="gleaner-scheduler")
    app[METRICS_KEY].watch_pool(app[POOL_KEY])
    yield
    await app[POOL_KEY].close()


async def broker_ctx(app: web.Application) -> AsyncIterator[None]:
    """Connect in the background: the scheduler keeps electing, firing and reaping while RabbitMQ is down."""
    broker = Broker(app[CONFIG_KEY], name="scheduler")
    metrics = app[METRICS_KEY]
    stop = asyncio.Event()

    async def connect() -> None:
        await broker.connect_forever(stop)
        if broker.connection is not None:
            broker.connection.reconnect_callbacks.add(lambda *_: metrics.amqp_reconnects.inc())

    task = spawn(connect(), "broker-connect")
    app[BROKER_KEY] = broker
    yield
    stop.set()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await broker.close()


async def leadership_ctx(app: web.Application) -> AsyncIterator[None]:
    config, metrics = app[CONFIG_KEY], app[METRICS_KEY]
    duties = Duties(config, app[POOL_KEY], app[BROKER_KEY], metrics)
    leadership = Leadership(config, metrics, identity(), duties.run, duties.wake.set)
    task = spawn(leadership.run(), "leadership")
    app[LEADERSHIP_KEY] = leadership
    yield
    # closing the dedicated connection releases the lock, so a standby takes over at once
    await leadership.close(task)


def create_app(config: Config) -> web.Application:
    app = web.Application()
    app[CONFIG_KEY] = config
    app[METRICS_KEY] = Metrics("scheduler")
    # leader or standby, a scheduler connected to PostgreSQL is ready
    app[READY_KEY] = lambda: POOL_KEY in app and LEADERSHIP_KEY in app
    add_ops_routes(app)
    app.cleanup_ctx.extend([pool_ctx, ops.schema_ctx, broker_ctx, leadership_ctx, ops.collector_ctx])
    return app


def main(config: Config) -> None:
    run(create_app(config), config, "scheduler")
