"""The worker's slots (`GLEANER_WORKER_CONCURRENCY`): taken several at a time, first come first served."""

from __future__ import annotations

import asyncio

from gleaner.services.worker.slots import Slots


async def test_a_group_takes_as_many_slots_as_are_free_and_at_least_one() -> None:
    slots = Slots(4)
    assert await slots.take(3) == 3
    assert await slots.take(3) == 1
    assert slots.free == 0
    waiting = asyncio.ensure_future(slots.take(5))
    await asyncio.sleep(0)
    assert not waiting.done()  # none free: it waits
    slots.give(2)
    assert await waiting == 2


async def test_waiters_are_served_in_the_order_they_came() -> None:
    slots = Slots(1)
    assert await slots.take(1) == 1
    first = asyncio.ensure_future(slots.take(2))
    second = asyncio.ensure_future(slots.take(1))
    await asyncio.sleep(0)
    slots.give(1)
    assert await first == 1
    await asyncio.sleep(0)
    assert not second.done()  # the one freed slot went to the first in line
    slots.give(1)
    assert await second == 1


async def test_a_newcomer_waits_behind_a_woken_waiter_and_a_cancelled_waiter_passes_its_turn_on() -> None:
    slots = Slots(1)
    assert await slots.take(1) == 1
    cancelled = asyncio.ensure_future(slots.take(1))
    after = asyncio.ensure_future(slots.take(1))
    await asyncio.sleep(0)
    slots.give(1)  # wakes `cancelled`, which is cancelled before it runs
    cancelled.cancel()
    newcomer = asyncio.ensure_future(slots.take(1))
    await asyncio.sleep(0)
    assert await after == 1
    assert not newcomer.done() and slots.free == 0
    slots.give(1)
    assert await newcomer == 1
