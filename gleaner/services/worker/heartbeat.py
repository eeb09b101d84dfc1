"""The lease heartbeat: extend this worker's leases; cancel jobs whose cancel was requested or whose lease was lost."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

import asyncpg

from gleaner.services.worker.claims import JobStore, Key
from gleaner.services.worker.retry import REASON_CANCEL, REASON_LEASE_LOST
from gleaner.services.worker.runner import RunningJobs

log = logging.getLogger(__name__)


def to_cancel(local: Sequence[Key], leased: Mapping[Key, bool]) -> list[tuple[Key, str]]:
    """Which local jobs to cancel, and why: not leased to us any more, or a cancel was requested."""
    out: list[tuple[Key, str]] = []
    for key in local:
        if key not in leased:
            out.append((key, REASON_LEASE_LOST))
        elif leased[key]:
            out.append((key, REASON_CANCEL))
    return out


async def beat(store: JobStore, running: RunningJobs) -> int:
    """One heartbeat over the attempts this process holds; returns how many handlers it cancelled."""
    local = running.held()
    if not local:
        return 0
    leased = await store.heartbeat(local)
    cancelled = 0
    for (job_id, attempt), reason in to_cancel(local, leased):
        job = running.get(job_id)
        if job is not None and job.attempt == attempt and job.cancel(reason):
            log.info("cancelled job %d attempt %d: %s", job_id, attempt, reason)
            cancelled += 1
    return cancelled


async def heartbeat_loop(
    store: JobStore, running: RunningJobs, interval_s: float, *, each_beat: Sequence[Callable[[], Awaitable[object]]]
) -> None:
    """Beat every `interval_s` (a third of the lease) until cancelled; a failed beat is retried next time.

    `each_beat` runs after every beat: the worker's presence row and the paused queues. Beats keep their rate
    however long those take (a slow database must not stretch the time between renewals: an expired lease is
    not renewed).
    """
    loop = asyncio.get_running_loop()
    next_at = loop.time() + interval_s
    while True:
        await asyncio.sleep(max(0.0, next_at - loop.time()))
        next_at = max(next_at + interval_s, loop.time())
        try:
            await beat(store, running)
            for step in each_beat:
                await step()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("heartbeat failed: %r", exc)
