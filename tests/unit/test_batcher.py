"""Group commit: many submissions, few flushes, each caller gets its own result or error; lost lock races are
written again and one bad row fails only its own caller."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import asyncpg
import pytest

from gleaner.shared.batcher import CONFLICT_RETRIES, Batcher, Refused, write_isolated


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


async def test_a_flush_that_loses_a_deadlock_is_written_again_and_every_caller_gets_its_result() -> None:
    calls = 0

    async def flush(items: Sequence[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise asyncpg.exceptions.DeadlockDetectedError("deadlock detected")
        return [item + 1 for item in items]

    batcher: Batcher[int, int] = Batcher(flush, window_s=0.005, max_items=10, name="t")
    batcher.start()
    assert await asyncio.gather(batcher.submit(1), batcher.submit(2)) == [2, 3]
    await batcher.close()
    assert calls == 2


async def test_a_flush_that_keeps_losing_lock_races_fails_its_callers_after_bounded_retries() -> None:
    calls = 0

    async def flush(items: Sequence[int]) -> list[int]:
        nonlocal calls
        calls += 1
        raise asyncpg.exceptions.SerializationError("could not serialize access")

    with pytest.raises(asyncpg.exceptions.SerializationError):
        await write_isolated(flush, [1, 2, 3])
    assert calls == CONFLICT_RETRIES


class RefusesSeven:
    """A flush that PostgreSQL would refuse for any group holding a 7 (as it refuses a NUL in jsonb)."""

    def __init__(self) -> None:
        self.flushed: list[list[int]] = []

    async def __call__(self, items: Sequence[int]) -> list[int]:
        self.flushed.append(list(items))
        if 7 in items:
            raise asyncpg.exceptions.UntranslatableCharacterError("unsupported Unicode escape sequence")
        return [item * 10 for item in items]


async def test_one_row_that_postgres_refuses_fails_only_its_own_caller() -> None:
    flush = RefusesSeven()
    batcher: Batcher[int, int] = Batcher(flush, window_s=0.01, max_items=100, name="t")
    batcher.start()
    outcomes = await asyncio.gather(*(batcher.submit(i) for i in range(20)), return_exceptions=True)
    await batcher.close()
    assert isinstance(outcomes[7], asyncpg.exceptions.UntranslatableCharacterError)
    assert [o for i, o in enumerate(outcomes) if i != 7] == [i * 10 for i in range(20) if i != 7]
    # bisection: the good rows are written in a few groups, not one by one
    assert len(flush.flushed) <= 2 * 5 + 1


async def test_a_value_asyncpg_cannot_encode_fails_only_its_own_item() -> None:
    async def flush(items: Sequence[int]) -> list[int]:
        if any(item >= 2**63 for item in items):
            raise ValueError("invalid input for query argument $1: value out of int64 range")
        return list(items)

    outcomes = await write_isolated(flush, [1, 2**63, 3])
    assert outcomes[0] == 1 and outcomes[2] == 3
    assert isinstance(outcomes[1], Refused) and isinstance(outcomes[1].error, ValueError)


async def test_a_database_that_went_away_fails_the_whole_group_without_splitting_it() -> None:
    calls = 0

    async def flush(items: Sequence[int]) -> list[int]:
        nonlocal calls
        calls += 1
        raise ConnectionResetError("connection lost")

    with pytest.raises(ConnectionResetError):
        await write_isolated(flush, list(range(50)))
    assert calls == 1


async def test_once_a_group_is_split_a_later_failure_reaches_only_the_rows_it_hit() -> None:
    calls = 0

    async def flush(items: Sequence[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise asyncpg.exceptions.DataError("a refused value")
        if 3 in items:
            raise ConnectionResetError("connection lost")
        return list(items)

    outcomes = await write_isolated(flush, [1, 2, 3, 4])
    assert outcomes[:2] == [1, 2]
    assert all(isinstance(o, Refused) and isinstance(o.error, ConnectionResetError) for o in outcomes[2:])


async def test_items_handed_in_together_are_written_as_if_alone_and_never_split_across_statements() -> None:
    flushes: list[list[int]] = []

    async def flush(items: Sequence[int]) -> list[int]:
        flushes.append(list(items))
        if 13 in items:
            raise asyncpg.NumericValueOutOfRangeError("13 is out of range")
        return [item * 10 for item in items]

    batcher: Batcher[int, int] = Batcher(flush, window_s=0.01, max_items=4, name="t")
    batcher.start()
    group, alone, bigger = await asyncio.gather(
        batcher.submit_many([11, 12, 13]), batcher.submit(1), batcher.submit_many([21, 22, 23, 24, 25])
    )
    await batcher.close()
    assert group[:2] == [110, 120] and isinstance(group[2], Refused)  # only the bad row fails
    assert alone == 10 and bigger == [210, 220, 230, 240, 250]
    assert [21, 22, 23, 24, 25] in flushes  # one caller's items, more than max_items, in one statement
    assert all(set(f) <= {11, 12, 13, 1} or f == [21, 22, 23, 24, 25] for f in flushes)
