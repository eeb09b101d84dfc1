"""The worker's places for running jobs (`GLEANER_WORKER_CONCURRENCY`), taken several at a time.

A delivery carrying a group takes the places of as many of its jobs as are free in one step, and claims those
jobs together; an `asyncio.Semaphore` costs an acquisition per job. Callers wait in line (first come, first
served): one waiter at a time is woken, takes what is free and wakes the next if any is left.
"""

from __future__ import annotations

import asyncio
from collections import deque


class Slots:
    """`size` places; `take` gives at least one and at most the number wanted, `give` returns them."""

    def __init__(self, size: int) -> None:
        self.free = size
        self._waiters: deque[asyncio.Future[None]] = deque()
        # a waiter was woken and has not taken its places yet: no other is woken meanwhile
        self._woken = False

    async def take(self, wanted: int) -> int:
        """Places for up to `wanted` jobs: as many as are free once it is this caller's turn (at least one)."""
        if self.free > 0 and not self._waiters:
            return self._grab(wanted)
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            self._waiters.remove(waiter)
            if waiter.done() and not waiter.cancelled():
                self._woken = False  # woken, then cancelled: the turn passes on
                self._wake_next()
            raise
        self._waiters.remove(waiter)
        self._woken = False
        taken = self._grab(wanted)
        self._wake_next()
        return taken

    def give(self, count: int = 1) -> None:
        self.free += count
        self._wake_next()

    def _grab(self, wanted: int) -> int:
        taken = min(wanted, self.free)
        self.free -= taken
        return taken

    def _wake_next(self) -> None:
        if self.free <= 0 or self._woken:
            return
        for waiter in self._waiters:
            if not waiter.done():  # a cancelled one leaves the line once its task runs
                self._woken = True
                waiter.set_result(None)
                return
