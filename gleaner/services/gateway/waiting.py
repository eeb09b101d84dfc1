"""`GET /jobs/{id}?wait=S`: the event hub's finish events wake the waiters of those jobs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

POLL_S = 1.0


class Waiters:
    """Futures keyed by job id; an event wakes them, the caller re-reads the row either way."""

    def __init__(self) -> None:
        self._waiting: dict[int, set[asyncio.Future[None]]] = {}

    @property
    def waiting(self) -> bool:
        return bool(self._waiting)

    def wake(self, ids: Iterable[int]) -> None:
        for job_id in ids:
            for future in self._waiting.pop(job_id, ()):
                if not future.done():
                    future.set_result(None)

    async def wait(self, job_id: int, timeout_s: float) -> None:
        """Return when the job's event arrives or after `timeout_s` (capped at the poll interval by callers)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(job_id, set()).add(future)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(future, timeout_s)
        finally:
            waiting = self._waiting.get(job_id)
            if waiting is not None:
                waiting.discard(future)
                if not waiting:
                    del self._waiting[job_id]
