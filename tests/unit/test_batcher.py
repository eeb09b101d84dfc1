"""Group commit: many submissions, few flushes, each caller gets its own result or error."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from shared.batcher import Batcher


async def test_concurrent_submissions_share_one_flush_and_get_their_own_results() -> None:
    flushes: list[list[int]] = []

    async def flush(items: Sequence[int]) -> list[int]:
        flushes.append(list(items))
        return [item * 10 for item in items]

    batcher: Batcher[int, int] = Batcher(flush, window_s=0.01, max_items=100, name="t")
    batcher.start()
    results = await asyncio.gather(*(batcher.submit(i) for i in range(50)))
    await batcher.close()
    assert results == [i * 10 for i in range(50)]
    assert len(flushes) == 1


async def test_batches_never_exceed_the_maximum() -> None:
    sizes: list[int] = []

    async def flush(items: Sequence[int]) -> list[None]:
        sizes.append(len(items))
        return [None] * len(items)

    batcher: Batcher[int, None] = Batcher(flush, window_s=0.001, max_items=7, name="t")
    batcher.start()
    await asyncio.gather(*(batcher.submit(i) for i in range(30)))
    await batcher.close()
    assert sum(sizes) == 30 and max(sizes) <= 7


async def test_a_failed_flush_raises_in_every_caller_and_the_batcher_keeps_going() -> None:
    calls = 0

    async def flush(items: Sequence[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database went away")
        return list(items)

    batcher: Batcher[int, int] = Batcher(flush, window_s=0.005, max_items=10, name="t")
    batcher.start()
    outcomes = await asyncio.gather(batcher.submit(1), batcher.submit(2), return_exceptions=True)
    assert all(isinstance(o, RuntimeError) for o in outcomes)
    assert await batcher.submit(3) == 3
    await batcher.close()


async def test_submitting_after_close_is_an_error() -> None:
    async def flush(items: Sequence[int]) -> list[int]:
        return list(items)

    batcher: Batcher[int, int] = Batcher(flush, window_s=0, max_items=10, name="t")
    batcher.start()
    await batcher.close()
    with pytest.raises(RuntimeError):
        await batcher.submit(1)
