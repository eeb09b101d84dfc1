"""The gateway service: the HTTP API over PostgreSQL (truth) and RabbitMQ (transport); /livez, /readyz, /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
from collections.abc import AsyncIterator, Sequence

import asyncpg
from aiohttp import web

from gleaner.services.gateway import job_store
from gleaner.services.gateway.announcer import Announcer
from gleaner.services.gateway.auth import KeyCache, auth_middleware, follow_revocations
from gleaner.services.gateway.boundary import (
    add_security_headers,
    query_middleware,
    refuse_sample_token,
    use_problem_errors,
)
from gleaner.services.gateway.console.api_client import ApiClient
from gleaner.services.gateway.console.core import CONSOLE_KEY, Console, environment
from gleaner.services.gateway.console.routes import add_console_routes
from gleaner.services.gateway.console.session import Sealer
from gleaner.services.gateway.context import GATEWAY_KEY, Gateway
from gleaner.services.gateway.event_hub import EventHub
from gleaner.services.gateway.insert_lanes import InsertLanes
from gleaner.services.gateway.kind_book import KindBook, follow_kinds
from gleaner.services.gateway.pagination import PageTokens
from gleaner.services.gateway.problems import problem_middleware
from gleaner.services.gateway.queue_depths import QueueDepths
from gleaner.services.gateway.rate_limit import buckets_for
from gleaner.services.gateway.routes import add_api_routes
from gleaner.services.gateway.throttle import rate_limit_middleware
from gleaner.services.gateway.waiting import Waiters
from gleaner.services.gateway.webhook_fanout import WebhookFanout
from gleaner.shared import ops
from gleaner.shared.amqp import Broker
from gleaner.shared.broker_stats import ask_broker
from gleaner.shared.config import Config
from gleaner.shared.db import create_pool
from gleaner.shared.metrics import Metrics
from gleaner.shared.ops import (
    BROKER_KEY,
    CONFIG_KEY,
    METRICS_KEY,
    POOL_KEY,
    READY_KEY,
    add_ops_routes,
    run,
    run_processes,
    spawn,
)
from gleaner.shared.publisher import Publisher
from gleaner.shared.submission import LatestChecks
from gleaner.shared.urlguard import Policy

KEYS_KEY = web.AppKey("keys", KeyCache)
TOKENS_KEY = web.AppKey("page_tokens", PageTokens)
STOP_KEY = web.AppKey("stop", asyncio.Event)
KINDS_KEY = web.AppKey("kinds", KindBook)
FIRST_CONNECT_S = 5.0
# insert batchers in flight on a host: two overlap one commit with the next batch's. Several gateway processes split
# them (one each for two): with two lanes in each of two processes, the 32 clients of `bench --cases single` made
# batches half as large and the gateway's CPU per request rose from 294-317 to 405-444 us (alternating runs,
# GLEANER_GATEWAY_PROCESSES=2, load 3-5)
INSERT_LANES = 2


async def pool_ctx(app: web.Application) -> AsyncIterator[None]:
    # no statement of the gateway's pool leaves session state (its LISTEN has a connection of its own): a release
    # needs no reset query, a round trip per acquire (8 % of the gateway's CPU under single submissions)
    app[POOL_KEY] = await create_pool(
        app[CONFIG_KEY], min_size=4, max_size=16, name="gleaner-gateway", reset_session=False
    )
    app[METRICS_KEY].watch_pool(app[POOL_KEY])
    yield
    await app[POOL_KEY].close()


async def keys_ctx(app: web.Application) -> AsyncIterator[None]:
    """API keys and page-token secrets, once the schema is known to be there."""
    app[KEYS_KEY] = KeyCache(app[POOL_KEY], app[CONFIG_KEY].admin_token)
    app[TOKENS_KEY] = await PageTokens.load(app[POOL_KEY])
    yield


async def console_ctx(app: web.Application) -> AsyncIterator[None]:
    """The web console: its session sealer, its templates and its HTTP client for this gateway's own API."""
    config = app[CONFIG_KEY]
    api = ApiClient(config.http_host)
    sealer = Sealer(config.console_secret, config.console_session_s)
    app[CONSOLE_KEY] = Console(sealer=sealer, api=api, keys=app[KEYS_KEY], templates=environment())
    yield
    await api.close()


async def revocations_ctx(app: web.Application) -> AsyncIterator[None]:
    """Every replica hears key revocations at once (PostgreSQL LISTEN on a connection of its own)."""
    task = spawn(follow_revocations(app[CONFIG_KEY], app[KEYS_KEY]), "key-revocations")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def kinds_ctx(app: web.Application) -> AsyncIterator[None]:
    """Read the kinds workers registered now and again every few seconds (at once for a kind not known yet)."""
    config = app[CONFIG_KEY]
    app[KINDS_KEY] = KindBook(app[POOL_KEY], config.queues, Policy.configured(config.fetch_allow_private))
    await app[KINDS_KEY].refresh()
    task = spawn(follow_kinds(app[KINDS_KEY]), "kinds")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def broker_ctx(app: web.Application) -> AsyncIterator[None]:
    """The gateway serves without RabbitMQ: rows commit and the relay publishes them once it is back."""
    broker = Broker(app[CONFIG_KEY], name="gateway")
    app[BROKER_KEY] = broker
    stop = app[STOP_KEY]
    metrics = app[METRICS_KEY]
    waiters = Waiters()
    hub = EventHub(broker, waiters)

    async def connect() -> None:
        await broker.connect_forever(stop)
        if broker.connection is not None:
            broker.connection.reconnect_callbacks.add(lambda *_: metrics.amqp_reconnects.inc())
            await hub.start()

    task = spawn(connect(), "broker-connect")
    # give the first connection a moment so a fresh gateway usually starts connected; never block on it
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(task), FIRST_CONNECT_S)
    gateway = app[GATEWAY_KEY] = _gateway(app, broker, hub)
    hub.webhooks = gateway.webhooks
    following = spawn(gateway.webhooks.follow(), "webhooks")
    binding = spawn(hub.follow(), "event-bindings")
    yield
    following.cancel()
    binding.cancel()
    stop.set()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await hub.close()
    await broker.close()


async def end_event_streams(app: web.Application) -> None:
    """Before aiohttp waits for running handlers: event streams would otherwise hold the shutdown."""
    if GATEWAY_KEY in app:
        app[GATEWAY_KEY].events.end_streams()


def _gateway(app: web.Application, broker: Broker, hub: EventHub) -> Gateway:
    config, pool, metrics = app[CONFIG_KEY], app[POOL_KEY], app[METRICS_KEY]

    publisher = Publisher(broker, pool, metrics, config.max_delay_s, config.mark_after_s)

    async def flush(items: Sequence[job_store.NewJob]) -> list[asyncpg.Record | None]:
        """One statement for several single submissions, its rows handed to the publisher here, all at once: their
        job_outbox row is deleted once the rows handed over with it are confirmed (see Publisher.add_rows), so none
        may depend on its request getting that far."""
        rows = await job_store.insert_jobs(pool, items)
        publisher.add(r for r in rows if r is not None)
        return rows

    return Gateway(
        config=config,
        metrics=metrics,
        pool=pool,
        broker=broker,
        inserts=InsertLanes(
            flush,
            lanes=max(1, INSERT_LANES // config.gateway_processes),
            window_s=config.batch_window_ms / 1000,
            max_items=config.batch_max,
        ),
        publisher=publisher,
        announcer=Announcer(broker),
        waiters=hub.waiters,
        events=hub,
        webhooks=WebhookFanout(pool, config, publisher),
        kinds=app[KINDS_KEY],
        page_tokens=app[TOKENS_KEY],
        depths=QueueDepths(lambda: ask_broker(config, broker), config.queue_depth_ttl_s),
        checks=LatestChecks(config),
    )


async def workers_ctx(app: web.Application) -> AsyncIterator[None]:
    gateway = app[GATEWAY_KEY]
    gateway.inserts.start()
    gateway.publisher.start()
    depths = spawn(gateway.depths.follow(), "queue-depths")
    yield
    depths.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await depths
    await gateway.inserts.close()
    await gateway.publisher.close()
    await gateway.depths.close()


def is_ready(app: web.Application) -> bool:
    return GATEWAY_KEY in app and not app[STOP_KEY].is_set()


def create_app(config: Config, metrics_dir: str | None = None) -> web.Application:
    """The gateway's application; `metrics_dir`: the one its processes share when there are several."""
    middlewares = [problem_middleware, auth_middleware(lambda a: a[KEYS_KEY])]
    buckets = buckets_for(config.api_rate_per_s, config.api_burst)
    if buckets is not None:
        middlewares.append(rate_limit_middleware(buckets))
    middlewares.append(query_middleware)
    app = web.Application(client_max_size=config.max_body_bytes, middlewares=middlewares)
    app.on_response_prepare.append(add_security_headers)
    app.on_shutdown.append(end_event_streams)
    app[CONFIG_KEY] = config
    app[METRICS_KEY] = Metrics("gateway", metrics_dir)
    app[STOP_KEY] = asyncio.Event()
    app[READY_KEY] = lambda: is_ready(app)
    add_ops_routes(app)
    add_api_routes(app)
    add_console_routes(app)
    app.cleanup_ctx.extend(
        [
            pool_ctx,
            ops.schema_ctx,
            keys_ctx,
            console_ctx,
            revocations_ctx,
            kinds_ctx,
            broker_ctx,
            workers_ctx,
            ops.collector_ctx,
        ]
    )
    return app


def main(config: Config) -> None:
    refuse_sample_token(config)
    use_problem_errors()
    if config.gateway_processes == 1:
        run(create_app(config), config, "gateway")
        return
    shared = with_console_secret(config)
    run_processes(lambda metrics_dir: create_app(shared, metrics_dir), shared, "gateway", config.gateway_processes)


def with_console_secret(config: Config) -> Config:
    """Several processes answer one port: a console session sealed by one must open at the others, so an unset
    GLEANER_CONSOLE_SECRET becomes one random secret for all of them (not one per process)."""
    if config.console_secret is not None:
        return config
    return dataclasses.replace(config, console_secret=secrets.token_urlsafe(32))
