"""Built-in kinds for tests and benchmarks: noop, sleep, fail."""

from __future__ import annotations

import asyncio
from typing import Any

from services.worker.context import JobContext
from shared.errors import PermanentError, RetryableError


async def noop(ctx: JobContext) -> Any:
    """Succeeds at once; the result is the payload."""
    return ctx.job.payload


async def sleep(ctx: JobContext) -> Any:
    """Sleeps `payload.seconds` (cancellable), then succeeds."""
    seconds = _number(ctx.job.payload, "seconds", default=1.0)
    await asyncio.sleep(seconds)
    return {"slept_s": seconds}


async def fail(ctx: JobContext) -> Any:
    """Fails the first `times` attempts (default: all), `mode` retryable or permanent, then succeeds."""
    payload = ctx.job.payload if isinstance(ctx.job.payload, dict) else {}
    mode = payload.get("mode", "retryable")
    if mode not in ("retryable", "permanent"):
        raise PermanentError(f"payload.mode must be 'retryable' or 'permanent', not {mode!r}")
    times = payload.get("times")
    if times is not None and (not isinstance(times, int) or isinstance(times, bool) or times < 0):
        raise PermanentError("payload.times must be a non-negative integer")
    if times is None or ctx.job.attempt <= times:
        error = RetryableError if mode == "retryable" else PermanentError
        raise error(f"fail: attempt {ctx.job.attempt} fails as asked ({mode})", error_class=f"fail_{mode}")
    return {"succeeded_on_attempt": ctx.job.attempt}


def _number(payload: Any, name: str, default: float) -> float:
    value = payload.get(name, default) if isinstance(payload, dict) else default
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
        raise PermanentError(f"payload.{name} must be a non-negative number")
    return float(value)


def register(registry: Any) -> None:
    registry.add("noop", noop)
    registry.add("sleep", sleep)
    registry.add("fail", fail)
