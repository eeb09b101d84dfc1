"""Retry backoff is exponential, capped, and jittered symmetrically."""

from __future__ import annotations

import random

from gleaner.shared.backoff import nominal_delay_s, retry_delay_s


def test_the_nominal_delay_doubles_per_attempt_up_to_the_cap() -> None:
    assert [nominal_delay_s(n, 1.0, 10.0) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


def test_jitter_stays_within_its_fraction_and_averages_to_the_nominal_delay() -> None:
    rng = random.Random(7)
    samples = [retry_delay_s(3, 1.0, 100.0, jitter=0.1, rng=rng) for _ in range(5000)]
    assert min(samples) >= 3.6 and max(samples) <= 4.4
    assert abs(sum(samples) / len(samples) - 4.0) < 0.02


def test_a_huge_attempt_number_does_not_overflow() -> None:
    assert nominal_delay_s(10_000, 1.0, 60.0) == 60.0
