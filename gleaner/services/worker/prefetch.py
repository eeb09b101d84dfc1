"""How many jobs a worker holds ahead, counted in jobs, not messages (pure).

RabbitMQ's prefetch counts messages, and a message may carry a group of jobs: a prefetch of `concurrency`
messages let one worker hold concurrency x group size jobs unclaimed while a newly started worker idled. The
worker holds at most `limit` jobs (its `concurrency` running and as many waiting for a slot): it sets the
channel's prefetch from the jobs it holds and the jobs a message has carried lately, and keeps at most the room
left of a delivery that carries more; the rest it hands on (`Consumer`) in a message of their own.
"""

from __future__ import annotations

from dataclasses import dataclass

# how fast the estimate of jobs per message follows the deliveries (an exponential moving average)
PER_MESSAGE_WEIGHT = 0.2


@dataclass(slots=True)
class JobWindow:
    """Deliveries and jobs this worker holds: unsettled messages, and their jobs not yet ended."""

    limit: int
    per_message: float = 1.0
    jobs: int = 0
    messages: int = 0

    @classmethod
    def of_worker(cls, concurrency: int, group_max_jobs: int) -> JobWindow:
        """`concurrency` jobs running and as many waiting for a slot; a message at first assumed full."""
        return cls(limit=2 * concurrency, per_message=float(group_max_jobs))

    def delivered(self) -> None:
        self.messages += 1

    def admit(self, count: int) -> int:
        """A delivery carries `count` jobs: how many of them to keep (at least one, so every delivery moves on)."""
        self.per_message += (count - self.per_message) * PER_MESSAGE_WEIGHT
        kept = min(count, max(1, self.limit - self.jobs))
        self.jobs += kept
        return kept

    def ended(self, count: int = 1) -> None:
        """Jobs kept earlier ended (recorded, dropped, handed back): their room is free again."""
        self.jobs -= count

    def settled(self) -> None:
        self.messages -= 1

    def prefetch(self) -> int:
        """The channel's prefetch (never 0, which is no limit): the messages held, and as many more as the room
        left takes at the jobs a message carries lately (at least one while there is room)."""
        room = self.limit - self.jobs
        more = max(1, int(room / max(1.0, self.per_message))) if room > 0 else 0
        return max(1, self.messages + more)


@dataclass(slots=True)
class Held:
    """One delivery's share of the window: its jobs kept and not ended yet (all of it freed by `close`)."""

    window: JobWindow
    jobs: int = 0

    def admit(self, count: int) -> int:
        kept = self.window.admit(count)
        self.jobs += kept
        return kept

    def ended(self) -> None:
        self.jobs -= 1
        self.window.ended()

    def close(self) -> None:
        """The delivery is settled (or its flow gave up): whatever it still held is free."""
        self.window.ended(self.jobs)
        self.jobs = 0
        self.window.settled()
