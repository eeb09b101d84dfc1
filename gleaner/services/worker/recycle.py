"""Recycling (Celery's worker_max_tasks_per_child / worker_max_memory_per_child): past `GLEANER_WORKER_MAX_JOBS`
jobs or `GLEANER_WORKER_MAX_RSS_MB` of resident memory a worker stops taking messages, lets its jobs finish and
exits 0, so its supervisor (a Deployment's pod restart, `make run`) starts a fresh process."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

STATM = Path("/proc/self/statm")


@dataclass(slots=True)
class JobAllowance:
    """How many more jobs this process may claim; `max_jobs` 0 is no limit."""

    max_jobs: int = 0
    taken: int = 0

    def take(self, count: int = 1) -> int:
        """Reserve up to `count` jobs before claiming them: how many may be claimed (the rest are handed back)."""
        if self.max_jobs:
            count = max(0, min(count, self.max_jobs - self.taken))
        self.taken += count
        return count

    def put_back(self) -> None:
        """A claim found nothing to run (a stale or duplicate message): the reservation is not a job."""
        self.taken -= 1

    @property
    def spent(self) -> bool:
        return bool(self.max_jobs) and self.taken >= self.max_jobs

    def reason(self) -> str:
        return f"took {self.taken} jobs (GLEANER_WORKER_MAX_JOBS={self.max_jobs})"


def resident_mb(statm: Path = STATM) -> float | None:
    """This process's resident memory in MiB, from /proc (None where there is no /proc)."""
    try:
        pages = int(statm.read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)


def memory_reason(rss_mb: float | None, max_rss_mb: int) -> str | None:
    """Why to recycle for memory, or None: within the limit, no limit (0), or no reading."""
    if not max_rss_mb or rss_mb is None or rss_mb <= max_rss_mb:
        return None
    return f"resident memory {rss_mb:.0f} MB is past GLEANER_WORKER_MAX_RSS_MB={max_rss_mb}"


async def watch_memory(max_rss_mb: int, recycle: Callable[[str], None], interval_s: float = 1.0) -> None:
    """Check the resident memory every `interval_s` (between jobs too) and recycle once it is past the limit."""
    while True:
        reason = memory_reason(resident_mb(), max_rss_mb)
        if reason is not None:
            recycle(reason)
            return
        await asyncio.sleep(interval_s)
