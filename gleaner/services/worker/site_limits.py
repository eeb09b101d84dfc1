"""Site limits shared by all workers, kept in PostgreSQL: token reservations and max_concurrency slots."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from gleaner.services.worker.politeness import (
    BucketState,
    Limits,
    Reservation,
    RespectfulHours,
    backoff_s,
    reserve,
    slow_down,
)
from gleaner.shared.errors import PermanentError
from gleaner.shared.site_rules import effective_delay_s

LOAD_SITE = "SELECT * FROM sites WHERE name = $1"

# The row lock serializes every worker's reservation for the site; clock_timestamp() is read after the lock.
LOCK_STATE = """
SELECT tokens, refilled_at, next_request_at, backoff_until, backoff_failures, adaptive_delay_s,
       clock_timestamp() AS now
FROM sites WHERE name = $1 FOR UPDATE
"""
# The totals on `sites` and the minute's row in `site_minutes` (for windowed stats) move together.
STORE_STATE = """
WITH minute AS (
    INSERT INTO site_minutes (site, minute, requests, rate_limit_waits)
    VALUES ($1, date_trunc('minute', now()), 1, $5::int)
    ON CONFLICT (site, minute) DO UPDATE
    SET requests = site_minutes.requests + 1, rate_limit_waits = site_minutes.rate_limit_waits + $5::int
)
UPDATE sites SET tokens = $2, refilled_at = $3, next_request_at = $4,
    requests_total = requests_total + 1, rate_limit_waits = rate_limit_waits + $5::int
WHERE name = $1
"""
COUNT_DEFERRAL = """
WITH minute AS (
    INSERT INTO site_minutes (site, minute, deferrals) VALUES ($1, date_trunc('minute', now()), 1)
    ON CONFLICT (site, minute) DO UPDATE SET deferrals = site_minutes.deferrals + 1
)
UPDATE sites SET deferrals = deferrals + 1 WHERE name = $1
"""

# A 429/503 pauses the site for every worker; a pause already longer is kept (two workers' answers do not race).
CURRENT_STREAK = "SELECT backoff_failures FROM sites WHERE name = $1 FOR UPDATE"
BACK_OFF = """
UPDATE sites SET backoff_until = GREATEST(backoff_until, clock_timestamp() + make_interval(secs => $2)),
    backoff_failures = backoff_failures + 1, backoffs = backoffs + 1
WHERE name = $1
RETURNING backoff_until
"""
PAUSED = "SELECT backoff_until > clock_timestamp() FROM sites WHERE name = $1"
# after a good answer: the streak of busy answers ends; an adaptive site stores its new spacing
SETTLE = "UPDATE sites SET backoff_failures = 0, adaptive_delay_s = COALESCE($2, adaptive_delay_s) WHERE name = $1"

LOCK_SITE = "SELECT max_concurrency FROM sites WHERE name = $1 FOR UPDATE"
# A lease past its expiry (its worker died) is free again; the same job re-claiming keeps its own row.
HELD_SLOTS = "SELECT count(*) FROM site_slots WHERE site = $1 AND job_id <> $2 AND expires_at > now()"
TAKE_SLOT = """
INSERT INTO site_slots (site, job_id, attempt, holder, expires_at)
VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))
ON CONFLICT (site, job_id) DO UPDATE
SET attempt = EXCLUDED.attempt, holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
"""
# in key order, like the heartbeat's renewal of slots (under the site's row lock, so one worker at a time)
DROP_EXPIRED = """
DELETE FROM site_slots WHERE site = $1 AND job_id IN (
    SELECT job_id FROM site_slots WHERE site = $1 AND expires_at <= now() ORDER BY job_id FOR UPDATE)
"""
RELEASE_SLOT = "DELETE FROM site_slots WHERE site = $1 AND job_id = $2 AND holder = $3"


@dataclass(frozen=True, slots=True)
class Site:
    """A site's policy, as read from its row when a job of the site starts."""

    name: str
    requests_per_hour: float
    burst: int
    min_delay_s: float
    pause_min_s: float
    pause_max_s: float
    hours: RespectfulHours | None
    max_concurrency: int | None
    partial_error_ratio: float
    timeout_s: float
    max_bytes: int
    user_agent: str | None
    robots: str = "obey"
    adaptive: bool = False
    proxies: tuple[str, ...] = ()

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> Site:
        try:
            hours = RespectfulHours.from_json(record["respectful_hours"])
        except ValueError as exc:
            raise PermanentError(f"site {record['name']!r}: {exc}", error_class="bad_site") from None
        return cls(
            name=record["name"],
            requests_per_hour=record["requests_per_hour"],
            burst=record["burst"],
            min_delay_s=record["min_delay_s"],
            pause_min_s=record["pause_min_s"],
            pause_max_s=record["pause_max_s"],
            hours=hours,
            max_concurrency=record["max_concurrency"],
            partial_error_ratio=record["partial_error_ratio"],
            timeout_s=record["timeout_s"],
            max_bytes=record["max_bytes"],
            user_agent=record["user_agent"],
            robots=record["robots"],
            adaptive=record["adaptive"],
            proxies=tuple(record["proxies"]),
        )

    def limits_at(self, now: datetime, delay_s: float | None = None) -> Limits:
        """Rate, burst and spacing at `now` (`delay_s`, default the minimum delay), stretched in respectful hours."""
        spacing_s = self.min_delay_s if delay_s is None else delay_s
        return Limits(self.requests_per_hour, self.burst, spacing_s, slow_down(self.hours, now))


class SiteLimits:
    """The worker's statements against `sites` and `site_slots`."""

    def __init__(self, pool: asyncpg.Pool, holder: str, lease_s: float) -> None:
        self.pool = pool
        self.holder = holder
        self.lease_s = lease_s

    async def load(self, name: str) -> Site:
        """The site's policy; a name with no row fails the job permanently (`unknown_site`)."""
        record = await self.pool.fetchrow(LOAD_SITE, name)
        if record is None:
            raise PermanentError(f"no site named {name!r}", error_class="unknown_site")
        return Site.from_record(record)

    async def take(self, site: Site, max_wait_s: float, crawl_delay_s: float | None = None) -> Reservation:
        """Reserve the site's next request slot across all workers if it comes within `max_wait_s`; the spacing
        is the largest of the policy's, robots.txt's `crawl_delay_s` and the adaptive one; a backoff is waited."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(LOCK_STATE, site.name)
            if row is None:
                raise PermanentError(f"site {site.name!r} was deleted", error_class="unknown_site")
            adaptive_s = row["adaptive_delay_s"] if site.adaptive else None
            state = BucketState(
                row["tokens"],
                row["refilled_at"],
                row["next_request_at"],
                row["backoff_until"],
                row["backoff_failures"],
                adaptive_s,
            )
            delay_s = effective_delay_s(site.min_delay_s, crawl_delay_s, adaptive_s)
            reservation = reserve(state, site.limits_at(row["now"], delay_s), row["now"], max_wait_s)
            if reservation.taken:
                new = reservation.state
                waited = reservation.wait_s > 0
                await conn.execute(STORE_STATE, site.name, new.tokens, new.refilled_at, new.next_request_at, waited)
            else:
                await conn.execute(COUNT_DEFERRAL, site.name)
            return reservation

    async def back_off(self, site: Site, retry_after_s: float | None) -> datetime:
        """Pause the site on every worker after a 429/503: until Retry-After, else exponentially longer."""
        async with self.pool.acquire() as conn, conn.transaction():
            streak = await conn.fetchval(CURRENT_STREAK, site.name)
            until: datetime = await conn.fetchval(BACK_OFF, site.name, backoff_s(retry_after_s, streak or 0))
        return until

    async def paused(self, site: Site) -> bool:
        """Whether the site's server asked for a pause that has not ended."""
        return bool(await self.pool.fetchval(PAUSED, site.name))

    async def settle(self, site: Site, adaptive_delay_s: float | None) -> None:
        """A good answer: end the site's streak of busy answers and store its adapted spacing (if adaptive)."""
        await self.pool.execute(SETTLE, site.name, adaptive_delay_s)

    async def acquire_slot(self, site: Site, job_id: int, attempt: int) -> bool:
        """Take one of the site's `max_concurrency` slots for this job (a lease, extended by the heartbeat)."""
        if site.max_concurrency is None:
            return True
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.fetchval(LOCK_SITE, site.name)
            await conn.execute(DROP_EXPIRED, site.name)
            if await conn.fetchval(HELD_SLOTS, site.name, job_id) >= site.max_concurrency:
                await conn.execute(COUNT_DEFERRAL, site.name)
                return False
            await conn.execute(TAKE_SLOT, site.name, job_id, attempt, self.holder, self.lease_s)
            return True

    async def release_slot(self, site: Site, job_id: int) -> None:
        if site.max_concurrency is not None:
            await self.pool.execute(RELEASE_SLOT, site.name, job_id, self.holder)
