"""Retry backoff: exponential with a cap and symmetric jitter (pure)."""

from __future__ import annotations

import random

DEFAULT_JITTER = 0.1


def nominal_delay_s(attempt: int, base_s: float, cap_s: float) -> float:
    """min(cap, base · 2^(attempt-1)) for the attempt that just failed (1-based)."""
    exponent = min(max(attempt - 1, 0), 62)
    return min(cap_s, base_s * (2.0**exponent))


def retry_delay_s(
    attempt: int, base_s: float, cap_s: float, *, jitter: float = DEFAULT_JITTER, rng: random.Random | None = None
) -> float:
    """The delay before the next attempt: the nominal delay times a factor drawn from [1 - jitter, 1 + jitter]."""
    factor = 1.0 + (rng or random).uniform(-jitter, jitter)
    return max(0.0, nominal_delay_s(attempt, base_s, cap_s) * factor)
