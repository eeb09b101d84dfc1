"""What to do with a delivery whose flow raised (pure): requeue it, count the failure in a copy, or give it up.

A failure that another try may not repeat (the database or the broker out of reach) requeues the delivery, as
often as it takes. Any other failure is counted in the message itself (`x-gleaner-failures`, carried by a copy
published in its place), so the count survives worker restarts and redeliveries to other workers, which the
broker's `redelivered` flag does not; after MAX_FAILURES the message becomes a dead letter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from aiormq.exceptions import AMQPError, ChannelInvalidStateError

from gleaner.shared.db import CONFLICT, failure_kind, unavailable

FAILURES_HEADER: Final = "x-gleaner-failures"
MAX_FAILURES: Final = 5

REQUEUE: Final = "requeue"
RETRY: Final = "retry"
GIVE_UP: Final = "give_up"


def transient(error: BaseException) -> bool:
    """A failure of the surroundings (PostgreSQL or RabbitMQ out of reach, a lost lock race), not of the message."""
    if unavailable(error) or failure_kind(error) == CONFLICT:
        return True
    return isinstance(error, (AMQPError, ChannelInvalidStateError, ConnectionError, TimeoutError))


def failures_of(headers: Mapping[str, Any] | None) -> int:
    """How many times handling this message failed before (a forged or odd count counts as none)."""
    value = (headers or {}).get(FAILURES_HEADER)
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < MAX_FAILURES else 0


def next_step(error: BaseException, headers: Mapping[str, Any] | None) -> tuple[str, int]:
    """(REQUEUE | RETRY | GIVE_UP, failures counted with this one)."""
    if transient(error):
        return REQUEUE, failures_of(headers)
    failures = failures_of(headers) + 1
    return (GIVE_UP if failures >= MAX_FAILURES else RETRY), failures
