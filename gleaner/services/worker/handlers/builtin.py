"""Built-in kinds for tests and benchmarks: noop, sleep, fail."""

from __future__ import annotations

import asyncio
from typing import Any

from gleaner.services.worker.context import JobContext
from gleaner.shared.errors import PermanentError, RetryableError
from gleaner.shared.field_checks import Invalid, integer, members, number
from gleaner.shared.kind_rules import require_payload

MODES = ("retryable", "permanent")


def _mode(value: Any) -> str:
    if value not in MODES:
        raise Invalid("must be 'retryable' or 'permanent'")
    return str(value)


# other members are allowed: tests tag their payloads
SLEEP_PAYLOAD = members({"seconds": number(0, 86_400)}, closed=False)
FAIL_PAYLOAD = members({"mode": _mode, "times": integer(0, 1_000_000)}, closed=False)


async def noop(ctx: JobContext) -> Any:
    """Succeeds at once; the result is the payload."""
    return ctx.job.payload


async def sleep(ctx: JobContext) -> Any:
    """Sleeps `payload.seconds` (default 1, cancellable), then succeeds."""
    require_payload(SLEEP_PAYLOAD, ctx.job.payload)
    seconds = float(ctx.job.payload.get("seconds", 1.0))
    await asyncio.sleep(seconds)
    return {"slept_s": seconds}


async def fail(ctx: JobContext) -> Any:
    """Fails the first `times` attempts (default: all), `mode` retryable or permanent, then succeeds."""
    require_payload(FAIL_PAYLOAD, ctx.job.payload)
    mode = ctx.job.payload.get("mode", "retryable")
    times = ctx.job.payload.get("times")
    if times is None or ctx.job.attempt <= times:
        error = RetryableError if mode == "retryable" else PermanentError
        raise error(f"fail: attempt {ctx.job.attempt} fails as asked ({mode})", error_class=f"fail_{mode}")
    return {"succeeded_on_attempt": ctx.job.attempt}


def register(registry: Any) -> None:
    registry.add("noop", noop)
    registry.add("sleep", sleep, payload_check=SLEEP_PAYLOAD)
    registry.add("fail", fail, payload_check=FAIL_PAYLOAD)
