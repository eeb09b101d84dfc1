"""The leader's periodic duties (fire, relay, reap, prune, gauges), each in its own loop that survives errors."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg

from gleaner.services.scheduler import firing_loop, pruner, reaper, relay, state_gauges
from gleaner.shared.amqp import Broker
from gleaner.shared.config import Config
from gleaner.shared.metrics import Metrics
from gleaner.shared.publisher import Publisher

log = logging.getLogger(__name__)

ERROR_PAUSE_S = 1.0


@dataclass(slots=True)
class Duties:
    """What every duty needs; `wake` is set by schedule notifications to fire without waiting a full interval.

    The firing loop and the reaper hand the rows they commit to `publisher`, so a slow or absent broker never
    holds them up; it publishes in the background, also after the leadership ends.
    """

    config: Config
    pool: asyncpg.Pool
    broker: Broker
    metrics: Metrics
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    # when the relay last looked for rows whose message went missing (monotonic; see relay.stale_check_interval_s)
    stale_checked_at: float = float("-inf")
    publisher: Publisher = field(init=False)

    def __post_init__(self) -> None:
        self.publisher = Publisher(
            self.broker, self.pool, self.metrics, self.config.max_delay_s, self.config.mark_after_s
        )

    async def run(self) -> None:
        """Run every duty until cancelled (leadership lost or shutdown)."""
        config = self.config
        loops = [
            _repeat(lambda: firing_loop.fire_pass(self), "fire", firing_loop.FIRE_INTERVAL_S, self.wake),
            _every(config.relay_interval_s, lambda: relay.relay_pass(self), "relay"),
            _every(config.reaper_interval_s, lambda: reaper.reap_pass(self), "reap"),
            _repeat(lambda: pruner.prune_step(self), "prune", config.prune_interval_s),
            _every(state_gauges.INTERVAL_S, lambda: state_gauges.gauge_pass(self), "gauges"),
        ]
        self.publisher.start()
        try:
            await asyncio.gather(*loops)
        finally:
            await self.publisher.close()  # what the last passes committed, best effort; the relay has the rest


async def _every(interval_s: float, step: Callable[[], Awaitable[object]], name: str) -> None:
    """Run `step` now and then every `interval_s`."""

    async def fixed() -> float:
        await step()
        return interval_s

    await _repeat(fixed, name, interval_s)


async def _repeat(
    step: Callable[[], Awaitable[float]], name: str, fallback_s: float, wake: asyncio.Event | None = None
) -> None:
    """Run `step`, then wait as long as it asks (less when `wake` is set); log and carry on after errors."""
    while True:
        pause_s = fallback_s
        try:
            pause_s = await step()
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("scheduler %s pass failed: %r", name, exc)
            await asyncio.sleep(ERROR_PAUSE_S)
        except Exception:  # one broken duty must not end the others or the leadership
            log.exception("scheduler %s pass crashed", name)
            await asyncio.sleep(ERROR_PAUSE_S)
        await _pause(pause_s, wake)


async def _pause(interval_s: float, wake: asyncio.Event | None) -> None:
    if wake is None:
        await asyncio.sleep(interval_s)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wake.wait(), interval_s)
    wake.clear()
