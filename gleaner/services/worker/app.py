"""The worker service: consume job messages, run handlers, record outcomes; /livez, /readyz and /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import AsyncIterator

from aiohttp import web

from gleaner.services.worker.cancel_events import CancelListener
from gleaner.services.worker.claims import JobStore
from gleaner.services.worker.consumer import Batchers, Consumer
from gleaner.services.worker.fetch import FetchClient
from gleaner.services.worker.handlers import ServedKinds, load_registry
from gleaner.services.worker.heartbeat import heartbeat_loop
from gleaner.services.worker.kind_registration import KindRegistration
from gleaner.services.worker.presence import Presence
from gleaner.services.worker.publishing import ClaimWriter, FinishWriter, JobEvents
from gleaner.services.worker.recycle import JobAllowance, watch_memory
from gleaner.services.worker.runner import RunningJobs
from gleaner.services.worker.shutdown import Drainer
from gleaner.services.worker.site_sessions import SiteSessions
from gleaner.shared import ops
from gleaner.shared.amqp import Broker
from gleaner.shared.batcher import Batcher
from gleaner.shared.config import Config
from gleaner.shared.db import CUSTOM_PLANS, create_pool
from gleaner.shared.metrics import Metrics
from gleaner.shared.ops import BROKER_KEY, CONFIG_KEY, METRICS_KEY, POOL_KEY, READY_KEY, add_ops_routes, run, spawn
from gleaner.shared.outbox import Marks

WORKER_ID_KEY = web.AppKey("worker_id", str)
# Every worker statement touches a few rows by primary key (a batch of claimed ids, a site by name). Without
# fresh statistics (a new or fast-growing jobs table: autovacuum analyzes it within a minute at best) the
# planner guessed the claim's state filter matched a handful of rows and hashed all waiting jobs through a
# bitmap scan for every batch: 0.18 ms a claimed row instead of 0.02. Point lookups never need those plans.
POINT_LOOKUPS = {**CUSTOM_PLANS, "enable_hashjoin": "off", "enable_mergejoin": "off", "enable_bitmapscan": "off"}
STARTUP_CONNECT_S = 15.0
REGISTRY_KEY = web.AppKey("registry", ServedKinds)
FETCH_KEY = web.AppKey("fetch", FetchClient)
STORE_KEY = web.AppKey("store", JobStore)
BATCHERS_KEY = web.AppKey("batchers", Batchers)
RUNNING_KEY = web.AppKey("running", RunningJobs)
CONSUMER_KEY = web.AppKey("consumer", Consumer)
DRAINER_KEY = web.AppKey("drainer", Drainer)


def worker_id(config: Config) -> str:
    """This process's identity: the lease owner of its jobs, the holder of its site slots, its `GET /workers` id.

    Unique per start even with `GLEANER_WORKER_ID` set (it becomes the prefix): a restarted worker must not renew,
    finish or release what its previous life left behind; the reaper recovers those jobs when their leases run out.
    """
    boot = secrets.token_hex(3)
    return f"{config.worker_id}-{boot}" if config.worker_id else f"{socket.gethostname()}-{os.getpid()}-{boot}"


async def pool_ctx(app: web.Application) -> AsyncIterator[None]:
    app[POOL_KEY] = await create_pool(
        app[CONFIG_KEY], name="gleaner-worker", settings=POINT_LOOKUPS, reset_session=False
    )
    app[METRICS_KEY].watch_pool(app[POOL_KEY])
    yield
    await app[POOL_KEY].close()


async def broker_ctx(app: web.Application) -> AsyncIterator[None]:
    broker = Broker(app[CONFIG_KEY], name="worker", identity=app[WORKER_ID_KEY])
    # the worker can do nothing without RabbitMQ: unreachable at start is a StartupError (a restart retries it)
    await broker.connect_forever(asyncio.Event(), give_up_after_s=STARTUP_CONNECT_S)
    assert broker.connection is not None
    metrics = app[METRICS_KEY]
    broker.connection.reconnect_callbacks.add(lambda *_: metrics.amqp_reconnects.inc())
    app[BROKER_KEY] = broker
    yield
    await broker.close()


async def registry_ctx(app: web.Application) -> AsyncIterator[None]:
    app[REGISTRY_KEY] = load_registry(app[CONFIG_KEY])
    fetch = FetchClient(app[CONFIG_KEY])
    await fetch.start()
    app[FETCH_KEY] = fetch
    yield
    await fetch.close()


async def batchers_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG_KEY]
    store = JobStore(app[POOL_KEY], app[WORKER_ID_KEY], config.lease_s, config.delay_unit_s)
    started = JobEvents(app[BROKER_KEY])
    marks = Marks(app[POOL_KEY], config.mark_after_s)
    writer = FinishWriter(store, app[BROKER_KEY], app[POOL_KEY], app[METRICS_KEY], started, marks)
    window_s, size = config.batch_window_ms / 1000, config.batch_max
    batchers = Batchers(
        claims=Batcher(ClaimWriter(store, started), window_s=window_s, max_items=size, name="claims"),
        finishes=Batcher(writer, window_s=window_s, max_items=size, name="finishes"),
        handbacks=Batcher(store.hand_back, window_s=window_s, max_items=size, name="handbacks"),
    )
    batchers.start()
    marks.start()
    announcing = spawn(started.run(), "started-events")
    app[STORE_KEY], app[BATCHERS_KEY] = store, batchers
    yield
    await batchers.close()
    await marks.close()  # after the last finish batch published its retries
    await started.close(announcing)  # the last batches' events


async def consumer_ctx(app: web.Application) -> AsyncIterator[None]:
    consumer = Consumer(
        config=app[CONFIG_KEY],
        broker=app[BROKER_KEY],
        pool=app[POOL_KEY],
        registry=app[REGISTRY_KEY],
        metrics=app[METRICS_KEY],
        store=app[STORE_KEY],
        batchers=app[BATCHERS_KEY],
        running=app[RUNNING_KEY],
        http=app[FETCH_KEY],
        sites=SiteSessions.of_worker(
            app[POOL_KEY], app[WORKER_ID_KEY], app[CONFIG_KEY], app[FETCH_KEY], app[METRICS_KEY], os.environ
        ),
        allowance=JobAllowance(app[CONFIG_KEY].worker_max_jobs),
        recycle=app[DRAINER_KEY].recycle,
    )
    app[DRAINER_KEY].attach(consumer, app[RUNNING_KEY])
    await consumer.start()
    app[CONSUMER_KEY] = consumer
    yield
    # drained already when a signal started the shutdown; otherwise here, before the batchers, broker and pool close
    await app[DRAINER_KEY].drain()
    await consumer.close()


async def heartbeat_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG_KEY]
    served = app[REGISTRY_KEY]
    presence = Presence(
        app[POOL_KEY], app[WORKER_ID_KEY], config.consumed_queues, config.worker_concurrency, served.kinds
    )
    kinds = KindRegistration.of(app[POOL_KEY], served, config.consumed_queues)
    await kinds.register()
    await presence.announce(0)
    running = app[RUNNING_KEY]
    each_beat = [kinds.register, lambda: presence.announce(len(running)), app[CONSUMER_KEY].follow_pauses]
    task = spawn(heartbeat_loop(app[STORE_KEY], running, config.lease_s / 3, each_beat=each_beat), "heartbeat")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await presence.stopped()


async def cancel_listener_ctx(app: web.Application) -> AsyncIterator[None]:
    listener = CancelListener(app[BROKER_KEY], app[RUNNING_KEY], on_queues_changed=app[CONSUMER_KEY].follow_pauses)
    await listener.start()
    yield
    with contextlib.suppress(Exception):
        await listener.close()


async def signals_ctx(app: web.Application) -> AsyncIterator[None]:
    app[DRAINER_KEY].install()
    yield


async def memory_watch_ctx(app: web.Application) -> AsyncIterator[None]:
    """GLEANER_WORKER_MAX_RSS_MB: recycle the worker once its resident memory is past the limit."""
    max_rss_mb = app[CONFIG_KEY].worker_max_rss_mb
    task = spawn(watch_memory(max_rss_mb, app[DRAINER_KEY].recycle), "memory-watch") if max_rss_mb else None
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def is_ready(app: web.Application) -> bool:
    broker = app.get(BROKER_KEY)
    return CONSUMER_KEY in app and broker is not None and broker.connected and not app[DRAINER_KEY].draining


def create_app(config: Config) -> web.Application:
    app = web.Application()
    app[CONFIG_KEY] = config
    app[METRICS_KEY] = Metrics("worker")
    app[WORKER_ID_KEY] = worker_id(config)
    app[RUNNING_KEY] = RunningJobs()
    app[DRAINER_KEY] = Drainer(config.shutdown_grace_s)
    app[READY_KEY] = lambda: is_ready(app)
    add_ops_routes(app)
    app.cleanup_ctx.extend(
        [
            pool_ctx,
            ops.schema_ctx,
            broker_ctx,
            registry_ctx,
            batchers_ctx,
            consumer_ctx,
            heartbeat_ctx,
            cancel_listener_ctx,
            signals_ctx,
            memory_watch_ctx,
            ops.collector_ctx,
        ]
    )
    return app


def main(config: Config) -> None:
    run(create_app(config), config, "worker")
