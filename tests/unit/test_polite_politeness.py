"""Politeness arithmetic: token bucket reservations, respectful hours with an injected clock, pauses."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta

import pytest

from gleaner.services.worker.politeness import (
    INLINE_WAIT_S,
    BucketState,
    Limits,
    RespectfulHours,
    page_pause_s,
    reserve,
    slow_down,
    tokens_at,
)
from gleaner.services.worker.site_limits import Site

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
ONE_PER_S = Limits(requests_per_hour=3600, burst=1, min_delay_s=0)


def take_many(limits: Limits, count: int, now: datetime, max_wait_s: float = 1e9) -> list[float]:
    state, waits = BucketState(), []
    for _ in range(count):
        reservation = reserve(state, limits, now, max_wait_s)
        assert reservation.taken
        state = reservation.state
        waits.append(reservation.wait_s)
    return waits


def test_a_full_bucket_lets_burst_requests_through_at_once_then_spaces_them_by_the_rate() -> None:
    limits = Limits(requests_per_hour=7200, burst=3, min_delay_s=0)
    assert take_many(limits, 5, T0) == pytest.approx([0, 0, 0, 0.5, 1.0])


def test_reservations_line_up_one_behind_the_other_at_one_per_second() -> None:
    assert take_many(ONE_PER_S, 4, T0) == pytest.approx([0, 1, 2, 3])


def test_the_bucket_refills_with_time_but_never_above_burst() -> None:
    state = reserve(BucketState(), ONE_PER_S, T0, 0).state
    assert tokens_at(state, ONE_PER_S, T0) == pytest.approx(0)
    assert tokens_at(state, ONE_PER_S, T0 + timedelta(seconds=0.5)) == pytest.approx(0.5)
    assert tokens_at(state, ONE_PER_S, T0 + timedelta(hours=1)) == 1


def test_the_minimum_delay_spaces_requests_even_with_tokens_left() -> None:
    limits = Limits(requests_per_hour=3600, burst=10, min_delay_s=2)
    assert take_many(limits, 3, T0) == pytest.approx([0, 2, 4])


def test_a_wait_beyond_the_limit_takes_nothing_and_says_how_long() -> None:
    state = reserve(BucketState(), ONE_PER_S, T0, 0).state
    for _ in range(3):
        state = reserve(state, ONE_PER_S, T0, INLINE_WAIT_S).state
    refused = reserve(state, ONE_PER_S, T0, INLINE_WAIT_S)
    assert not refused.taken and refused.state == state
    assert refused.wait_s == pytest.approx(4)


def test_a_slow_down_factor_stretches_rate_and_minimum_delay() -> None:
    slowed = Limits(requests_per_hour=3600, burst=1, min_delay_s=1.5, factor=2.0)
    assert (slowed.rate_per_s, slowed.spacing_s) == (pytest.approx(0.5), 3.0)
    assert take_many(slowed, 3, T0) == pytest.approx([0, 3, 6])


NIGHT_IN_BERLIN = RespectfulHours("Europe/Berlin", time(22, 0), time(6, 0), 3.0)
OFFICE_IN_NEW_YORK = RespectfulHours("America/New_York", time(9, 0), time(17, 0), 2.0)


@pytest.mark.parametrize(
    ("utc", "factor"),
    [
        ("2026-03-02T13:59", 1.0),  # 08:59 in New York
        ("2026-03-02T14:00", 2.0),  # 09:00
        ("2026-03-02T21:59", 2.0),  # 16:59
        ("2026-03-02T22:00", 1.0),  # 17:00
        ("2026-07-01T13:30", 2.0),  # 09:30 EDT (daylight saving time)
    ],
)
def test_respectful_hours_apply_the_factor_inside_the_window_only(utc: str, factor: float) -> None:
    now = datetime.fromisoformat(utc).replace(tzinfo=UTC)
    assert slow_down(OFFICE_IN_NEW_YORK, now) == factor


@pytest.mark.parametrize(
    ("utc", "inside"),
    [
        ("2026-01-10T20:59", False),  # 21:59 in Berlin
        ("2026-01-10T21:00", True),  # 22:00
        ("2026-01-10T23:30", True),  # 00:30, past midnight
        ("2026-01-11T04:59", True),  # 05:59
        ("2026-01-11T05:00", False),  # 06:00
        ("2026-01-11T11:00", False),  # noon
    ],
)
def test_a_window_that_wraps_midnight_holds_both_sides(utc: str, inside: bool) -> None:
    now = datetime.fromisoformat(utc).replace(tzinfo=UTC)
    assert NIGHT_IN_BERLIN.contains(now) is inside
    assert slow_down(NIGHT_IN_BERLIN, now) == (3.0 if inside else 1.0)


def test_no_respectful_hours_means_no_slow_down() -> None:
    assert slow_down(None, T0) == 1.0


def test_a_site_stretches_its_limits_inside_its_window_only() -> None:
    site = Site("s", 3600, 1, 1.0, 0, 0, OFFICE_IN_NEW_YORK, None, 0.3, 30, 1000, None)
    inside = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    assert site.limits_at(inside).factor == 2.0 and site.limits_at(T0).factor == 1.0
    assert take_many(site.limits_at(inside), 2, inside) == pytest.approx([0, 2])
    assert take_many(site.limits_at(T0), 2, T0) == pytest.approx([0, 1])


@pytest.mark.parametrize(
    "value",
    [
        "09:00-17:00",
        {"timezone": "Mars/Base", "start": "09:00", "end": "17:00", "factor": 2},
        {"timezone": "UTC", "start": "9h", "end": "17:00", "factor": 2},
        {"timezone": "UTC", "start": "09:00", "end": "17:00", "factor": 0.5},
        {"timezone": "UTC", "start": "09:00", "end": "17:00"},
    ],
)
def test_malformed_respectful_hours_are_refused(value: object) -> None:
    with pytest.raises(ValueError, match="respectful_hours"):
        RespectfulHours.from_json(value)


def test_respectful_hours_are_read_from_their_json_form() -> None:
    parsed = RespectfulHours.from_json({"timezone": "Europe/Berlin", "start": "22:00", "end": "06:00", "factor": 3})
    assert parsed == NIGHT_IN_BERLIN


def test_pauses_between_pages_stay_within_the_site_range_and_vary() -> None:
    rng = random.Random(7)
    pauses = [page_pause_s(1.0, 3.0, rng) for _ in range(200)]
    assert all(1.0 <= p <= 3.0 for p in pauses)
    assert max(pauses) - min(pauses) > 1.5
    assert page_pause_s(0.5, 0.5, rng) == 0.5
