"""How many jobs a worker holds ahead, counted in jobs, not messages (pure).

RabbitMQ's prefetch counts messages, and a message may carry a group of jobs: a prefetch of `concurrency`
messages let one worker hold concurrency x group size jobs unclaimed while a newly started worker idled. The
worker aims at `limit` jobs (its `concurrency` running and as many waiting for a slot): it sets the channel's
prefetch from the jobs it holds and the jobs a message has carried lately. The broker may overshoot by a message
or a few (an ack frees a place before the lowered prefetch arrives), so a delivery is kept whole up to
`keep_limit` (one more `concurrency`); of one that carries more it keeps the room left and hands the rest on
(`Consumer`) in a message of their own.

A message stays unsettled until the last of its jobs is recorded, so one slow job keeps its message's place in the
prefetch long after its neighbours ended. Their room is free again (counted in jobs), but whole groups fit it only
when it is a group wide: with groups as large as `concurrency` or more, a worker running one slow job would take no
new message and leave its other slots idle until that job ended. So while fewer jobs are held than `concurrency`
(a slot is idle or about to be), the prefetch lets one more message in whatever its size; it fits whole up to
`keep_limit` when a group is at most twice `concurrency` (GLEANER_GROUP_MAX_JOBS 64 against the default
concurrency of 32).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# how fast the estimate of jobs per message falls to smaller deliveries (an exponential moving average)
PER_MESSAGE_WEIGHT = 0.1
# a `jobs` header past this is not believed (a group is at most GLEANER_GROUP_MAX_JOBS, at most 1,000)
MAX_ANNOUNCED = 1000


@dataclass(slots=True)
class JobWindow:
    """Deliveries and jobs this worker holds: unsettled messages, and their jobs not yet ended."""

    limit: int
    # a delivery is kept whole up to this many jobs held: the broker may send one more message than the prefetch
    # asked for (an ack frees its place before the next prefetch arrives), which is no reason to hand jobs on
    keep_limit: int = 0
    # the jobs that run at once (GLEANER_WORKER_CONCURRENCY): holding fewer, the worker always takes one more message
    concurrency: int = 0
    per_message: float = 1.0
    jobs: int = 0
    messages: int = 0

    @classmethod
    def of_worker(cls, concurrency: int, group_max_jobs: int) -> JobWindow:
        """`concurrency` jobs running and as many waiting for a slot (a third `concurrency` before handing on);
        a message at first assumed full."""
        return cls(
            limit=2 * concurrency,
            keep_limit=3 * concurrency,
            concurrency=concurrency,
            per_message=float(group_max_jobs),
        )

    def delivered(self) -> None:
        self.messages += 1

    def admit(self, count: int) -> int:
        """A delivery carries `count` jobs: how many of them to keep (at least one, so every delivery moves on)."""
        # up at once to a larger delivery, down slowly: an estimate below the groups coming lets in more than fits
        self.per_message = max(float(count), self.per_message + (count - self.per_message) * PER_MESSAGE_WEIGHT)
        kept = min(count, max(1, self.room_to_keep()))
        self.jobs += kept
        return kept

    def room_to_keep(self) -> int:
        """Jobs a delivery may still add before the rest of it is handed on."""
        return max(self.limit, self.keep_limit) - self.jobs

    def ended(self, count: int = 1) -> None:
        """Jobs kept earlier ended (recorded, dropped, handed back): their room is free again."""
        self.jobs -= count

    def settled(self) -> None:
        self.messages -= 1

    def prefetch(self) -> int:
        """The channel's prefetch (never 0, which is no limit): the messages held, and as many more as the room
        left takes whole at the jobs a message carries lately; at least one more while fewer jobs are held than run
        at once (a slow job's unsettled message must not keep the other slots idle), and one if it holds none."""
        room = self.limit - self.jobs
        more = int(room / max(1.0, self.per_message)) if room > 0 else 0
        if more == 0 and self.jobs < self.concurrency:
            more = 1
        return max(1, self.messages + more)


def announced_jobs(headers: Mapping[str, Any] | None) -> int:
    """The jobs a delivery says it carries (header `jobs` of a group; a message without it carries one), read
    before its body is decoded; `Held.fit` corrects it by the body."""
    count = (headers or {}).get("jobs")
    return count if isinstance(count, int) and 1 <= count <= MAX_ANNOUNCED else 1


@dataclass(slots=True)
class Held:
    """One delivery's share of the window: its jobs kept and not ended yet (all of it freed by `close`).

    Admitted as the delivery arrives, not once its flow decodes it: deliveries that arrive together must not each
    count on the same room (they were handed on in part, and the worker paid a publish for each)."""

    window: JobWindow
    jobs: int = 0

    @classmethod
    def of_delivery(cls, window: JobWindow, announced: int) -> Held:
        window.delivered()
        return cls(window, window.admit(announced))

    def fit(self, count: int) -> int:
        """The body carries `count` jobs: how many of them to keep (what was admitted, corrected to the body within
        the room left)."""
        if count < self.jobs:
            self.window.ended(self.jobs - count)
        elif count > self.jobs:
            count = self.jobs + min(count - self.jobs, max(0, self.window.room_to_keep()))
            self.window.jobs += count - self.jobs
        self.jobs = count
        return count

    def ended(self, count: int = 1) -> None:
        self.jobs -= count
        self.window.ended(count)

    def close(self) -> None:
        """The delivery is settled (or its flow gave up): whatever it still held is free."""
        self.window.ended(self.jobs)
        self.jobs = 0
        self.window.settled()
