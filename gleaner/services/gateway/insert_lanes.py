"""Single submissions through a few group-commit batchers, so one batch's commit overlaps the next one's."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Sequence

import asyncpg

from gleaner.services.gateway.job_store import NewJob
from gleaner.shared.batcher import Batcher

Flush = Callable[[Sequence[NewJob]], Awaitable[Sequence[asyncpg.Record | None]]]


class InsertLanes:
    """Round-robin over `lanes` Batchers: a single Batcher waits for each commit (an fsync) before the
    next flush; with two or three in flight PostgreSQL group-commits them together and latency stays flat."""

    def __init__(self, flush: Flush, *, lanes: int, window_s: float, max_items: int) -> None:
        self._batchers = [
            Batcher(flush, window_s=window_s, max_items=max_items, name=f"submit-{n}") for n in range(lanes)
        ]
        self._next = itertools.cycle(self._batchers)

    def start(self) -> None:
        for batcher in self._batchers:
            batcher.start()

    async def submit(self, item: NewJob) -> asyncpg.Record | None:
        return await next(self._next).submit(item)

    async def close(self) -> None:
        await asyncio.gather(*(b.close() for b in self._batchers))
