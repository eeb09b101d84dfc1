"""When the client sends a request again, and how long it waits first (pure).

The rule: a request the gateway certainly did not act on — the connection was refused, or a 429 — is
sent again whatever it is. A request whose outcome is unknown — a timeout, a dropped connection, a 502,
503 or 504 — is sent again only when a repeat cannot do anything twice: reads; submissions, which carry an
`Idempotency-Key` so the gateway answers a repeat with the first outcome; and writes that set a state
(`PUT`, `PATCH`, `DELETE`, cancel, pause, resume, resolve). Writes that make something new each time
(retry a job, requeue dead letters, trigger a schedule, create a schedule, run the scheduler) are not
repeated after an unknown outcome: the error is raised and the caller decides.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

__all__ = ["Failure", "RetryPolicy"]


class Failure(enum.Enum):
    """What a failed exchange says about the request: never acted on, or maybe acted on."""

    NOT_SENT = "not_sent"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`attempts` sends in all (1: never again), waiting `base_s · 2^(n-1)` (at most `cap_s`, jittered down
    by up to half) before the n-th repeat, or the server's `Retry-After` when longer (still at most `cap_s`)."""

    attempts: int = 5
    base_s: float = 0.2
    cap_s: float = 5.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.base_s < 0 or self.cap_s < self.base_s:
            raise ValueError("RetryPolicy needs attempts >= 1 and 0 <= base_s <= cap_s")

    def delay_s(
        self, attempt: int, failure: Failure, *, repeatable: bool, retry_after_s: float | None = None
    ) -> float | None:
        """Seconds to wait before sending again after `attempt` failed this way, or None: give up."""
        if attempt >= self.attempts or (failure is Failure.UNKNOWN and not repeatable):
            return None
        backoff = min(self.cap_s, self.base_s * 2.0 ** (attempt - 1)) * (1 - random.random() / 2)
        return min(self.cap_s, max(backoff, retry_after_s or 0.0))


def status_failure(status: int) -> Failure | None:
    """How an HTTP status fails a request, or None when it is an answer (success or a final error)."""
    if status == 429:
        return Failure.NOT_SENT
    if status in (502, 503, 504):
        return Failure.UNKNOWN
    return None


def retry_after_s(header: str | None) -> float | None:
    """`Retry-After` in seconds (the delta form; an HTTP date is ignored)."""
    try:
        return max(0.0, float(header)) if header else None
    except ValueError:
        return None
