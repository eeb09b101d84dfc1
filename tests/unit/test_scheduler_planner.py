"""The planner: interval jitter, DST-correct cron, one-shot schedules and misfire policies (pure)."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gleaner.shared.scheduling import planner

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_interval_slots_follow_the_anchor() -> None:
    spec = planner.interval(60, T0, jitter=0)
    assert planner.next_slot(spec, T0) == T0 + timedelta(seconds=60)
    assert planner.next_slot(spec, T0 + timedelta(seconds=61)) == T0 + timedelta(seconds=120)
    assert planner.preview(spec, T0, 3) == [T0 + timedelta(seconds=s) for s in (60, 120, 180)]


def test_interval_jitter_stays_within_bounds_and_averages_to_the_interval() -> None:
    spec = planner.interval(100, T0, jitter=0.1)
    rng = random.Random(3)
    slots = planner.preview(spec, T0, 2000)
    fires = [planner.fire_time(spec, slot, rng) for slot in slots]
    offsets = [(fire - slot).total_seconds() for fire, slot in zip(fires, slots, strict=True)]
    assert min(offsets) >= -10 and max(offsets) <= 10
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(fires)]
    assert min(gaps) >= 80
    assert sum(gaps) / len(gaps) == pytest.approx(100, abs=0.05)


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (lambda: planner.interval(0, T0), "interval_s"),
        (lambda: planner.interval(-5, T0), "interval_s"),
        (lambda: planner.interval(5, T0, jitter=0.9), "jitter"),
        (lambda: planner.cron("61 * * * *"), "cron"),
        (lambda: planner.cron("* * *"), "cron"),
        (lambda: planner.cron("0 2 * * *", "Mars/Olympus_Mons"), "timezone"),
    ],
)
def test_an_invalid_schedule_names_its_field(bad: object, field: str) -> None:
    with pytest.raises(planner.SpecError) as caught:
        bad()  # type: ignore[operator]
    assert caught.value.field == field


def _daily_fires(expression: str, zone: str, start: datetime, days: int) -> list[datetime]:
    spec = planner.cron(expression, zone)
    fires = planner.preview(spec, start, days)
    return [f.astimezone(ZoneInfo(zone)) for f in fires]


@pytest.mark.parametrize(
    ("zone", "spring", "fall"),
    [
        ("America/New_York", datetime(2026, 3, 8), datetime(2026, 11, 1)),
        ("Europe/Berlin", datetime(2026, 3, 29), datetime(2026, 10, 25)),
    ],
)
def test_a_daily_0230_cron_fires_once_on_both_dst_transition_days(zone: str, spring: datetime, fall: datetime) -> None:
    tz = ZoneInfo(zone)
    for day in (spring, fall):
        start = (day - timedelta(days=2)).replace(tzinfo=tz)
        fires = _daily_fires("30 2 * * *", zone, start, 5)
        on_day = [f for f in fires if f.date() == day.date()]
        assert len(on_day) == 1, fires
        utc = [f.astimezone(UTC) for f in fires]
        gaps = {(b - a) for a, b in itertools.pairwise(utc)}
        assert all(timedelta(hours=22) <= g <= timedelta(hours=26) for g in gaps)


def test_a_cron_in_the_skipped_hour_fires_right_after_the_jump() -> None:
    fires = _daily_fires("30 2 * * *", "America/New_York", datetime(2026, 3, 8, tzinfo=ZoneInfo("America/New_York")), 1)
    assert fires[0].hour == 3 and fires[0].minute == 0


def test_a_cron_in_the_repeated_hour_fires_once() -> None:
    zone = ZoneInfo("Europe/Berlin")
    fires = _daily_fires("30 2 * * *", "Europe/Berlin", datetime(2026, 10, 25, tzinfo=zone), 2)
    assert fires[1].astimezone(UTC) - fires[0].astimezone(UTC) == timedelta(hours=25)


def test_hourly_weekday_cron_skips_weekends() -> None:
    spec = planner.cron("0 * * * 1-5", "UTC")
    saturday = datetime(2026, 11, 21, 10, tzinfo=UTC)
    assert planner.next_slot(spec, saturday) == datetime(2026, 11, 23, 0, tzinfo=UTC)


def test_a_one_shot_in_the_future_fires_once_and_then_has_no_next_slot() -> None:
    spec = planner.once(T0 + timedelta(hours=1))
    assert planner.next_slot(spec, T0) == T0 + timedelta(hours=1)
    assert planner.next_slot(spec, T0 + timedelta(hours=1)) is None


def test_a_missed_one_shot_fires_with_fire_once_and_is_dropped_with_skip() -> None:
    at = T0
    spec = planner.once(at)
    now = at + timedelta(hours=2)
    fired = planner.plan_due(spec, at, now, "fire_once", grace_s=60)
    assert (fired.slot, fired.next_slot) == (at, None)
    skipped = planner.plan_due(spec, at, now, "skip", grace_s=60)
    assert (skipped.slot, skipped.next_slot, skipped.missed) == (None, None, 1)


def test_a_slot_due_just_now_fires_under_either_policy() -> None:
    spec = planner.interval(10, T0, jitter=0)
    due = T0 + timedelta(seconds=10)
    for policy in ("fire_once", "skip"):
        plan = planner.plan_due(spec, due, due + timedelta(seconds=0.2), policy, grace_s=5)
        assert plan.slot == due and plan.next_slot == due + timedelta(seconds=10) and plan.missed == 0


def test_missed_interval_slots_collapse_into_one_catch_up_fire() -> None:
    spec = planner.interval(10, T0, jitter=0)
    due = T0 + timedelta(seconds=10)
    now = T0 + timedelta(seconds=75)
    plan = planner.plan_due(spec, due, now, "fire_once", grace_s=1)
    assert plan.slot == T0 + timedelta(seconds=70)
    assert plan.next_slot == T0 + timedelta(seconds=80)
    assert plan.missed == 6
    skipped = planner.plan_due(spec, due, now, "skip", grace_s=1)
    assert skipped.slot is None and skipped.next_slot == T0 + timedelta(seconds=80)


def test_missed_cron_slots_collapse_too() -> None:
    spec = planner.cron("*/5 * * * *", "UTC")
    due = T0 + timedelta(minutes=5)
    plan = planner.plan_due(spec, due, T0 + timedelta(minutes=31), "fire_once", grace_s=1)
    assert plan.slot == T0 + timedelta(minutes=30)
    assert plan.next_slot == T0 + timedelta(minutes=35)
    assert plan.missed == 5


def test_a_six_field_cron_fires_on_its_seconds_and_a_five_field_one_on_whole_minutes() -> None:
    every_ten = planner.cron("*/10 * * * * *")
    start = T0 + timedelta(seconds=3, microseconds=500)
    assert planner.preview(every_ten, start, 3) == [T0 + timedelta(seconds=s) for s in (10, 20, 30)]
    assert planner.next_slot(every_ten, T0 + timedelta(seconds=10)) == T0 + timedelta(seconds=20)
    at_half = planner.cron("30 0 9 * * *", "America/Sao_Paulo")  # 09:00:30 in São Paulo (UTC-3)
    assert planner.next_slot(at_half, T0) == T0 + timedelta(hours=12, seconds=30)
    assert planner.next_slot(planner.cron("* * * * *"), start) == T0 + timedelta(minutes=1)
    assert [p.field for p in planner.cron_problems("* * * * * * *", "UTC")] == ["cron"]
    assert [p.field for p in planner.cron_problems("61 * * * * *", "UTC")] == ["cron"]
