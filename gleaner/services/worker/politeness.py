"""Politeness arithmetic (pure): token bucket reservations, respectful hours, pauses, wait-or-defer."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# a wait up to this long is slept inline; a longer one re-delays the job (its worker slot is not held)
INLINE_WAIT_S = 3.0
# once a job has fetched pages, a longer wait is still slept inline (deferring would throw its pages away)
MID_JOB_WAIT_S = 60.0


@dataclass(frozen=True, slots=True)
class RespectfulHours:
    """A daily local-time window of a timezone during which requests are `factor` times slower."""

    timezone: str
    start: time
    end: time
    factor: float

    @classmethod
    def from_json(cls, value: Any) -> RespectfulHours | None:
        """From the `respectful_hours` column; None when unset. Raises ValueError when malformed."""
        if value is None:
            return None
        if not isinstance(value, dict):
            raise ValueError("respectful_hours must be an object")
        try:
            ZoneInfo(str(value["timezone"]))
            factor = float(value["factor"])
            start, end = time.fromisoformat(str(value["start"])), time.fromisoformat(str(value["end"]))
        except (KeyError, TypeError, ValueError, ZoneInfoNotFoundError) as exc:
            raise ValueError(f"respectful_hours: {exc!r}") from None
        if factor < 1:
            raise ValueError("respectful_hours.factor must be at least 1")
        return cls(str(value["timezone"]), start, end, factor)

    def contains(self, now: datetime) -> bool:
        """Whether `now` (timezone-aware) falls in the window; start == end means all day."""
        local = now.astimezone(ZoneInfo(self.timezone)).time().replace(tzinfo=None)
        if self.start == self.end:
            return True
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # wraps midnight

    def factor_at(self, now: datetime) -> float:
        return self.factor if self.contains(now) else 1.0


def slow_down(hours: RespectfulHours | None, now: datetime) -> float:
    """The factor that stretches the site's request spacing at `now` (1.0 outside respectful hours)."""
    return 1.0 if hours is None else hours.factor_at(now)


@dataclass(frozen=True, slots=True)
class Limits:
    """A site's request spacing: rate, burst and minimum delay, already stretched by the slow-down factor."""

    requests_per_hour: float
    burst: int
    min_delay_s: float
    factor: float = 1.0

    @property
    def rate_per_s(self) -> float:
        return self.requests_per_hour / 3600.0 / self.factor

    @property
    def spacing_s(self) -> float:
        return self.min_delay_s * self.factor


@dataclass(frozen=True, slots=True)
class BucketState:
    """The shared limiter state: `tokens` at `refilled_at` (None: a full bucket), and the next allowed instant."""

    tokens: float | None = None
    refilled_at: datetime | None = None
    next_request_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Reservation:
    """The answer to "may I send a request?": `taken` with the state to store, or the wait to re-delay by."""

    taken: bool
    wait_s: float
    state: BucketState


def tokens_at(state: BucketState, limits: Limits, now: datetime) -> float:
    """The bucket's tokens at `now` after refilling (never above `burst`; negative while reserved ahead)."""
    if state.tokens is None or state.refilled_at is None:
        return float(limits.burst)
    elapsed_s = max(0.0, (now - state.refilled_at).total_seconds())
    return min(float(limits.burst), state.tokens + elapsed_s * limits.rate_per_s)


def reserve(state: BucketState, limits: Limits, now: datetime, max_wait_s: float) -> Reservation:
    """Reserve the next request slot if it comes within `max_wait_s`; otherwise take nothing and say how long.

    A reservation takes a token (going negative reserves a future refill) and moves `next_request_at` on by
    the minimum delay, so concurrent callers line up one behind the other instead of all sending at once.
    """
    tokens = tokens_at(state, limits, now)
    token_wait_s = 0.0 if tokens >= 1 else (1 - tokens) / limits.rate_per_s
    spacing_wait_s = 0.0 if state.next_request_at is None else (state.next_request_at - now).total_seconds()
    wait_s = max(0.0, token_wait_s, spacing_wait_s)
    if wait_s > max_wait_s:
        return Reservation(False, wait_s, state)
    send_at = now + timedelta(seconds=wait_s)
    taken = BucketState(tokens - 1, now, send_at + timedelta(seconds=limits.spacing_s))
    return Reservation(True, wait_s, taken)


def page_pause_s(pause_min_s: float, pause_max_s: float, rng: random.Random) -> float:
    """A randomized, human-like pause between two pages of one job."""
    if pause_max_s <= pause_min_s:
        return pause_min_s
    return rng.uniform(pause_min_s, pause_max_s)


def slot_retry_s(rng: random.Random, base_s: float = 1.0) -> float:
    """How long a job that found no free concurrency slot waits before trying again (jittered: no herd)."""
    return base_s * rng.uniform(1.0, 2.0)
