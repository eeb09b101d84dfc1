"""Schedule rows ↔ planner specs, and the decision for one due schedule (pure)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gleaner.shared.scheduling import planner

UNFINISHED = frozenset({"scheduled", "queued", "running", "retrying", "blocked"})


def spec_of(row: Mapping[str, Any]) -> planner.Spec:
    """The planner spec of a stored schedule (stored rows were validated on the way in)."""
    kind = row["kind"]
    if kind == "interval":
        return planner.interval(row["interval_s"], row["anchor"], row["jitter"])
    if kind == "cron":
        return planner.cron(row["cron"], row["timezone"])
    return planner.once(row["at"])


@dataclass(frozen=True, slots=True)
class Decision:
    """What one due schedule does this tick."""

    schedule_id: int
    fire_slot: datetime | None  # insert a job for this slot
    outcome: str  # fired | skipped_overlap | misfire_skipped
    next_slot: datetime | None
    next_fire: datetime | None
    missed: int

    @property
    def enabled(self) -> bool:
        return self.next_slot is not None


def decide(row: Mapping[str, Any], now: datetime, rng: random.Random | None = None) -> Decision:
    """Plan a due schedule: collapse misfires, honour `overlap=skip`, and pick the next slot and fire time."""
    spec = spec_of(row)
    due_slot: datetime = row["next_slot_at"]
    # a negative jitter fires a slot before it starts: judge it as of its slot, or the previous slot would be re-fired
    judged_at = max(now, due_slot)
    plan = planner.plan_due(spec, due_slot, judged_at, row["misfire"], row["misfire_grace_s"])
    next_fire = planner.fire_time(spec, plan.next_slot, rng) if plan.next_slot is not None else None
    if plan.slot is None:
        outcome, slot = "misfire_skipped", None
    elif row["overlap"] == "skip" and row.get("last_job_state") in UNFINISHED:
        outcome, slot = "skipped_overlap", None
    else:
        outcome, slot = "fired", plan.slot
    return Decision(row["id"], slot, outcome, plan.next_slot, next_fire, plan.missed)


def first_slot(
    row: Mapping[str, Any], now: datetime, rng: random.Random | None = None
) -> tuple[datetime | None, datetime | None]:
    """(next_slot_at, next_fire_at) for a new, edited or resumed schedule, counting from `now`."""
    spec = spec_of(row)
    if isinstance(spec, planner.Once):
        slot: datetime | None = spec.at  # a one-shot in the past still fires once (or misfires) when due
    else:
        slot = planner.next_slot(spec, now)
    return slot, (planner.fire_time(spec, slot, rng) if slot is not None else None)


def skip_missed(row: Mapping[str, Any], now: datetime) -> tuple[datetime | None, datetime | None, int]:
    """(next_slot_at, next_fire_at, skipped) for a schedule whose slots up to `now` are dropped, not fired."""
    spec = spec_of(row)
    plan = planner.plan_due(spec, row["next_slot_at"], now, "skip", 0.0)
    fire = planner.fire_time(spec, plan.next_slot) if plan.next_slot is not None else None
    return plan.next_slot, fire, plan.missed
