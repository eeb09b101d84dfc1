"""Operational endpoints every service serves (/livez, /readyz, /health, /metrics) and the service runner.

/readyz answers for the process itself (started, not draining; the worker also needs its broker), so
orchestrators route to it or not. /health also checks what the process depends on, PostgreSQL and
RabbitMQ, for monitors and people: a database every replica shares being down would otherwise take every
replica out of rotation at once, which is why /readyz leaves it out.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import asyncpg
import uvloop
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from gleaner.shared import processes
from gleaner.shared.amqp import Broker
from gleaner.shared.config import Config
from gleaner.shared.metrics import Metrics, process_ended, shared_by_processes
from gleaner.shared.startup import SchemaGate, bound_socket, expected_version

log = logging.getLogger(__name__)

METRICS_KEY = web.AppKey("metrics", Metrics)
CONFIG_KEY = web.AppKey("config", Config)
ReadyCheck = Callable[[], bool]
READY_KEY: web.AppKey[ReadyCheck] = web.AppKey("ready")
POOL_KEY = web.AppKey("pool", asyncpg.Pool)
BROKER_KEY = web.AppKey("broker", Broker)
SCHEMA_KEY = web.AppKey("schema", SchemaGate)
# Every job (and every submitted one) allocates a few dozen container objects (futures, tasks, dicts of rows and
# events), so at Python's default of 700 the collector ran a young pass every few jobs and a full pass over the whole
# heap every few seconds. Timed with gc.callbacks (thread CPU time) over 50,000 jobs of `make bench` e2e in the worker:
# 1,665 young, 151 middle and 13 full passes, 0.87 s, 17 us a job; with the start-up objects frozen and this limit,
# 153, 14 and 2 passes, 0.075 s, and its memory did not grow (63 MB after the run either way). The gateway and the
# scheduler take the same setting (see `collector_ctx`).
GC_YOUNG_LIMIT = 50_000
HEALTH_TIMEOUT_S = 2.0


async def livez(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    gate = request.app.get(SCHEMA_KEY)
    ready = request.app[READY_KEY]() and (gate is None or gate.ready)
    return web.json_response({"status": "ready" if ready else "not ready"}, status=200 if ready else 503)


async def health(request: web.Request) -> web.Response:
    """Each dependency's state; 200 when all are up, else 503 with what is down."""
    checks = {"database": await _database(request.app.get(POOL_KEY)), "broker": _broker(request.app.get(BROKER_KEY))}
    healthy = all(check["ok"] for check in checks.values())
    body = {"status": "ok" if healthy else "degraded", "ready": request.app[READY_KEY](), "checks": checks}
    return web.json_response(body, status=200 if healthy else 503)


async def _database(pool: asyncpg.Pool | None) -> dict[str, Any]:
    if pool is None:
        return {"ok": False, "error": "no connection pool yet"}
    started = time.perf_counter()
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_S):
            await pool.fetchval("SELECT 1")
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def _broker(broker: Broker | None) -> dict[str, Any]:
    if broker is None:
        return {"ok": False, "error": "no broker connection yet"}
    if not broker.connected:
        return {"ok": False, "error": "disconnected; reconnecting"}
    return {"ok": True, "reconnects": broker.reconnects}


async def metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS_KEY].exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def add_ops_routes(app: web.Application) -> None:
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)


async def schema_ctx(app: web.Application) -> AsyncIterator[None]:
    """After the pool: refuse a database never migrated (StartupError); while the schema is behind this code's
    migrations (a rolling upgrade), serve but answer /readyz 503 until it is there."""
    gate = SchemaGate(expected_version())
    await gate.check(app[POOL_KEY])
    app[SCHEMA_KEY] = gate
    task = None if gate.ready else spawn(gate.wait_until_ready(app[POOL_KEY]), "schema-gate")
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def run(app: web.Application, config: Config, service: str) -> None:
    """Serve `app` on uvloop until SIGTERM/SIGINT; cleanup_ctx steps unwind in reverse order.

    The port is bound first: "listening on" is logged once it is, and a port in use is a StartupError.
    """
    uvloop.install()
    port = config.port_for(service)
    sock = bound_socket(config.http_host, port)
    log.info("%s listening on %s:%d", service, config.http_host, port)
    serve(app, sock, config)


def run_processes(make_app: Callable[[str], web.Application], config: Config, service: str, count: int) -> None:
    """`run` over `count` processes sharing the port (gleaner.shared.processes); `make_app(metrics_dir)` builds each
    process's application after the fork, its metrics in the directory they share. Exits with the set's code."""
    uvloop.install()
    port = config.port_for(service)
    sockets = processes.reuse_port_sockets(config.http_host, port, count)
    log.info("%s listening on %s:%d with %d processes", service, config.http_host, port, count)
    with shared_by_processes() as metrics_dir:
        supervisor = processes.Supervisor(service, on_exit=lambda pid: process_ended(metrics_dir, pid))
        code = supervisor.run(lambda sock: serve(make_app(metrics_dir), sock, config), sockets)
    if code != 0:
        raise SystemExit(code)


def serve(app: web.Application, sock: socket.socket, config: Config) -> None:
    """aiohttp on a bound socket until SIGTERM/SIGINT, then the graceful shutdown."""
    web.run_app(
        app,
        sock=sock,
        print=None,
        access_log=None,
        shutdown_timeout=config.shutdown_grace_s + 5,
        handle_signals=True,
    )


def spawn(coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
    """A named background task whose crash is logged instead of silently swallowed."""
    task = asyncio.create_task(coro, name=name)
    task.add_done_callback(_log_crash)
    return task


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background task %s crashed", task.get_name(), exc_info=task.exception())


async def collector_ctx(app: web.Application) -> AsyncIterator[None]:
    """Keep the cyclic garbage collector's passes few and short once the service has started (see GC_YOUNG_LIMIT);
    the last cleanup_ctx step, so that what start-up built is frozen."""
    gc.collect()
    gc.freeze()  # what start-up built lives as long as the process: full passes no longer walk it
    thresholds = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_LIMIT, *thresholds[1:])
    yield
    gc.set_threshold(*thresholds)
    gc.unfreeze()
