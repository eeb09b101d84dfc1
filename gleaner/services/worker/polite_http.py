"""The polite client a handler of a site's job gets as `ctx.http`: the site's policy on every request."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from gleaner.services.worker.context import Deferred
from gleaner.services.worker.fetch import FetchClient, Response, ServerBusy
from gleaner.services.worker.politeness import INLINE_WAIT_S, MID_JOB_WAIT_S, adapted_delay_s, page_pause_s
from gleaner.services.worker.robots import RobotsCache, RobotsRules, origin_of
from gleaner.services.worker.site_limits import Site, SiteLimits
from gleaner.shared.errors import HandlerError, PermanentError
from gleaner.shared.metrics import Metrics
from gleaner.shared.site_rules import effective_requests_per_hour

Sleep = Callable[[float], Awaitable[None]]

# request outcomes (the `outcome` label of gleaner_site_requests_total): a closed set
OK, HTTP_ERROR, BLOCKED, ERROR, BUSY = "ok", "http_error", "blocked", "error", "busy"
# a page answered 429/503 is asked again after the site's pause, this many times in all
BUSY_TRIES = 3


class BlockedByRobots(PermanentError):
    """The site's robots.txt disallows the URL for its user agent; nothing was requested."""

    error_class = "blocked_by_robots"


def request_outcome(error: HandlerError | None) -> str:
    if error is None:
        return OK
    if error.error_class == "ssrf_blocked":
        return BLOCKED
    if isinstance(error, ServerBusy):
        return BUSY
    return HTTP_ERROR if error.error_class.startswith("http_") else ERROR


def resolve_proxies(references: tuple[str, ...], env: Mapping[str, str]) -> tuple[str, ...]:
    """The proxy URLs behind a site's references (`env:NAME`, `file:/path`); a missing one fails the job."""
    urls = []
    for reference in references:
        scheme, _, name = reference.partition(":")
        try:
            url = env.get(name, "") if scheme == "env" else Path(name).read_text().strip()
        except OSError as exc:
            raise PermanentError(f"proxy {reference}: {exc.strerror}", error_class="proxy_unset") from None
        if not url.startswith(("http://", "https://")):
            raise PermanentError(f"proxy {reference} holds no http(s) URL", error_class="proxy_unset")
        urls.append(url)
    return tuple(urls)


class PoliteClient:
    """Same `get` as FetchClient, but every request of the job first waits its turn at the site.

    The turn is reserved across all workers (token bucket, minimum delay or robots.txt's Crawl-delay, a pause
    the server asked for, respectful hours). A first request whose turn is more than a few seconds away defers
    the job instead of sleeping; later pages of a running job wait inline (up to a minute), after a randomized
    pause between pages. robots.txt is obeyed unless the policy says `ignore`; a 429/503 pauses the site for
    every worker and the page is asked again after it. The site's timeout, size cap, user agent and proxies
    apply; the SSRF guard and redirect checks are FetchClient's.
    """

    def __init__(
        self,
        fetch: FetchClient,
        limits: SiteLimits,
        site: Site,
        metrics: Metrics,
        *,
        robots: RobotsCache | None = None,
        proxies: tuple[str, ...] = (),
        rng: random.Random | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.fetch = fetch
        self.limits = limits
        self.site = site
        self.requests = 0
        self.agent = site.user_agent or fetch.user_agent
        self._robots = robots
        self._rules: dict[str, RobotsRules] = {}
        self._proxies = itertools.cycle(proxies) if proxies else None
        self._metrics = metrics
        self._rng = rng or random.Random()
        self._sleep = sleep

    async def get(
        self, url: str, *, timeout_s: float | None = None, headers: Mapping[str, str] | None = None
    ) -> Response:
        crawl_delay_s = await self._check_robots(url)
        if self.requests:
            await self._sleep(page_pause_s(self.site.pause_min_s, self.site.pause_max_s, self._rng))
        for tries_left in range(BUSY_TRIES - 1, -1, -1):
            busy_streak, adaptive_s = await self._wait_turn(crawl_delay_s)
            self.requests += 1
            started = time.monotonic()
            try:
                response = await self.fetch.get(
                    url,
                    timeout_s=min(timeout_s or self.site.timeout_s, self.site.timeout_s),
                    headers=self._headers(headers),
                    max_bytes=self.site.max_bytes,
                    proxy=next(self._proxies) if self._proxies is not None else None,
                )
            except ServerBusy as exc:
                self._count(exc)
                await self._back_off(exc)
                if not tries_left:
                    raise
                continue
            except HandlerError as exc:
                self._count(exc)
                await self._settle(busy_streak, adaptive_s, time.monotonic() - started, ok=False)
                raise
            self._count(None)
            await self._settle(busy_streak, adaptive_s, time.monotonic() - started, ok=True)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    async def _check_robots(self, url: str) -> float | None:
        """The Crawl-delay for the URL's origin; raises BlockedByRobots when robots.txt disallows the URL."""
        if self._robots is None or self.site.robots != "obey":
            return None
        origin = origin_of(url)
        rules = self._rules.get(origin)
        if rules is None:
            proxy = next(self._proxies) if self._proxies is not None else None
            rules = await self._robots.rules(self.site.name, origin, self.agent, proxy, self.site.timeout_s)
            self._rules[origin] = rules
        if not rules.allows(url, self.agent):
            self._metrics.site_robots_blocked.labels(self.site.name).inc()
            await self._robots.count_blocked(self.site.name)
            raise BlockedByRobots(f"{url}: disallowed by {origin}/robots.txt for {self.agent!r}")
        return rules.crawl_delay_s(self.agent)

    async def _wait_turn(self, crawl_delay_s: float | None) -> tuple[int, float | None]:
        """Wait for (or defer the job until) the site's next turn; returns the busy streak and adaptive spacing."""
        max_wait_s = INLINE_WAIT_S if self.requests == 0 else MID_JOB_WAIT_S
        while True:
            reservation = await self.limits.take(self.site, max_wait_s, crawl_delay_s)
            if not reservation.taken:
                self._metrics.site_rate_limit_waits.labels(self.site.name).inc()
                raise Deferred(reservation.wait_s, "rate_limited")
            if reservation.wait_s <= 0:
                return reservation.state.busy_streak, reservation.state.adaptive_delay_s
            self._metrics.site_rate_limit_waits.labels(self.site.name).inc()
            self._metrics.site_wait.labels(self.site.name).observe(reservation.wait_s)
            await self._sleep(reservation.wait_s)
            # a 429/503 answered while this request waited its turn pauses it too: queue again behind the pause
            if not await self.limits.paused(self.site):
                return reservation.state.busy_streak, reservation.state.adaptive_delay_s

    async def _back_off(self, busy: ServerBusy) -> None:
        await self.limits.back_off(self.site, busy.retry_after_s)
        self._metrics.site_backoffs.labels(
            self.site.name, "retry_after" if busy.retry_after_s is not None else "exponential"
        ).inc()

    async def _settle(self, busy_streak: int, adaptive_s: float | None, latency_s: float, *, ok: bool) -> None:
        """End a streak of busy answers; an adaptive site's spacing follows the latency (errors never shorten it)."""
        new_delay_s = None
        if self.site.adaptive:
            new_delay_s = adapted_delay_s(adaptive_s, latency_s, ok, self.site.min_delay_s)
            rate = effective_requests_per_hour(self.site.requests_per_hour, new_delay_s)
            self._metrics.site_effective_rate.labels(self.site.name).set(rate)
        if new_delay_s is not None or (ok and busy_streak > 0):
            await self.limits.settle(self.site, new_delay_s)

    def _headers(self, extra: Mapping[str, str] | None) -> dict[str, str] | None:
        if self.site.user_agent is None:
            return dict(extra) if extra is not None else None
        return {**(extra or {}), "User-Agent": self.site.user_agent}

    def _count(self, error: HandlerError | None) -> None:
        self._metrics.site_requests.labels(self.site.name, request_outcome(error)).inc()
        if error is not None:
            self._metrics.site_failures.labels(self.site.name).inc()


def client_of(ctx_http: Any) -> FetchClient | PoliteClient | None:
    """The context's client if it is one a handler can fetch with."""
    return ctx_http if isinstance(ctx_http, FetchClient | PoliteClient) else None
