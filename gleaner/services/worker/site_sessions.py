"""Around a site's job: load its policy, hold a concurrency slot, hand the handler the polite client."""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from gleaner.services.worker.context import Deferred, JobContext
from gleaner.services.worker.fetch import FetchClient
from gleaner.services.worker.polite_http import PoliteClient
from gleaner.services.worker.politeness import slot_retry_s
from gleaner.services.worker.site_limits import Site, SiteLimits
from gleaner.shared.metrics import Metrics

log = logging.getLogger(__name__)


class SiteSessions:
    """One per worker; `enter(ctx)` sets `ctx.site` and `ctx.http` for a job of a site."""

    def __init__(self, limits: SiteLimits, fetch: FetchClient, metrics: Metrics, rng: random.Random | None = None):
        self.limits = limits
        self.fetch = fetch
        self.metrics = metrics
        self._rng = rng or random.Random()

    @asynccontextmanager
    async def enter(self, ctx: JobContext) -> AsyncIterator[Site | None]:
        """No site: nothing changes. Raises PermanentError (`unknown_site`) or Deferred (no free slot)."""
        if ctx.job.site is None:
            yield None
            return
        site = await self.limits.load(ctx.job.site)
        if not await self.limits.acquire_slot(site, ctx.job.id, ctx.job.attempt):
            self.metrics.site_rate_limit_waits.labels(site.name).inc()
            raise Deferred(slot_retry_s(self._rng), "no_free_slot")
        ctx.site = site
        ctx.http = PoliteClient(self.fetch, self.limits, site, self.metrics, rng=self._rng)
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
