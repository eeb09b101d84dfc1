"""How big each fault scenario is: `make test` sizes, ten times that for `make chaos`, and a smoke size."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Sizes:
    """How big each scenario is; `make test` uses the defaults, `make chaos` ten times the counts."""

    plain_jobs: int = 20_000
    plain_workers: int = 2
    drop_in_flight: int = 60
    broker_outage_s: float = 20.0
    outage_schedules: int = 1
    outage_submissions: int = 40
    postgres_outage_s: float = 10.0
    postgres_jobs: int = 200
    postgres_rate_per_s: float = 10.0
    kill_jobs: int = 100
    leader_kills: int = 3
    leader_schedules: int = 10
    poison_copies: int = 1

    def scaled(self, factor: int) -> Sizes:
        """Counts times `factor`; fault durations and the number of workers stay."""
        counts = ("plain_jobs", "drop_in_flight", "outage_schedules", "outage_submissions", "postgres_jobs")
        counts += ("postgres_rate_per_s", "kill_jobs", "leader_kills", "leader_schedules", "poison_copies")
        return dataclasses.replace(self, **{name: getattr(self, name) * factor for name in counts})

    @classmethod
    def smoke(cls) -> Sizes:
        """Tiny and short: proves the scenarios run, measures nothing."""
        return cls(
            plain_jobs=200,
            drop_in_flight=5,
            broker_outage_s=4.0,
            outage_submissions=4,
            postgres_outage_s=2.0,
            postgres_jobs=20,
            postgres_rate_per_s=2.0,
            kill_jobs=10,
            leader_kills=1,
            leader_schedules=2,
        )
