"""robots.txt per RFC 9309, fetched through the guarded client and cached in PostgreSQL for every worker."""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg
from protego import Protego
from yarl import URL

from gleaner.services.worker.fetch import FetchClient
from gleaner.shared.errors import HandlerError

# RFC 9309 2.3.1.4: an unreachable robots.txt (5xx, no connection) disallows everything; asked again this soon
UNREACHABLE_RETRY_S = 60.0
# RFC 9309 2.5: crawlers parse at least 500 KiB
MAX_ROBOTS_BYTES = 512 * 1024
UNREACHABLE = 0

LOAD_RULES = "SELECT status, body FROM site_robots WHERE site = $1 AND origin = $2 AND expires_at > now()"
STORE_RULES = """
INSERT INTO site_robots (site, origin, status, body, crawl_delay_s, expires_at)
VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))
ON CONFLICT (site, origin) DO UPDATE SET status = EXCLUDED.status, body = EXCLUDED.body,
    crawl_delay_s = EXCLUDED.crawl_delay_s, fetched_at = now(), expires_at = EXCLUDED.expires_at
"""
COUNT_BLOCKED = "UPDATE sites SET robots_blocked = robots_blocked + 1 WHERE name = $1"


@dataclass(frozen=True, slots=True)
class RobotsRules:
    """What one origin's robots.txt says: `status` of the fetch (0: unreachable) and its text."""

    status: int
    body: str
    _parsed: Protego | None = field(default=None, compare=False)

    @classmethod
    def of(cls, status: int, body: str) -> RobotsRules:
        parsed = Protego.parse(body) if 200 <= status < 300 else None
        return cls(status, body, parsed)

    @property
    def unreachable(self) -> bool:
        """5xx, 429 or no answer: RFC 9309 says assume a complete disallow."""
        return self.status == UNREACHABLE or self.status == 429 or self.status >= 500

    def allows(self, url: str, agent: str) -> bool:
        if self.unreachable:
            return False
        # 4xx (no robots.txt): everything allowed; 2xx: the longest matching rule decides
        return self._parsed is None or bool(self._parsed.can_fetch(url, agent))

    def crawl_delay_s(self, agent: str) -> float | None:
        delay = self._parsed.crawl_delay(agent) if self._parsed is not None else None
        return None if delay is None else float(delay)


def origin_of(url: str) -> str:
    parsed = URL(url)
    return str(parsed.origin())


class RobotsCache:
    """One per worker: a site's rules for an origin, from PostgreSQL while fresh, else fetched and stored."""

    def __init__(self, pool: asyncpg.Pool, fetch: FetchClient, ttl_s: float) -> None:
        self.pool = pool
        self.fetch = fetch
        self.ttl_s = ttl_s

    async def rules(self, site: str, origin: str, agent: str, proxy: str | None, timeout_s: float) -> RobotsRules:
        row = await self.pool.fetchrow(LOAD_RULES, site, origin)
        if row is not None:
            return RobotsRules.of(row["status"], row["body"])
        rules = await self._download(origin, agent, proxy, timeout_s)
        ttl_s = UNREACHABLE_RETRY_S if rules.unreachable else self.ttl_s
        delay = rules.crawl_delay_s(agent)
        await self.pool.execute(STORE_RULES, site, origin, rules.status, rules.body, delay, ttl_s)
        return rules

    async def count_blocked(self, site: str) -> None:
        await self.pool.execute(COUNT_BLOCKED, site)

    async def _download(self, origin: str, agent: str, proxy: str | None, timeout_s: float) -> RobotsRules:
        try:
            response = await self.fetch.get(
                f"{origin}/robots.txt",
                timeout_s=timeout_s,
                headers={"User-Agent": agent},
                max_bytes=MAX_ROBOTS_BYTES,
                proxy=proxy,
                check_status=False,
            )
        except HandlerError:
            return RobotsRules.of(UNREACHABLE, "")
        return RobotsRules.of(response.status, response.text() if response.status < 300 else "")
