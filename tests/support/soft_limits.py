"""Handler kinds for the soft time limit tests (`GLEANER_HANDLER_MODULES=tests.support.soft_limits`)."""

from __future__ import annotations

import asyncio

from gleaner import JobContext, JsonInput, Partial, Registry, SoftTimeLimitExceeded

registry = Registry()


@registry.handler("soft.save")
async def save_partial_work(ctx: JobContext) -> JsonInput | Partial:
    """Counts ticks until told to stop, then returns how many it made."""
    ticks = 0
    try:
        while True:
            await asyncio.sleep(0.05)
            ticks += 1
    except SoftTimeLimitExceeded:
        return Partial({"ticks": ticks, "stopped_by": "soft_time_limit"})


@registry.handler("soft.ignore")
async def ignore_the_soft_limit(ctx: JobContext) -> JsonInput:
    """Swallows the soft limit and keeps going: only the hard timeout stops it."""
    while True:
        try:
            await asyncio.sleep(3600)
        except SoftTimeLimitExceeded:
            await ctx.progress({"soft_limit_seen": True})


@registry.handler("soft.kind_default", soft_timeout_s=0.5)
async def stop_at_the_kind_default(ctx: JobContext) -> JsonInput:
    """Waits for the soft limit its kind sets."""
    try:
        await asyncio.sleep(3600)
    except SoftTimeLimitExceeded:
        return {"soft_timeout_s": ctx.job.soft_timeout_s}
    return None
