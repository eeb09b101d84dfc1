"""Built-in kinds for tests and benchmarks: noop, sleep, fail."""

from __future__ import annotations

import asyncio

from gleaner.handlers import PermanentError, Registry, RetryableError
from gleaner.job_context import JobContext
from gleaner.json_types import JsonInput

MODES = ("retryable", "permanent")
# the schemas leave other members allowed (tests tag their payloads); null members take their defaults
registry = Registry()


@registry.handler("noop")
async def noop(ctx: JobContext) -> JsonInput:
    """Succeeds at once; the result is the payload."""
    return ctx.job.payload


@registry.handler(
    "sleep",
    description="Sleeps `seconds` (default 1, cancellable), then succeeds.",
    schema={"type": "object", "properties": {"seconds": {"type": ["number", "null"], "minimum": 0, "maximum": 86_400}}},
)
async def sleep(ctx: JobContext) -> JsonInput:
    seconds = ctx.job.payload.get("seconds", 1.0)
    slept_s = float(seconds) if isinstance(seconds, int | float) else 1.0
    await asyncio.sleep(slept_s)
    return {"slept_s": slept_s}


@registry.handler(
    "fail",
    description="Fails the first `times` attempts (default: all), `mode` retryable or permanent, then succeeds.",
    schema={
        "type": "object",
        "properties": {
            "mode": {"enum": [*MODES, None]},
            "times": {"type": ["integer", "null"], "minimum": 0, "maximum": 1_000_000},
        },
    },
)
async def fail(ctx: JobContext) -> JsonInput:
    mode = ctx.job.payload.get("mode") or "retryable"
    times = ctx.job.payload.get("times")
    if not isinstance(times, int | float) or ctx.job.attempt <= times:
        error = RetryableError if mode == "retryable" else PermanentError
        raise error(f"fail: attempt {ctx.job.attempt} fails as asked ({mode})", error_class=f"fail_{mode}")
    return {"succeeded_on_attempt": ctx.job.attempt}
