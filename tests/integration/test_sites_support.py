"""Helpers of the site, scrape and SSRF tests: a local page server that logs every request, sites by SQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web

REPO_ROOT = Path(__file__).resolve().parents[2]
# workers that fetch from 127.0.0.1 and can import the example plugin
LOCAL_WORKER_ENV = {"GLEANER_FETCH_ALLOW_PRIVATE": "1", "PYTHONPATH": str(REPO_ROOT)}

Route = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Hit:
    """One request the page server saw: path with query, arrival and end (monotonic), user agent."""

    path: str
    started: float
    ended: float
    user_agent: str


@dataclass(slots=True)
class PageServer:
    """An aiohttp server on 127.0.0.1 whose every request is logged; `route` answers them. Requests of
    /robots.txt (workers read it before a site's first page) are logged apart, in `robots_hits`."""

    route: Route
    host: str = "127.0.0.1"
    port: int = 0
    hits: list[Hit] = field(default_factory=list)
    robots_hits: list[Hit] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def __aenter__(self) -> PageServer:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        try:
            return await self.route(request)
        finally:
            hit = Hit(request.path_qs, started, time.monotonic(), request.headers.get("User-Agent", ""))
            (self.robots_hits if request.path == "/robots.txt" else self.hits).append(hit)


async def pages(request: web.Request) -> web.StreamResponse:
    """/ok/<n> a page, /fail/<n> and /robots.txt 404, /slow/<n>?s=<seconds> a page after a pause, /static the
    same body."""
    path = request.path
    if path.startswith("/fail/") or path == "/robots.txt":
        return web.Response(status=404, text="gone")
    if path.startswith("/slow/"):
        await asyncio.sleep(float(request.query.get("s", "0.3")))
    if path == "/static":
        return web.Response(text="<p>always the same</p>", content_type="text/html")
    if path.startswith("/changing"):
        return web.Response(text=f"<p>{time.time_ns()}</p>", content_type="text/html")
    return web.Response(text=f"<p>page {path}</p>", content_type="text/html")


async def add_site(db: asyncpg.Pool, name: str, **columns: Any) -> None:
    names = ["name", *columns]
    placeholders = ", ".join(f"${n}" for n in range(1, len(names) + 1))
    await db.execute(f"INSERT INTO sites ({', '.join(names)}) VALUES ({placeholders})", name, *columns.values())


def overlapping(hits: list[Hit]) -> list[tuple[Hit, Hit]]:
    """Pairs of requests that were open at the same time."""
    out: list[tuple[Hit, Hit]] = []
    open_until: Hit | None = None
    for hit in sorted(hits, key=lambda h: h.started):
        if open_until is not None and hit.started < open_until.ended:
            out.append((open_until, hit))
        if open_until is None or hit.ended > open_until.ended:
            open_until = hit
    return out
