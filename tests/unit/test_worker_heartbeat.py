"""The heartbeat renews the leases this process holds, at its own rate whatever else each beat does."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from gleaner.services.worker.claims import Key
from gleaner.services.worker.heartbeat import heartbeat_loop
from gleaner.services.worker.runner import RunningJobs


class CountingStore:
    def __init__(self) -> None:
        self.renewed: list[list[Key]] = []

    async def heartbeat(self, keys: Sequence[Key]) -> dict[Key, bool]:
        self.renewed.append(list(keys))
        return dict.fromkeys(keys, False)


async def test_slow_steps_after_a_beat_do_not_stretch_the_time_between_renewals() -> None:
    store, running = CountingStore(), RunningJobs()
    running.hold([(1, 1)])

    async def slow_presence() -> None:
        await asyncio.sleep(0.08)  # a slow database answering the presence row

    task = asyncio.create_task(
        heartbeat_loop(store, running, 0.1, each_beat=[slow_presence])  # type: ignore[arg-type]
    )
    await asyncio.sleep(1.05)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert len(store.renewed) >= 8  # every 0.1 s (10 in all), not every 0.18 s (5)
    assert store.renewed[0] == [(1, 1)]


async def test_only_the_attempts_still_held_are_renewed() -> None:
    store, running = CountingStore(), RunningJobs()
    running.hold([(1, 1)])
    running.hold([(2, 3)])
    running.release([(1, 1)])
    task = asyncio.create_task(heartbeat_loop(store, running, 0.01, each_beat=[]))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert store.renewed and all(keys == [(2, 3)] for keys in store.renewed)
