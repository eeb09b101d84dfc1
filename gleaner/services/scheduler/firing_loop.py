"""The firing loop's pass: unless the scheduler is paused, fire due schedules, publish their jobs, record the lag."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from gleaner.shared.outbox import OutboxRow
from gleaner.shared.scheduling import scheduler_status
from gleaner.shared.scheduling.fire_now import fire_all

if TYPE_CHECKING:
    from gleaner.services.scheduler.duties import Duties

log = logging.getLogger(__name__)

# the longest wait between passes (declared beside the scheduler's other timings, GET /scheduler/config shows it)
FIRE_INTERVAL_S = scheduler_status.FIRE_INTERVAL_S
# the shortest: due schedules that come close together are fired in one pass
MIN_PAUSE_S = 0.02

PAUSED = "SELECT paused FROM scheduler_state WHERE id = 1"


async def fire_pass(duties: Duties) -> float:
    """Fire every due schedule unless the scheduler is paused; returns how long to wait before the next pass.

    The fired rows go to the background publisher: the next pass never waits for the broker.
    """
    if await duties.pool.fetchval(PAUSED):
        return FIRE_INTERVAL_S

    async def publish_later(rows: Sequence[OutboxRow]) -> None:
        duties.publisher.add_rows(rows)

    _, next_due_s = await fire_all(duties.pool, duties.config, duties.broker, duties.metrics, publish_later)
    return next_pause(next_due_s)


def next_pause(next_due_s: float | None) -> float:
    """Sleep until the next schedule is due (judged by the database clock), within [MIN_PAUSE_S, FIRE_INTERVAL_S]."""
    if next_due_s is None:
        return FIRE_INTERVAL_S
    return min(FIRE_INTERVAL_S, max(MIN_PAUSE_S, next_due_s))
