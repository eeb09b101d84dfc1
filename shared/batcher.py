"""Group commit: callers submit items one at a time; one statement writes many of them together."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

In = TypeVar("In")
Out = TypeVar("Out")

Flush = Callable[[Sequence[In]], Awaitable[Sequence[Out]]]


class Batcher(Generic[In, Out]):
    """Collects items for up to `window_s` (or `max_items`), then runs `flush` once for all of them.

    `flush` returns one result per item, in order; each caller's `submit` resolves to its own result,
    or raises the flush's exception. While a flush runs, new items gather for the next one, so under
    load batches grow by themselves and the database pays one commit per batch, not per item.
    """

    def __init__(self, flush: Flush[In, Out], *, window_s: float, max_items: int, name: str) -> None:
        self._flush = flush
        self._window_s = window_s
        self._max_items = max_items
        self._name = name
        self._items: list[tuple[In, asyncio.Future[Out]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"batcher-{self._name}")

    async def submit(self, item: In) -> Out:
        if self._closing or self._task is None:
            raise RuntimeError(f"batcher {self._name} is not running")
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        self._items.append((item, future))
        self._wake.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            if self._window_s > 0 and len(self._items) < self._max_items and not self._closing:
                await asyncio.sleep(self._window_s)
            self._wake.clear()
            while self._items:
                batch, self._items = self._items[: self._max_items], self._items[self._max_items :]
                await self._write(batch)
            if self._closing:
                return

    async def _write(self, batch: list[tuple[In, asyncio.Future[Out]]]) -> None:
        try:
            results = await self._flush([item for item, _ in batch])
        except Exception as exc:  # noqa: BLE001 - handed to every waiting caller
            log.warning("batch %s of %d failed: %r", self._name, len(batch), exc)
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def close(self) -> None:
        """Flush what is pending, then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
