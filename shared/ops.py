"""Operational endpoints every service serves (/livez, /readyz, /metrics) and the service runner."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import uvloop
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared.config import Config
from shared.metrics import Metrics

log = logging.getLogger(__name__)

METRICS_KEY = web.AppKey("metrics", Metrics)
CONFIG_KEY = web.AppKey("config", Config)
ReadyCheck = Callable[[], bool]
READY_KEY: web.AppKey[ReadyCheck] = web.AppKey("ready")


async def livez(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    ready = request.app[READY_KEY]()
    return web.json_response({"status": "ready" if ready else "not ready"}, status=200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS_KEY].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def add_ops_routes(app: web.Application) -> None:
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)


def run(app: web.Application, config: Config, service: str) -> None:
    """Serve `app` on uvloop until SIGTERM/SIGINT; cleanup_ctx steps unwind in reverse order."""
    uvloop.install()
    port = config.port_for(service)
    log.info("%s listening on %s:%d", service, config.http_host, port)
    web.run_app(
        app,
        host=config.http_host,
        port=port,
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
