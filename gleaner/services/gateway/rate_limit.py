"""Per-key request rate limit of the API: a token bucket per API key, in this gateway process (pure).

Each replica limits on its own, so N replicas allow up to N times the rate; that keeps a database round
trip off every request. Off (rate 0) unless GLEANER_API_RATE_PER_S is set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

MAX_KEYS = 10_000  # principals are API keys, few; this only bounds memory against surprises


@dataclass(slots=True)
class KeyBuckets:
    """`take(key, now)`: 0.0 when the request may go (its token is spent), else seconds until a token."""

    rate_per_s: float
    burst: float
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)

    def take(self, key: str, now: float) -> float:
        tokens, at = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate_per_s)
        if tokens >= 1.0:
            if len(self._buckets) >= MAX_KEYS and key not in self._buckets:
                self._buckets.clear()
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate_per_s


def buckets_for(rate_per_s: float, burst: int) -> KeyBuckets | None:
    """The limiter for the configuration: None when off; a burst of 0 means twice the rate (at least 1)."""
    if rate_per_s <= 0:
        return None
    return KeyBuckets(rate_per_s, float(burst or max(1, math.ceil(2 * rate_per_s))))


def retry_after_s(wait_s: float) -> int:
    """The Retry-After header's whole seconds: never 0, so a client that honours it does wait."""
    return max(1, math.ceil(wait_s))
