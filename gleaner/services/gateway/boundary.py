"""What every gateway request and response passes: query parameters PostgreSQL would refuse, security headers,
and problem+json for the errors aiohttp answers before any handler runs (an over-long header, a bad request line).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from gleaner.shared.config import Config
from gleaner.shared.errors import ConfigError, ValidationProblem, field_error

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
CONSOLE_PREFIX = "/console"
# the console runs no inline script or style and is never framed; forms go to itself only
CONSOLE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
PROBLEM_TYPE = "application/problem+json"
# no version: the Server header tells an attacker nothing to look up
SERVER = "gleaner"
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Server": SERVER}
# the token the Makefile and the README use for local runs; never to be served beyond this machine
SAMPLE_ADMIN_TOKEN = "local-admin-token-change-me"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def query_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A NUL in a query parameter's name or value is a 422 naming it (PostgreSQL's text cannot hold one)."""
    bad = sorted({name for name, value in request.query.items() if "\x00" in name or "\x00" in value})
    if bad:
        message = "must not contain the NUL character (%00)"
        raise ValidationProblem([field_error(name.replace("\x00", "%00"), message) for name in bad])
    return await handler(request)


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: no MIME sniffing, no versioned Server header, no caching of API answers or console
    pages; the console's Content-Security-Policy and framing ban."""
    response.headers.update(SECURITY_HEADERS)
    if request.path.startswith(API_PREFIX):
        response.headers["Cache-Control"] = "no-store"
    elif request.path.startswith(CONSOLE_PREFIX):
        response.headers.update(CONSOLE_HEADERS)
        if not request.path.startswith(f"{CONSOLE_PREFIX}/static/"):
            response.headers["Cache-Control"] = "no-store"


def problem_response(status: int, detail: str) -> web.Response:
    """A problem+json answer built without a request context (the protocol's own errors)."""
    body = {"type": "about:blank", "title": _reason(status), "status": status, "detail": detail}
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-store"}
    return web.Response(body=orjson.dumps(body), status=status, headers=headers, content_type=PROBLEM_TYPE)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class ProblemRequestHandler(RequestHandler):
    """aiohttp answers requests it cannot parse (a header past `max_field_size`, a request line past
    `max_line_size`, a bad method) itself, in plain text, before any middleware or signal runs (aiohttp issue
    #3287 asks for a hook). This renders those answers as problem+json with the security headers."""

    def handle_error(
        self, request: Any, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        if exc is not None and status < 500:
            log.info("refused an unparsable request: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        elif exc is not None:
            log.error("error handling a request", exc_info=exc)
        detail = _first_line(message or (str(exc) if exc is not None else "")) if status < 500 else ""
        response = problem_response(status, detail or _reason(status))
        response.force_close()
        return response


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    # aiohttp's messages read "400, message:\n  Got more than 8190 bytes ... when reading Header value."
    meaningful = [line for line in lines if not line.endswith("message:")]
    return (meaningful or lines or [""])[0][:300]


def use_problem_errors() -> None:
    """Make this process's aiohttp server answer unparsable requests with problem+json (gateway only)."""
    import aiohttp.web_server

    aiohttp.web_server.RequestHandler = ProblemRequestHandler  # type: ignore[attr-defined]


def refuse_sample_token(config: Config) -> None:
    """The documented sample admin token is for a gateway on this machine only."""
    if config.admin_token == SAMPLE_ADMIN_TOKEN and not _loopback(config.http_host):
        raise ConfigError(
            [
                f"GLEANER_ADMIN_TOKEN is the documented sample token and GLEANER_HTTP_HOST={config.http_host!r} "
                "is not a loopback address: set a secret token (or listen on 127.0.0.1)"
            ]
        )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
