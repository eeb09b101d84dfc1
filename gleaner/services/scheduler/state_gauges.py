"""The `gleaner_jobs{state,queue}` gauge, exported by the leader only so scaling workers does not multiply it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gleaner.services.scheduler.duties import Duties

INTERVAL_S = 5.0
WAITING_STATES = ("scheduled", "queued", "running", "retrying")

# unfinished rows only, through the jobs_waiting partial index; final states would mean scanning the whole table
COUNT_UNFINISHED = """
SELECT state, queue, count(*) AS n FROM jobs
WHERE state IN ('scheduled', 'queued', 'running', 'retrying')
GROUP BY state, queue
"""

Key = tuple[str, str]


def gauge_values(counts: Iterable[Mapping[str, object]], queues: Iterable[str]) -> dict[Key, int]:
    """Every (state, queue) of the configured queues, zero when absent, plus any other queue seen (pure)."""
    values: dict[Key, int] = {(state, queue): 0 for state in WAITING_STATES for queue in queues}
    for row in counts:
        n = row["n"]
        values[(str(row["state"]), str(row["queue"]))] = int(n) if isinstance(n, int) else 0
    return values


async def gauge_pass(duties: Duties) -> None:
    records = await duties.pool.fetch(COUNT_UNFINISHED)
    gauge = duties.metrics.jobs_by_state
    for (state, queue), n in gauge_values([dict(r) for r in records], duties.config.queues).items():
        gauge.labels(state, queue).set(n)
