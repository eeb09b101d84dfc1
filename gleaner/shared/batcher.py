"""Group commit: callers submit items one at a time; one statement writes many of them together."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from gleaner.shared.db import CONFLICT, ROW, failure_kind

log = logging.getLogger(__name__)

In = TypeVar("In")
Out = TypeVar("Out")

Flush = Callable[[Sequence[In]], Awaitable[Sequence[Out]]]

# a statement that lost a deadlock or a serialization race is run again this many times at most
CONFLICT_RETRIES = 5
CONFLICT_PAUSE_S = 0.02


@dataclass(frozen=True, slots=True)
class Refused:
    """An item whose write failed on its own: only its caller gets the error."""

    error: Exception


async def write_isolated(flush: Flush[In, Out], items: Sequence[In]) -> list[Out | Refused]:
    """Run `flush` for all items; on a failure that rows can cause, find the rows at fault by bisection.

    Failures are told apart by `gleaner.shared.db.failure_kind`. A conflict (deadlock, serialization failure) reruns the
    same group after a short jittered pause. A failure of the whole group for another reason (the database is
    gone) is raised, so every caller gets it. A failure that one row's values can cause (ROW) splits the group in
    halves, each written on its own, until only the rows at fault fail: k bad rows among n cost about
    2·k·log2(n) extra statements, against n for one by one.

    `flush` must write all of its items or none (one statement or one transaction), so a retried half never
    repeats a write that committed.
    """
    try:
        return list(await _with_conflict_retries(flush, items))
    except Exception as exc:
        if failure_kind(exc) != ROW:
            raise
        if len(items) == 1:
            return [Refused(exc)]
    middle = len(items) // 2
    return [*await _part(flush, items[:middle]), *await _part(flush, items[middle:])]


async def _part(flush: Flush[In, Out], items: Sequence[In]) -> list[Out | Refused]:
    """One half of a split group: once the other half may have committed, every failure is per item."""
    try:
        return await write_isolated(flush, items)
    except Exception as exc:  # noqa: BLE001 - handed to this half's callers only
        return [Refused(exc)] * len(items)


async def _with_conflict_retries(flush: Flush[In, Out], items: Sequence[In]) -> Sequence[Out]:
    for attempt in range(1, CONFLICT_RETRIES + 1):
        try:
            return await flush(items)
        except Exception as exc:
            if failure_kind(exc) != CONFLICT or attempt == CONFLICT_RETRIES:
                raise
            log.warning("a group of %d lost a lock race (%r); writing it again", len(items), exc)
            await asyncio.sleep(CONFLICT_PAUSE_S * attempt * random.uniform(0.5, 1.5))
    raise AssertionError("unreachable")


class Batcher(Generic[In, Out]):
    """Collects items for up to `window_s` (or `max_items`), then runs `flush` once for all of them.

    `flush` returns one result per item, in order; each caller's `submit` resolves to its own result,
    or raises the error of its own write (see `write_isolated`: one item's bad value fails only that item).
    `submit_many` hands in several items for one future: each is written as if submitted alone. While a flush
    runs, new items gather for the next one, so under load batches grow by themselves and the database pays one
    commit per batch, not per item.
    """

    def __init__(self, flush: Flush[In, Out], *, window_s: float, max_items: int, name: str) -> None:
        self._flush = flush
        self._window_s = window_s
        self._max_items = max_items
        self._name = name
        # each caller's items and the future of their results; `_pending` counts the items
        self._entries: list[tuple[Sequence[In], asyncio.Future[list[Out | Refused]]]] = []
        self._pending = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"batcher-{self._name}")
        self._loop = self._task.get_loop()

    async def submit(self, item: In) -> Out:
        result = (await self.submit_many((item,)))[0]
        if isinstance(result, Refused):
            raise result.error
        return result

    async def submit_many(self, items: Sequence[In]) -> list[Out | Refused]:
        """The results of `items`, in order: a write refused for one item's values is its `Refused` (the others are
        written); a failure of the whole batch is raised."""
        if self._closing or self._loop is None:
            raise RuntimeError(f"batcher {self._name} is not running")
        future: asyncio.Future[list[Out | Refused]] = self._loop.create_future()
        self._entries.append((items, future))
        self._pending += len(items)
        self._wake.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            if self._window_s > 0 and self._pending < self._max_items and not self._closing:
                await asyncio.sleep(self._window_s)
            self._wake.clear()
            while self._entries:
                await self._write(self._next_batch())
            if self._closing:
                return

    def _next_batch(self) -> list[tuple[Sequence[In], asyncio.Future[list[Out | Refused]]]]:
        """The entries of the next statement: up to `max_items` items, never a caller's items split (at least one
        caller's, however many it handed in)."""
        taken, count = 0, 0
        for items, _ in self._entries:
            if taken and count + len(items) > self._max_items:
                break
            taken, count = taken + 1, count + len(items)
        batch, self._entries = self._entries[:taken], self._entries[taken:]
        self._pending -= count
        return batch

    async def _write(self, batch: list[tuple[Sequence[In], asyncio.Future[list[Out | Refused]]]]) -> None:
        items = [item for entry, _ in batch for item in entry]
        try:
            results = await write_isolated(self._flush, items)
        except Exception as exc:  # noqa: BLE001 - handed to every waiting caller
            log.warning("batch %s of %d failed: %r", self._name, len(items), exc)
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        start = 0
        for entry, future in batch:
            end = start + len(entry)
            if not future.done():
                future.set_result(results[start:end])
            start = end

    async def close(self) -> None:
        """Flush what is pending, then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
