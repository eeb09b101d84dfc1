"""The broker's counts of the work queues for GET /queues, asked every `queue_depth_ttl_s`, not per request.

Asking RabbitMQ (its management API, else a passive declare per queue) costs a round trip or three per queue;
a dashboard polling GET /queues should not cost one per request. Each gateway asks in the background every TTL
and requests read the last answer, so it is at most a TTL (and the broker's answer time) old. A request waits
for the broker only when there is no answer yet or the last is `STALE_FACTOR` TTLs old (the broker did not
answer for that long); a zero TTL asks for every request (concurrent requests share one answer).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gleaner.shared.broker_stats import Counts

log = logging.getLogger(__name__)

# past this many TTLs a copy is not served: the request waits for the broker's answer
STALE_FACTOR = 3


@dataclass(frozen=True, slots=True)
class Freshness:
    """What to do with a copy of age `age_s` (None: no copy yet): serve it, refresh it, or both (pure)."""

    serve: bool
    refresh: bool

    @classmethod
    def of(cls, age_s: float | None, ttl_s: float) -> Freshness:
        if age_s is None or age_s >= ttl_s * STALE_FACTOR:
            return cls(serve=False, refresh=True)
        return cls(serve=True, refresh=age_s >= ttl_s)


class QueueDepths:
    """`await depths.get()`: the counts of at most `ttl_s` ago, or of one refresh before that."""

    def __init__(
        self, ask: Callable[[], Awaitable[Counts]], ttl_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ask = ask
        self._ttl_s = ttl_s
        self._clock = clock
        self._counts: Counts = {}
        self._asked_at: float | None = None
        self._refreshing: asyncio.Task[Counts] | None = None

    async def get(self) -> Counts:
        age = None if self._asked_at is None else self._clock() - self._asked_at
        freshness = Freshness.of(age, self._ttl_s)
        if freshness.refresh:
            self.refresh()
        if freshness.serve or self._refreshing is None:
            return self._counts
        return await asyncio.shield(self._refreshing)

    async def follow(self) -> None:
        """Ask every TTL until cancelled (with a zero TTL, requests ask)."""
        while self._ttl_s > 0:
            self.refresh()
            await asyncio.sleep(self._ttl_s)

    def refresh(self) -> None:
        """Ask the broker in the background unless a refresh is running (concurrent requests share one)."""
        if self._refreshing is None:
            self._refreshing = asyncio.ensure_future(self._load())

    async def _load(self) -> Counts:
        asked_at = self._clock()
        try:
            self._counts = await self._ask()
            # an empty answer (broker not connected yet) is not kept: the next request asks again
            self._asked_at = asked_at if self._counts else None
        except Exception:  # a background refresh has no caller to raise to: the next request asks again
            log.exception("could not count the work queues")
        finally:
            self._refreshing = None
        return self._counts

    async def close(self) -> None:
        if self._refreshing is not None:
            self._refreshing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refreshing
