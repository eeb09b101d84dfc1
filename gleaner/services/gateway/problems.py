"""The error middleware: every failure becomes RFC 9457 problem+json; request ids and HTTP metrics."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import orjson
from aiohttp import web

from gleaner.shared import logging as gleaner_logging
from gleaner.shared.errors import Problem
from gleaner.shared.ops import METRICS_KEY

log = logging.getLogger(__name__)

PROBLEM_TYPE = "application/problem+json"
REQUEST_ID_HEADER = "X-Request-Id"
# PostgreSQL down or the pool exhausted: a 503 the client may retry, not a 500
UNAVAILABLE = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def request_id_of(request: web.Request) -> str:
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    if 0 < len(incoming) <= 128 and incoming.isprintable():
        return incoming
    return secrets.token_hex(8)


def render(problem: Problem, instance: str, request_id: str) -> web.Response:
    body: dict[str, Any] = problem.body(instance)
    body["request_id"] = request_id
    headers = {**problem.headers, REQUEST_ID_HEADER: request_id}
    return web.Response(body=orjson.dumps(body), status=problem.status, headers=headers, content_type=PROBLEM_TYPE)


def from_http_exception(exc: web.HTTPException) -> Problem:
    """aiohttp's own errors (404, 405, 413, …) as problems."""
    headers: dict[str, str] = {}
    detail = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else ""
    if isinstance(exc, web.HTTPMethodNotAllowed):
        headers["Allow"] = ", ".join(sorted(exc.allowed_methods))
        detail = f"{exc.method} is not allowed here; allowed: {headers['Allow']}"
    elif isinstance(exc, web.HTTPRequestEntityTooLarge):
        detail = "the request body is larger than the configured maximum"
    elif isinstance(exc, web.HTTPNotFound):
        detail = "no such resource"
    return Problem(exc.status, exc.reason, detail, headers=headers)


def route_of(request: web.Request) -> str:
    route = request.match_info.route
    resource = route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request_id_of(request)
    token = gleaner_logging.request_id.set(request_id)
    started = time.perf_counter()
    try:
        response = await _handle(request, handler, request_id)
    finally:
        gleaner_logging.request_id.reset(token)
    _observe(request, response.status, time.perf_counter() - started)
    return response


async def _handle(request: web.Request, handler: Handler, request_id: str) -> web.StreamResponse:
    try:
        response = await handler(request)
    except Problem as problem:
        return render(problem, request.path, request_id)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return render(from_http_exception(exc), request.path, request_id)
    except UNAVAILABLE as exc:
        log.warning("dependency unavailable serving %s %s: %r", request.method, request.path, exc)
        detail = "the database is unreachable; try again shortly"
        unavailable = Problem(503, "Service Unavailable", detail, headers={"Retry-After": "1"})
        return render(unavailable, request.path, request_id)
    except Exception:  # the last line of defence: a logged 500 problem, never a traceback page
        log.exception("unhandled error serving %s %s", request.method, request.path)
        detail = f"an unexpected error occurred; quote request id {request_id}"
        return render(Problem(500, "Internal Server Error", detail), request.path, request_id)
    response.headers[REQUEST_ID_HEADER] = request_id
    return response


def _observe(request: web.Request, status: int, elapsed_s: float) -> None:
    metrics = request.app.get(METRICS_KEY)
    if metrics is None:
        return
    route = route_of(request)
    metrics.http_requests.labels(request.method, route, str(status)).inc()
    metrics.http_duration.labels(request.method, route).observe(elapsed_s)
