"""Handlers for tests: outcomes PostgreSQL refuses (GLEANER_HANDLER_MODULES=tests.integration.refused_handlers)."""

from __future__ import annotations

import asyncio
from typing import Any

from gleaner.services.worker.context import JobContext
from gleaner.services.worker.handlers import Registry


async def nul_result(ctx: JobContext) -> Any:
    """After `seconds`, a result jsonb cannot hold (a NUL character)."""
    await asyncio.sleep(float(ctx.job.payload.get("seconds", 0)))
    return {"text": "before\x00after"}


def register(registry: Registry) -> None:
    registry.add("test.nul_result", nul_result)
