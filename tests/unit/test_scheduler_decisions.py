"""What a due schedule does: fire, skip for overlap, or drop misfires; then where it waits next."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from gleaner.shared.scheduling.schedule_rows import decide, first_slot

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def row(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": 1,
        "kind": "interval",
        "interval_s": 10.0,
        "jitter": 0.0,
        "cron": None,
        "timezone": "UTC",
        "at": None,
        "anchor": T0,
        "misfire": "fire_once",
        "overlap": "allow",
        "misfire_grace_s": 5.0,
        "next_slot_at": T0 + timedelta(seconds=10),
        "last_job_state": None,
    }
    return base | overrides


def test_a_due_schedule_fires_its_slot_and_waits_for_the_next() -> None:
    decision = decide(row(), T0 + timedelta(seconds=10.05))
    assert decision.outcome == "fired"
    assert decision.fire_slot == T0 + timedelta(seconds=10)
    assert decision.next_slot == decision.next_fire == T0 + timedelta(seconds=20)
    assert decision.enabled


def test_overlap_skip_does_not_fire_while_the_last_job_is_unfinished() -> None:
    for state in ("queued", "running", "retrying", "scheduled"):
        decision = decide(row(overlap="skip", last_job_state=state), T0 + timedelta(seconds=10))
        assert (decision.outcome, decision.fire_slot) == ("skipped_overlap", None)
        assert decision.next_slot == T0 + timedelta(seconds=20)
    assert decide(row(overlap="skip", last_job_state="succeeded"), T0 + timedelta(seconds=10)).outcome == "fired"
    assert decide(row(overlap="allow", last_job_state="running"), T0 + timedelta(seconds=10)).outcome == "fired"


def test_a_fired_one_shot_disables_itself() -> None:
    decision = decide(row(kind="once", at=T0, next_slot_at=T0), T0 + timedelta(seconds=1))
    assert decision.outcome == "fired" and not decision.enabled and decision.next_fire is None


def test_a_long_missed_slot_is_dropped_under_skip() -> None:
    decision = decide(row(misfire="skip"), T0 + timedelta(seconds=47))
    assert decision.outcome == "misfire_skipped"
    assert decision.next_slot == T0 + timedelta(seconds=50)
    assert decision.missed == 4


def test_a_new_schedule_waits_for_its_first_future_slot() -> None:
    slot, fire = first_slot(row(anchor=T0), T0 + timedelta(seconds=3))
    assert slot == fire == T0 + timedelta(seconds=10)
    once_slot, _ = first_slot(row(kind="once", at=T0 - timedelta(hours=1)), T0)
    assert once_slot == T0 - timedelta(hours=1)


def test_a_slot_whose_jittered_fire_time_comes_before_it_fires_that_slot_not_the_previous_one() -> None:
    early = T0 + timedelta(seconds=9.2)
    decision = decide(row(jitter=0.1), early)
    assert decision.outcome == "fired"
    assert decision.fire_slot == T0 + timedelta(seconds=10)
    assert decision.next_slot == T0 + timedelta(seconds=20)
    assert decision.missed == 0
