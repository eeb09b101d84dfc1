"""Around a site's job: load its policy, hold a concurrency slot, hand the handler the polite client."""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import asyncpg

from gleaner.services.worker.context import Deferred, JobContext
from gleaner.services.worker.fetch import FetchClient
from gleaner.services.worker.polite_http import PoliteClient, resolve_proxies
from gleaner.services.worker.politeness import allowed_per_hour, slot_retry_s
from gleaner.services.worker.robots import RobotsCache
from gleaner.services.worker.site_limits import Site, SiteLimits
from gleaner.shared.config import Config
from gleaner.shared.metrics import Metrics

log = logging.getLogger(__name__)


class SiteSessions:
    """One per worker; `enter(ctx)` sets `ctx.site` and `ctx.http` for a job of a site."""

    def __init__(
        self,
        limits: SiteLimits,
        fetch: FetchClient,
        metrics: Metrics,
        rng: random.Random | None = None,
        *,
        robots: RobotsCache | None = None,
        env: Mapping[str, str] | None = None,
    ):
        self.limits = limits
        self.fetch = fetch
        self.metrics = metrics
        self.robots = robots
        # where `env:NAME` proxy references are looked up (the worker's environment)
        self.env = env or {}
        self._rng = rng or random.Random()

    @classmethod
    def of_worker(
        cls,
        pool: asyncpg.Pool,
        holder: str,
        config: Config,
        fetch: FetchClient,
        metrics: Metrics,
        env: Mapping[str, str],
    ) -> SiteSessions:
        limits = SiteLimits(pool, holder, config.lease_s)
        return cls(limits, fetch, metrics, robots=RobotsCache(pool, fetch, config.robots_ttl_s), env=env)

    @asynccontextmanager
    async def enter(self, ctx: JobContext) -> AsyncIterator[Site | None]:
        """No site: nothing changes. Raises PermanentError (`unknown_site`) or Deferred (no free slot)."""
        if ctx.job.site is None:
            yield None
            return
        site = await self.limits.load(ctx.job.site)
        allowed = allowed_per_hour(site.requests_per_hour, site.min_delay_s, site.hours, datetime.now(UTC))
        self.metrics.site_rate_limit.labels(site.name).set(allowed)
        proxies = resolve_proxies(site.proxies, self.env)
        if not await self.limits.acquire_slot(site, ctx.job.id, ctx.job.attempt):
            self.metrics.site_rate_limit_waits.labels(site.name).inc()
            raise Deferred(slot_retry_s(self._rng), "no_free_slot")
        ctx.site = site
        ctx.http = PoliteClient(
            self.fetch, self.limits, site, self.metrics, robots=self.robots, proxies=proxies, rng=self._rng
        )
        try:
            yield site
        finally:
            await self._release(site, ctx.job.id)

    async def _release(self, site: Site, job_id: int) -> None:
        try:
            await self.limits.release_slot(site, job_id)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # the lease runs out by itself; the slot is only busy a little longer
            log.warning("releasing the slot of site %s failed: %r", site.name, exc)
