"""The `gleaner_jobs{state,queue}` and `gleaner_jobs_ready{queue}` gauges, exported by the leader only.

`gleaner_jobs_ready` is what the worker autoscalers scale on: jobs, not messages (one message may carry a group of
jobs, so RabbitMQ's ready messages undercount the work by up to GLEANER_GROUP_MAX_JOBS times).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gleaner.services.scheduler.duties import Duties

INTERVAL_S = 5.0
WAITING_STATES = ("scheduled", "queued", "running", "retrying")

# unfinished rows only, through partial indexes: the waiting ones in jobs_waiting, the running ones in jobs_leases
# (migration 0043); final states would mean scanning the whole table.
# `ready`: due now and not running (queued, a retry whose backoff passed, a scheduled row whose time came).
COUNT_UNFINISHED = """
SELECT state, queue, count(*) AS n, count(*) FILTER (WHERE run_at <= now()) AS ready FROM jobs
WHERE state IN ('scheduled', 'queued', 'retrying')
GROUP BY state, queue
UNION ALL
SELECT state, queue, count(*), 0 FROM jobs WHERE state = 'running' GROUP BY state, queue
"""

Key = tuple[str, str]


def gauge_values(counts: Iterable[Mapping[str, object]], queues: Iterable[str]) -> dict[Key, int]:
    """Every (state, queue) of the configured queues, zero when absent, plus any other queue seen (pure)."""
    values: dict[Key, int] = {(state, queue): 0 for state in WAITING_STATES for queue in queues}
    for row in counts:
        n = row["n"]
        values[(str(row["state"]), str(row["queue"]))] = int(n) if isinstance(n, int) else 0
    return values


def ready_values(counts: Iterable[Mapping[str, object]], queues: Iterable[str]) -> dict[str, int]:
    """Ready jobs per queue: every configured queue, zero when absent, plus any other queue seen (pure)."""
    values = dict.fromkeys(queues, 0)
    for row in counts:
        n = row["ready"]
        queue = str(row["queue"])
        values[queue] = values.get(queue, 0) + (int(n) if isinstance(n, int) else 0)
    return values


async def gauge_pass(duties: Duties) -> None:
    records = [dict(r) for r in await duties.pool.fetch(COUNT_UNFINISHED)]
    gauge = duties.metrics.jobs_by_state
    for (state, queue), n in gauge_values(records, duties.config.queues).items():
        gauge.labels(state, queue).set(n)
    for queue, n in ready_values(records, duties.config.queues).items():
        duties.metrics.jobs_ready.labels(queue).set(n)
