"""The polite client a handler of a site's job gets as `ctx.http`: the site's policy on every request."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

from gleaner.services.worker.context import Deferred
from gleaner.services.worker.fetch import FetchClient, Response
from gleaner.services.worker.politeness import INLINE_WAIT_S, MID_JOB_WAIT_S, page_pause_s
from gleaner.services.worker.site_limits import Site, SiteLimits
from gleaner.shared.errors import HandlerError
from gleaner.shared.metrics import Metrics

Sleep = Callable[[float], Awaitable[None]]

# request outcomes (the `outcome` label of gleaner_site_requests_total): a closed set
OK, HTTP_ERROR, BLOCKED, ERROR = "ok", "http_error", "blocked", "error"


def request_outcome(error: HandlerError | None) -> str:
    if error is None:
        return OK
    if error.error_class == "ssrf_blocked":
        return BLOCKED
    return HTTP_ERROR if error.error_class.startswith("http_") else ERROR


class PoliteClient:
    """Same `get` as FetchClient, but every request of the job first waits its turn at the site.

    The turn is reserved across all workers (token bucket, minimum delay, respectful hours). A first request
    whose turn is more than a few seconds away defers the job instead of sleeping; later pages of a running
    job wait inline (up to a minute), after a randomized pause between pages. The site's timeout, size cap
    and user agent apply; the SSRF guard and redirect checks are FetchClient's.
    """

    def __init__(
        self,
        fetch: FetchClient,
        limits: SiteLimits,
        site: Site,
        metrics: Metrics,
        *,
        rng: random.Random | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.fetch = fetch
        self.limits = limits
        self.site = site
        self.requests = 0
        self._metrics = metrics
        self._rng = rng or random.Random()
        self._sleep = sleep

    async def get(self, url: str, *, timeout_s: float | None = None, headers: dict[str, str] | None = None) -> Response:
        if self.requests:
            await self._sleep(page_pause_s(self.site.pause_min_s, self.site.pause_max_s, self._rng))
        await self._wait_turn()
        self.requests += 1
        try:
            response = await self.fetch.get(
                url,
                timeout_s=min(timeout_s or self.site.timeout_s, self.site.timeout_s),
                headers=self._headers(headers),
                max_bytes=self.site.max_bytes,
            )
        except HandlerError as exc:
            self._count(exc)
            raise
        self._count(None)
        return response

    async def _wait_turn(self) -> None:
        max_wait_s = INLINE_WAIT_S if self.requests == 0 else MID_JOB_WAIT_S
        reservation = await self.limits.take(self.site, max_wait_s)
        if not reservation.taken:
            self._metrics.site_rate_limit_waits.labels(self.site.name).inc()
            raise Deferred(reservation.wait_s, "rate_limited")
        if reservation.wait_s > 0:
            self._metrics.site_rate_limit_waits.labels(self.site.name).inc()
            self._metrics.site_wait.labels(self.site.name).observe(reservation.wait_s)
            await self._sleep(reservation.wait_s)

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str] | None:
        if self.site.user_agent is None:
            return extra
        return {**(extra or {}), "User-Agent": self.site.user_agent}

    def _count(self, error: HandlerError | None) -> None:
        self._metrics.site_requests.labels(self.site.name, request_outcome(error)).inc()
        if error is not None:
            self._metrics.site_failures.labels(self.site.name).inc()


def client_of(ctx_http: Any) -> FetchClient | PoliteClient | None:
    """The context's client if it is one a handler can fetch with."""
    return ctx_http if isinstance(ctx_http, FetchClient | PoliteClient) else None
