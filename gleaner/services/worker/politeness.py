"""Politeness arithmetic (pure): token bucket reservations, respectful hours, pauses, wait-or-defer."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gleaner.shared.site_rules import effective_requests_per_hour

# a wait up to this long is slept inline; a longer one re-delays the job (its worker slot is not held)
INLINE_WAIT_S = 3.0
# once a job has fetched pages, a longer wait is still slept inline (deferring would throw its pages away)
MID_JOB_WAIT_S = 60.0
# a 429/503 without Retry-After pauses the site BACKOFF_BASE_S, doubling with each one in a row, up to the cap;
# a Retry-After is obeyed up to a day (a longer one is more likely a misconfiguration than a wish)
BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 300.0
RETRY_AFTER_CAP_S = 86_400.0
# adaptive throttling (Scrapy's AutoThrottle): the spacing tends to latency / TARGET_CONCURRENCY, starting at
# ADAPTIVE_START_S and never above ADAPTIVE_MAX_S; never below the policy's own spacing
TARGET_CONCURRENCY = 1.0
ADAPTIVE_START_S = 1.0
ADAPTIVE_MAX_S = 60.0


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
    # the site's server asked for a pause until then (Retry-After or backoff); `busy_streak` answers in a row
    paused_until: datetime | None = None
    busy_streak: int = 0
    adaptive_delay_s: float | None = None


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
    spacing_wait_s = max(_seconds_until(state.next_request_at, now), _seconds_until(state.paused_until, now))
    wait_s = max(0.0, token_wait_s, spacing_wait_s)
    if wait_s > max_wait_s:
        return Reservation(False, wait_s, state)
    send_at = now + timedelta(seconds=wait_s)
    taken = replace(
        state, tokens=tokens - 1, refilled_at=now, next_request_at=send_at + timedelta(seconds=limits.spacing_s)
    )
    return Reservation(True, wait_s, taken)


def _seconds_until(instant: datetime | None, now: datetime) -> float:
    return 0.0 if instant is None else (instant - now).total_seconds()


def backoff_s(retry_after_s: float | None, busy_streak: int) -> float:
    """How long a 429/503 pauses its site: the server's Retry-After, else exponential in the answers in a row."""
    if retry_after_s is not None:
        return min(retry_after_s, RETRY_AFTER_CAP_S)
    return min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2.0 ** min(busy_streak, 30))


def adapted_delay_s(current_s: float | None, latency_s: float, ok: bool, floor_s: float) -> float:
    """AutoThrottle's step: halfway towards latency / target concurrency; an error never shortens the spacing.
    Kept within [floor_s (the policy's spacing), ADAPTIVE_MAX_S]."""
    current = max(floor_s, ADAPTIVE_START_S) if current_s is None else current_s
    target = latency_s / TARGET_CONCURRENCY
    new = (current + target) / 2.0
    if not ok:
        new = max(new, current)
    return min(max(new, floor_s), max(ADAPTIVE_MAX_S, floor_s))


def page_pause_s(pause_min_s: float, pause_max_s: float, rng: random.Random) -> float:
    """A randomized, human-like pause between two pages of one job."""
    if pause_max_s <= pause_min_s:
        return pause_min_s
    return rng.uniform(pause_min_s, pause_max_s)


def slot_retry_s(rng: random.Random, base_s: float = 1.0) -> float:
    """How long a job that found no free concurrency slot waits before trying again (jittered: no herd)."""
    return base_s * rng.uniform(1.0, 2.0)


def allowed_per_hour(
    requests_per_hour: float, min_delay_s: float, hours: RespectfulHours | None, now: datetime
) -> float:
    """The requests per hour a site's policy allows at `now`: its rate, lowered by its spacing, slowed down inside
    its respectful hours (what the rate-limit utilisation alert divides by)."""
    return effective_requests_per_hour(requests_per_hour, min_delay_s) / slow_down(hours, now)
