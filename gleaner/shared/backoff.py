"""Retry backoff: exponential with a cap and symmetric jitter (pure)."""

from __future__ import annotations

import math
import random

DEFAULT_JITTER = 0.1
# the longest retry delay, whatever a row's retry_cap_s says (the API allows 30 days): a run_at computed from a
# larger one could pass year 9999, and a non-finite one fails the grouped finish statement it travels in
MAX_RETRY_DELAY_S = 30 * 86_400.0


def nominal_delay_s(attempt: int, base_s: float, cap_s: float) -> float:
    """min(cap, base · 2^(attempt-1)) for the attempt that just failed (1-based)."""
    exponent = min(max(attempt - 1, 0), 62)
    delay_s = min(cap_s, base_s * (2.0**exponent), MAX_RETRY_DELAY_S)
    return delay_s if math.isfinite(delay_s) and delay_s > 0 else 0.0


def retry_delay_s(
    attempt: int, base_s: float, cap_s: float, *, jitter: float = DEFAULT_JITTER, rng: random.Random | None = None
) -> float:
    """The delay before the next attempt: the nominal delay times a factor drawn from [1 - jitter, 1 + jitter]."""
    factor = 1.0 + (rng or random).uniform(-jitter, jitter)
    return max(0.0, nominal_delay_s(attempt, base_s, cap_s) * factor)
